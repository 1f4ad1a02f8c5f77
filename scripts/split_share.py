"""The anomaly share of the test rows behind a published precision / recall pair, against candidate splits.

The tabular protocol flags the top `contamination` fraction c of the n test scores, so for a published pair
precision = TP / (c n) and recall = TP / (a n), where a is the test rows' anomaly share: a = c x precision /
recall, whatever the detector. Each pair of a table thus gives the share of the test rows it was measured on,
to the rounding of its printed digits (the interval printed); runs that each draw a split of their own give
shares scattered around the data's, runs on one fixed split all give that split's. Printed beside them: the
shares of an authors' fixed split (`--split-seed`, drawn as pandas' DataFrame.sample and as scikit-learn's
train_test_split draw it: `protocol.split_seed`, `protocol.split_draw`) and of our per-seed splits (seeds
0-9), at each train fraction asked for, and which published pairs each is consistent with: those whose
precision / recall, within its rounding, equals the split's test anomalies over the rows the protocol's
threshold flags in it (`ganad_bench.metrics`; not exactly c n on a small test split, and untied scores
assumed). Written for RCGAN's KDD99 cells (their gap note in REPRODUCTION.md):

    python scripts/split_share.py --reference alad:II rcgan:1 rcgan:4 --dataset kdd99 --fractions 0.5 0.8
"""

from __future__ import annotations

import argparse
from importlib.resources import files
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from ganad_bench.data.files import DataSettings
from ganad_bench.data.protocols import anomaly_flags, split_rows
from ganad_bench.data.registry import load_raw
from ganad_bench.errors import ConfigError, one_line_errors
from ganad_bench.metrics import contamination_threshold
from ganad_bench.results.published import published_table


def printed_half_unit(percent: float) -> float:
    """Half a unit of the last digit a published percentage was printed with (94.27 -> 0.005, 94.8 -> 0.05)."""
    for digits in range(5):
        if abs(round(percent, digits) - percent) < 1e-6:
            return 0.5 * 10.0 ** -digits
    return 0.0


def implied_shares(references: list[str], dataset: str, contamination: float) -> list[dict]:
    """Per published (table, column) with both a precision and a recall on `dataset`: the test anomaly share
    c x precision / recall, and the interval of precision / recall over the rounding of the two printed
    numbers (the share's interval is c times it)."""
    frame = published_table()
    frame = frame[frame["reference"].isin(references) & (frame["dataset"] == dataset)
                  & frame["metric"].isin(["precision", "recall"])]
    pairs = []
    for (reference, column), cells in frame.groupby(["reference", "model"], sort=False):
        by_metric = dict(zip(cells["metric"], 100.0 * cells["mean"], strict=True))
        if set(by_metric) != {"precision", "recall"}:
            continue
        precision, recall = by_metric["precision"], by_metric["recall"]
        hp, hr = printed_half_unit(precision), printed_half_unit(recall)
        pairs.append({"reference": reference, "column": column, "precision": precision, "recall": recall,
                      "share": contamination * precision / recall,
                      "ratio_low": (precision - hp) / (recall + hr), "ratio_high": (precision + hp) / (recall - hr)})
    if not pairs:
        raise ConfigError(f"{', '.join(references)} print no precision / recall pair on {dataset}: check "
                          f"--reference and --dataset against ganad_bench/results/published.csv")
    return pairs


def flagged_count(n_test: int, contamination: float) -> int:
    """How many of n untied test scores the protocol's threshold flags (`ganad_bench.metrics`)."""
    scores = np.arange(n_test, dtype=np.float64)
    return int((scores >= contamination_threshold(scores, contamination)).sum())


def candidate_splits(flags: np.ndarray, fractions: list[float], split_seed: int, seeds: range,
                     contamination: float) -> list[dict]:
    """Each candidate split's test anomaly share and its anomalies over its flagged rows (what precision /
    recall equals on it): the authors' fixed split of `split_seed` drawn both ways, then each run seed's own
    split, at every train fraction."""
    def candidate(name: str, test: np.ndarray) -> dict:
        anomalies = int(flags[test].sum())
        return {"split": name, "share": anomalies / len(test),
                "ratio": anomalies / flagged_count(len(test), contamination)}

    candidates = []
    for fraction in fractions:
        for draw in ("sample", "train_test_split"):
            _, test = split_rows(len(flags), fraction, 0, split_seed, draw)
            candidates.append(candidate(f"train {fraction:g}, split_seed={split_seed}, split_draw={draw}", test))
        for seed in seeds:
            _, test = split_rows(len(flags), fraction, seed, None, "train_test_split")
            candidates.append(candidate(f"train {fraction:g}, seed {seed}'s own split", test))
    return candidates


def dataset_contamination(dataset: str) -> float:
    """The flagged fraction of the dataset's tabular protocol (conf/dataset/<dataset>.yaml)."""
    path = files("ganad_bench.conf") / "dataset" / f"{dataset}.yaml"
    if not path.is_file():
        raise ConfigError(f"no dataset config {dataset}.yaml: give a tabular dataset, e.g. --dataset kdd99")
    return float(OmegaConf.load(str(path))["contamination"])


@one_line_errors
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", nargs="+", default=["alad:II", "rcgan:1", "rcgan:4"],
                        help="published tables, e.g. rcgan:1")
    parser.add_argument("--dataset", default="kdd99")
    parser.add_argument("--fractions", nargs="+", type=float, default=[0.5, 0.8], help="train fractions")
    parser.add_argument("--split-seed", type=int, default=42, help="the authors' random_state (ALAD's: 42)")
    parser.add_argument("--seeds", type=int, default=10, help="per-seed splits of seeds 0..N-1")
    parser.add_argument("--data-dir", type=Path, default=None, help="default: GANAD_DATA_DIR")
    args = parser.parse_args()
    contamination = dataset_contamination(args.dataset)
    pairs = implied_shares(args.reference, args.dataset, contamination)
    raw = load_raw(args.dataset, None, DataSettings.from_config({"data_dir": args.data_dir, "download": False}))
    flags = anomaly_flags(raw)
    print(f"{args.dataset}: {len(flags):,} rows, anomaly share {100 * flags.mean():.3f}%, "
          f"flagged fraction {contamination:g}")
    print("published pairs: test anomaly share = flagged fraction x precision / recall (interval: rounding)")
    for pair in pairs:
        print(f"  {pair['reference']:<8} {pair['column']:<26} P {pair['precision']:6.2f}  R {pair['recall']:6.2f}  "
              f"share {100 * pair['share']:.3f}% [{100 * contamination * pair['ratio_low']:.3f}, "
              f"{100 * contamination * pair['ratio_high']:.3f}]")
    print("candidate splits: their test rows' anomaly share, and the published pairs whose precision / recall "
          "(to its printed digits) is the split's test anomalies / flagged rows")
    for split in candidate_splits(flags, args.fractions, args.split_seed, range(args.seeds), contamination):
        held = [f"{p['reference']} {p['column']}" for p in pairs
                if p["ratio_low"] <= split["ratio"] <= p["ratio_high"]]
        print(f"  {split['split']:<52} {100 * split['share']:.3f}%  {len(held)} of {len(pairs)}"
              + (f": {'; '.join(held)}" if held else ""))


if __name__ == "__main__":
    main()
