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
from ganad_bench.console import error_exit
from ganad_bench.errors import one_line_errors, require_folder
from ganad_bench.results.run_times import RUN_TIMES, reference_csv
from ganad_bench.results.store import iter_results


@one_line_errors
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="a folder of run folders (searched recursively)")
    parser.add_argument("--out", type=Path, default=RUN_TIMES, help=f"the CSV to write (default: {RUN_TIMES})")
    args = parser.parse_args()
    folder = require_folder(args.folder, "give a folder of finished runs, e.g. campaign/results")
    project_rows = RUN_TIMES.resolve().parents[2] / "campaign" / "results"
    if args.out.resolve() == RUN_TIMES.resolve() and folder.resolve() != project_rows:
        # the shipped times are the project's own runs' (a test holds them to campaign/results): other runs'
        # would replace them in this checkout
        raise error_exit(f"the shipped {RUN_TIMES.name} is made from the project's own rows ({project_rows}): "
                         f"give --out FILE for the run times of {args.folder}")
    rows = iter_results([folder])
    text = reference_csv(rows)
    if text.count("\n") < 2:  # a header alone would replace the shipped times with none
        raise error_exit(f"no finished run with a run time under {args.folder}: nothing written to {args.out}",
                         status=1)
    write_atomic(args.out, lambda handle: handle.write(text))
    print(f"wrote {args.out} ({text.count(chr(10)) - 1} model, dataset and epoch counts)")


if __name__ == "__main__":
    main()
