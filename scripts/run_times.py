"""Make the reference run times `ganad-bench-paper` shows for a fresh output folder
(`ganad_bench/results/run_times.csv`) from a folder of finished runs: per model, dataset and epoch count, the
median time of a run as its share of the machine (`ganad_bench.results.run_times`).

    python scripts/run_times.py campaign/results            # the shipped file, from the project's own runs
    python scripts/run_times.py RESULTS --out times.csv      # from other runs

A test checks that the shipped file is the one the committed rows (campaign/results) make.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ganad_bench.atomic import write_atomic
from ganad_bench.results.run_times import RUN_TIMES, reference_csv
from ganad_bench.results.store import iter_results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="a folder of run folders (searched recursively)")
    parser.add_argument("--out", type=Path, default=RUN_TIMES, help=f"the CSV to write (default: {RUN_TIMES})")
    args = parser.parse_args()
    if not args.folder.is_dir():
        parser.error(f"{args.folder} is not a folder of results")
    text = reference_csv(iter_results([args.folder]))
    write_atomic(args.out, lambda handle: handle.write(text))
    print(f"wrote {args.out} ({text.count(chr(10)) - 1} model, dataset and epoch counts)")


if __name__ == "__main__":
    main()
