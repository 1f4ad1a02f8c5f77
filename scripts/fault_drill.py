"""Kill a sweep at random moments, rerun it, and check that nothing was lost or done twice; then start two
copies of the sweep on one output folder at once and check that every run was trained by exactly one.

    python scripts/fault_drill.py --out /tmp/drill --kills 10            # docs/running.md (faults)

The sweep: Isolation Forest and DCAE (3 epochs, checkpointed every epoch) on the embedded Thyroid, 15 seeds
each (30 runs). Each round starts the sweep and sends SIGKILL or SIGINT (alternately) after a random delay;
then the sweep is run to the end. Checks: exit 0, exactly one valid `ok` row per run (30 folders, 30 rows),
no temporary files left, and in the concurrent part, 30 `ok` lines over both commands together.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from ganad_bench.console import error_exit
from ganad_bench.errors import one_line_errors

ENTRY = [sys.executable, "-c", "from ganad_bench.cli import main; main()"]
SWEEP = ["-m", "model=iforest,dcae", "dataset=thyroid", "seed=range(15)", "trainer.epochs=3", "trainer.device=cpu",
         "trainer.progress=false"]
RUNS = 30
# written in --out: a folder that holds it was made by this drill, and the next drill may empty it
MARK = ".fault-drill"


def sweep(out: Path) -> subprocess.Popen:
    return subprocess.Popen([*ENTRY, *SWEEP, f"paths.output_dir={out}"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def check(out: Path) -> dict:
    results = out / "results"
    rows = [json.loads(p.read_text()) for p in results.rglob("result.json")]
    folders = {p.parent for p in results.rglob(".lock")}
    temps = [str(p) for p in results.rglob("*.part")]
    return {"rows": len(rows), "ok_rows": sum(r.get("status") == "ok" for r in rows),
            "distinct_runs": len({r["config_hash"] for r in rows}), "run_folders": len(folders),
            "temp_files": temps}


def kill_rounds(out: Path, kills: int, rng: random.Random) -> list[dict]:
    rounds = []
    for i in range(kills):
        proc = sweep(out)
        delay = rng.uniform(2.0, 9.0)
        time.sleep(delay)
        sig = signal.SIGKILL if i % 2 == 0 else signal.SIGINT
        proc.send_signal(sig)
        _, err = proc.communicate()
        rounds.append({"round": i + 1, "signal": sig.name, "after_s": round(delay, 1), "exit": proc.returncode,
                       "traceback": "Traceback" in err, **check(out)})
        print(json.dumps(rounds[-1]), flush=True)
    return rounds


def scratch(out: Path) -> Path:
    """`--out` emptied for a new drill: a new or empty folder, or one an earlier drill made (it holds MARK).
    Any other folder is refused: a mistyped --out (`.`, `~`) was deleted whole."""
    if out.exists() and not out.is_dir():
        raise error_exit(f"--out {out} is a file: give a new or empty folder")
    if out.is_dir() and any(out.iterdir()) and not (out / MARK).is_file():
        raise error_exit(f"--out {out} holds files this drill did not write, and the drill empties its folder: "
                         f"give a new or empty folder")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    (out / MARK).write_text("made by scripts/fault_drill.py: the next drill with this --out empties the folder\n")
    return out


@one_line_errors
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True,
                        help="scratch folder: new, empty, or an earlier drill's (emptied first)")
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    scratch(args.out)
    rng = random.Random(args.seed)
    report = {"rounds": kill_rounds(args.out / "killed", args.kills, rng)}
    tick = time.perf_counter()
    final = sweep(args.out / "killed")
    _, err = final.communicate()
    report["final"] = {"exit": final.returncode, "seconds": round(time.perf_counter() - tick, 1),
                       "ok_lines": err.count("\nok ") + err.startswith("ok "), **check(args.out / "killed")}
    tick = time.perf_counter()
    first, second = sweep(args.out / "together"), sweep(args.out / "together")
    errs = [p.communicate()[1] for p in (first, second)]
    oks = [sum(line.startswith("ok ") for line in e.splitlines()) for e in errs]
    report["concurrent"] = {"exits": [first.returncode, second.returncode], "ok_lines": oks,
                            "seconds": round(time.perf_counter() - tick, 1), **check(args.out / "together")}
    print(json.dumps({k: v for k, v in report.items() if k != "rounds"}, indent=1))
    final_ok = report["final"]
    good = (final_ok["exit"] == 0 and final_ok["ok_rows"] == RUNS == final_ok["run_folders"] == final_ok["rows"]
            and not final_ok["temp_files"] and not any(r["traceback"] for r in report["rounds"])
            and report["concurrent"]["exits"] == [0, 0] and sum(oks) == RUNS
            and report["concurrent"]["ok_rows"] == RUNS and not report["concurrent"]["temp_files"])
    (args.out / "report.json").write_text(json.dumps(report, indent=1))
    print("PASS" if good else "FAIL")
    raise SystemExit(0 if good else 1)


if __name__ == "__main__":
    main()
