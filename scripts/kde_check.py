"""Why MEMGAN Table 1's KDE column (Deep SVDD's KDE baseline, reprinted) is far below ours: score the same
fitted KDE two ways on one-class MNIST and compare the test AUROC.

The reference code (lukasruff/Deep-SVDD `src/kde.py`) fits scikit-learn's `KernelDensity` on the PCA
components of the normal class, picks the bandwidth by 5-fold GridSearchCV over `logspace(-4.5, 5, 20,
base=2)` and scores the test images with `KernelDensity.score_samples` (a tree of float64 kernel sums).
Ours (`ganad_bench.models.kde`) computes the same Gaussian log-density exactly (log-sum-exp over every
training point). In 100+ PCA dimensions at the cross-validated bandwidth the tree's values are far off
(scikit-learn issues #25799, #7492): this script prints, per class, the bandwidth, the exact AUROC and
the tree's AUROC for the same model, both with our bandwidth search and with the reference grid.

    GANAD_DATA_DIR=../shared/data python scripts/kde_check.py --classes 0 2 5 8
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import KernelDensity

from ganad_bench.config import compose_config, to_container
from ganad_bench.errors import one_line_errors
from ganad_bench.models.kit.contract import flatten
from ganad_bench.models.kit.registry import build_detector
from ganad_bench.run import prepare_data

# the reference grid on [0, 1] pixels; our pixels are in [-1, 1], so every distance is twice as long
REFERENCE_GRID = [2.0 * b for b in np.logspace(-4.5, 5, num=20, base=2)]


def check(normal_class: int, overrides: list[str]) -> dict:
    config = to_container(compose_config(["model=kde", "dataset=mnist", f"dataset.normal_class={normal_class}",
                                          *overrides]))
    data = prepare_data(config)
    labels = np.asarray(data.split.test_labels)
    row = {"class": normal_class}
    for grid, bandwidths in (("ours", None), ("reference", REFERENCE_GRID)):
        params = {**config["model"]["params"], "bandwidths": bandwidths}
        detector = build_detector("kde", int(config["seed"]), params, config["trainer"]).fit(data.x_train)
        exact = detector.score_samples(data.x_test)
        tree = KernelDensity(kernel="gaussian", bandwidth=detector.bandwidth).fit(detector.train)
        tree_scores = -tree.score_samples(detector.input_map(flatten(data.x_test)))
        row[grid] = {"bandwidth": round(detector.bandwidth, 4), "auroc_exact": round(roc_auc_score(labels, exact), 4),
                     "auroc_sklearn_tree": round(roc_auc_score(labels, tree_scores), 4)}
    print(json.dumps(row), flush=True)
    return row


@one_line_errors
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--classes", type=int, nargs="+", default=list(range(10)))
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. seed=1")
    args = parser.parse_args()
    for normal_class in args.classes:
        check(normal_class, args.overrides)


if __name__ == "__main__":
    main()
