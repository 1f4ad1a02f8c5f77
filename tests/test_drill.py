"""The fault drill (scripts/fault_drill.py) on a small budget: a sweep killed at random moments and rerun
loses nothing and trains nothing twice; two copies started together train every run once. Slow: run with
`make test-all` (the README reports the full drill)."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_killed_and_concurrent_sweeps_lose_nothing_and_repeat_nothing(tmp_path):
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "fault_drill.py"), "--out", str(tmp_path / "d"),
                           "--kills", "3"], capture_output=True, text=True, timeout=900, cwd=REPO)
    assert done.returncode == 0 and done.stdout.strip().endswith("PASS"), done.stdout[-3000:]
