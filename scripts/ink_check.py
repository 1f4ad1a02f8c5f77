"""A published one-class row against the simplest detector there is: ranking the test images by their ink
(mean pixel intensity). Per normal class, the AUROC of "more ink is more anomalous" and of its reverse beside
the published cells of one column, and, given a results folder, the learning curves of that column's runs
(test AUROC per epoch, reported only) with their correlation with the ink row.

A published row that follows the ink, or its reverse, on every class says what the detector behind it
ranked by; a trained detector of the normal class does not (the ink separates digit 1 from the rest and
little else). Written for AMA Table 2's FGAN row (docs/measured.md, the gap note of that row):

    python scripts/ink_check.py --reference ama:2 --column FGAN ~/ganad-runs/loo/results/mnist/one_class/fgan
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from ganad_bench.console import error_exit
from ganad_bench.data.files import DataSettings
from ganad_bench.data.registry import load_raw
from ganad_bench.errors import ConfigError, one_line_errors, require_folder
from ganad_bench.results.published import published_table
from ganad_bench.results.store import RESULT_FILE, read_result


def ink_aurocs(dataset: str, data_dir: Path | None) -> np.ndarray:
    """Per class k, the one-class AUROC (official test split, every other class anomalous) of the mean
    pixel intensity as the anomaly score."""
    raw = load_raw(dataset, None, DataSettings.from_config({"data_dir": data_dir, "download": False}))
    test = raw.official_split == 1
    ink = raw.features[test].reshape(int(test.sum()), -1).astype(np.float64).mean(axis=1)
    return np.array([roc_auc_score(raw.labels[test] != k, ink) for k in range(len(raw.class_names))])


def published_row(reference: str, dataset: str, column: str, n_classes: int) -> np.ndarray:
    paper, table = reference.split(":")
    frame = published_table()
    cells = frame[(frame["paper"] == paper) & (frame["table"] == table) & (frame["dataset"] == dataset)
                  & (frame["model"] == column) & (frame["metric"] == "auroc")]
    by_class = dict(zip(cells["normal_class"], cells["mean"], strict=True))
    missing = [k for k in range(n_classes) if str(k) not in by_class]
    if missing:
        raise ConfigError(f"{reference} has no {column} AUROC on {dataset} for classes {missing}: "
                          f"check --reference, --dataset and --column against ganad_bench/results/published.csv")
    return np.array([by_class[str(k)] for k in range(n_classes)])


def run_curves(folder: Path, n_classes: int) -> dict[int, list[float]]:
    """Epoch -> the test AUROC of each class's run at that epoch (classes 0..n-1, one seed each)."""
    curves: dict[int, dict[int, float]] = {}
    for path in sorted(folder.rglob(RESULT_FILE)):
        row = read_result(path.parent)
        if row is None or row.get("status") != "ok" or not str(row.get("normal_class", "")).isdigit():
            continue
        for point in row.get("learning_curve") or []:
            if point.get("test_auroc") is not None:
                curves.setdefault(int(point["epoch"]), {})[int(row["normal_class"])] = point["test_auroc"]
    return {epoch: [got[k] for k in range(n_classes)] for epoch, got in sorted(curves.items())
            if len(got) == n_classes}


def folder_curves(folder: Path, n_classes: int) -> dict[int, list[float]]:
    """`run_curves`, or a one-line error where the folder is missing or holds no epoch with every class."""
    require_folder(folder, "give the results folder of the column's runs, e.g. RUNS/results/mnist/one_class/fgan")
    curves = run_curves(folder, n_classes)
    if not curves:
        raise error_exit(f"no finished runs under {folder} share a learning-curve epoch across all {n_classes} "
                         "classes: run the column with trainer.curve_every set, one run per class", status=1)
    return curves


def line(label: str, values, published: np.ndarray) -> str:
    values = np.asarray(values)
    return (f"{label:<28}" + "".join(f"{100 * v:6.1f}" for v in values)
            + f"   r {np.corrcoef(values, published)[0, 1]:+.2f}"
            + f"   mean |d| {100 * np.abs(values - published).mean():5.1f}")


@one_line_errors
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, nargs="?", help="runs of the column's model, one per class (optional)")
    parser.add_argument("--reference", default="ama:2", help="the published table, e.g. ama:2")
    parser.add_argument("--column", default="FGAN", help="the table's column, as in published.csv")
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--data-dir", type=Path, default=None, help="default: GANAD_DATA_DIR")
    args = parser.parse_args()
    ink = ink_aurocs(args.dataset, args.data_dir)
    published = published_row(args.reference, args.dataset, args.column, len(ink))
    curves = folder_curves(args.folder, len(ink)) if args.folder else {}  # its errors before any output
    print(f"{'class':<28}" + "".join(f"{k:>6}" for k in range(len(ink))) + "   against the published row")
    print(line(f"{args.reference} {args.column}", published, published))
    print(line("ink", ink, published))
    print(line("ink, reversed", 1 - ink, published))
    for epoch, values in curves.items():
        print(line(f"runs, epoch {epoch}", values, published) + f"   r with ink {np.corrcoef(values, ink)[0, 1]:+.2f}")
        print(line(f"runs, epoch {epoch}, reversed", 1 - np.asarray(values), published))


if __name__ == "__main__":
    main()
