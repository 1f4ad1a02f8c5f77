"""The fault drill (scripts/fault_drill.py) on a small budget: a sweep killed at random moments and rerun
loses nothing and trains nothing twice; two copies started together train every run once. Slow: run with
`make test-all` (the README reports the full drill)."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_the_drill_empties_only_a_new_empty_or_earlier_drill_folder(tmp_path):
    """The drill empties --out first: a folder it did not make (a mistyped `.` or `~`) is refused, not deleted."""
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("kept")
    (tmp_path / "file").write_text("kept")
    for out, says in ((tmp_path / "mine", "holds files this drill did not write"), (tmp_path / "file", "is a file")):
        done = subprocess.run([sys.executable, str(REPO / "scripts" / "fault_drill.py"), "--out", str(out)],
                              capture_output=True, text=True, timeout=60, cwd=REPO)
        assert done.returncode == 2 and done.stderr.startswith(f"error: --out {out} {says}"), done.stderr
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "kept" and (tmp_path / "file").read_text() == "kept"


@pytest.mark.slow
def test_killed_and_concurrent_sweeps_lose_nothing_and_repeat_nothing(tmp_path):
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "fault_drill.py"), "--out", str(tmp_path / "d"),
                           "--kills", "3"], capture_output=True, text=True, timeout=900, cwd=REPO)
    assert done.returncode == 0 and done.stdout.strip().endswith("PASS"), done.stdout[-3000:]
