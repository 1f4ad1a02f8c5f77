"""Wall time of a sweep trained as packs against the same runs one by one, from their result rows.

    python scripts/pack_walltime.py --packed ~/ganad-runs/packs/rcgan-packed/results \\
        --single ~/ganad-runs/packs/rcgan-single/results --out docs/benchmarks/walltime.md

Per (model, dataset): the packed sweep's wall time (first start to last finish of its rows) and its runs'
seeds; the one-by-one runs' mean time per run (`timings.total_s`) times the packed run count (an
extrapolation when fewer seeds ran one by one, said so in the table); and the metrics of the seeds both
ran (a member of a pack is its run alone up to float rounding, which long training can magnify).
"""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path

import numpy as np

from ganad_bench.atomic import write_atomic
from ganad_bench.console import error_exit
from ganad_bench.errors import one_line_errors, require_folder
from ganad_bench.results.store import load_results


def wall_seconds(frame) -> float:
    start = min(datetime.fromisoformat(t) for t in frame["started_at"])
    end = max(datetime.fromisoformat(t) for t in frame["finished_at"])
    return (end - start).total_seconds()


def report(packed, single) -> str:
    lines = ["# Wall time: packs against one run at a time", "",
             "From the result rows (`scripts/pack_walltime.py`). Packed: the sweep's first start to last finish. "
             "One by one: mean `timings.total_s` of the runs that ran alone x the packed run count.", "",
             "| model | dataset | runs | packed | one by one | speed-up | AUROC packed (seeds both ran) | "
             "AUROC alone | F1 packed (all seeds) |", "|---|---|---|---|---|---|---|---|---|"]
    for (model, dataset), group in packed.groupby(["model", "dataset"]):
        alone = single[(single["model"] == model) & (single["dataset"] == dataset)]
        packed_s = wall_seconds(group)
        per_run = alone["timings.total_s"].mean() if len(alone) else float("nan")
        estimate = per_run * len(group)
        note = "" if len(alone) == len(group) else f" (from {len(alone)} runs)"
        both = group[group["seed"].isin(alone["seed"])].sort_values("seed")
        alone = alone.sort_values("seed")
        f1 = group["metrics.f1"]
        lines.append(
            f"| {model} | {dataset} | {len(group)} | {packed_s / 60:.1f} min | {estimate / 60:.1f} min{note} | "
            f"{estimate / packed_s:.1f}x | {', '.join(f'{v:.4f}' for v in both['metrics.auroc'])} | "
            f"{', '.join(f'{v:.4f}' for v in alone['metrics.auroc'])} | {f1.mean():.4f} ± {np.std(f1, ddof=1):.4f} |")
    return "\n".join(lines) + "\n"


def rows_of(folder: str, flag: str):
    """The finished rows under `folder`, or a one-line error naming the flag to fix."""
    path = require_folder(Path(folder).expanduser(), f"give {flag} the results folder of a sweep")
    frame = load_results([path])
    if frame.empty or "model" not in frame or "timings.total_s" not in frame:
        raise error_exit(f"{flag} {path} holds no finished runs: give the results folder of a sweep", status=1)
    return frame


@one_line_errors
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--packed", required=True, help="results folder of the packed sweep")
    parser.add_argument("--single", required=True, help="results folder of the one-by-one runs")
    parser.add_argument("--out", required=True, help="Markdown file to write")
    args = parser.parse_args()
    text = report(rows_of(args.packed, "--packed"), rows_of(args.single, "--single"))
    write_atomic(Path(args.out), lambda handle: handle.write(text))  # whole or not at all
    print(text)


if __name__ == "__main__":
    main()
