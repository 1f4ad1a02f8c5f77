"""Per run of a folder of results (tabular protocols): the test split's anomalies, the rows the contamination
threshold flags, and precision / recall. Precision = TP / flagged and recall = TP / anomalies, so when every
split flags the same number of rows (the top `contamination` of the test rows) while its anomaly count varies
with the split, precision and recall part ways: a diagnosis of gaps in one of them only.

    python scripts/flag_counts.py ~/ganad-runs/campaign/results/thyroid/tabular/iforest
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from ganad_bench.atomic import UnreadableArrays, read_npz
from ganad_bench.console import error_exit
from ganad_bench.errors import one_line_errors, require_folder
from ganad_bench.results.store import RESULT_FILE, read_result
from ganad_bench.runs import SCORES_FILE


@one_line_errors
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="a folder of run folders (searched recursively)")
    args = parser.parse_args()
    require_folder(args.folder, "give a folder of run folders, e.g. RUNS/results/kdd99/tabular/alad")
    lines, without_scores = [], 0
    for path in sorted(args.folder.rglob(RESULT_FILE)):
        row = read_result(path.parent)
        if row is None or row.get("status") != "ok" or "precision" not in row.get("metrics", {}):
            continue
        if not (path.parent / SCORES_FILE).is_file():  # a row copied by --copy-rows keeps no scores
            without_scores += 1
            continue
        try:
            saved = read_npz(path.parent / SCORES_FILE, required=("labels", "scores", "threshold"))
        except UnreadableArrays as err:  # a damaged file: named, and the other runs still listed
            print(f"warning: left out {path.parent / SCORES_FILE}: unreadable ({err}); rerun the "
                  f"run with force=true to write it again", file=sys.stderr)
            continue
        labels, scores, threshold = saved["labels"], saved["scores"], float(saved["threshold"])
        lines.append((row["seed"], int(labels.sum()), int((scores >= threshold).sum()), row["metrics"]["precision"],
                      row["metrics"]["recall"], path.parent.name))
    if without_scores and not lines:
        raise error_exit(f"the {without_scores} thresholded row(s) under {args.folder} have no {SCORES_FILE} "
                         "(rows copied by --copy-rows keep none): give the folder of the runs themselves", status=1)
    if not lines and not without_scores:
        raise error_exit(f"no finished run with a thresholded metric (precision) under {args.folder}: "
                         "give the folder of a tabular protocol's runs", status=1)
    if without_scores:
        print(f"({without_scores} row(s) without {SCORES_FILE} left out)")
    print("seed  anomalies  flagged  precision  recall  run")
    for seed, anomalies, flagged, precision, recall, name in sorted(lines):
        print(f"{seed:>4}  {anomalies:>9}  {flagged:>7}  {100 * precision:9.2f}  {100 * recall:6.2f}  {name}")
    if lines:
        a = np.array([line[1:5] for line in lines], dtype=float)
        print(f"mean  {a[:, 0].mean():9.1f}  {a[:, 1].mean():7.1f}  {100 * a[:, 2].mean():9.2f}  "
              f"{100 * a[:, 3].mean():6.2f}")


if __name__ == "__main__":
    main()
