"""Evaluation protocols (DESIGN.md, "Evaluation protocols"): original labels -> index sets and 0/1
anomaly flags. This module is the ONLY place where labels become anomaly flags.

Every protocol returns a `Split` whose train and validation sets hold normal samples only, unless a
config says otherwise explicitly; model selection never sees test labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ganad_bench.data.dataset import RawDataset
from ganad_bench.errors import ConfigError


@dataclass
class Split:
    """Indices into the dataset's rows, and the 0/1 anomaly flags of the test rows (1 = anomaly)."""

    protocol: str
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    test_labels: np.ndarray
    contamination: float | None

    def sizes(self) -> dict[str, int]:
        return {
            "n_train": len(self.train),
            "n_val": len(self.val),
            "n_test": len(self.test),
            "n_test_anomalies": int(self.test_labels.sum()),
        }


def anomaly_flags(raw: RawDataset) -> np.ndarray:
    """1 where the original label is one of the dataset's canonical anomaly labels."""
    return np.isin(raw.labels, list(raw.anomaly_labels)).astype(np.int64)


def check_fraction(name: str, value, low_open: float = 0.0, high_open: float = 1.0) -> float:
    if value is None or not isinstance(value, (int, float)) or not (low_open < float(value) < high_open):
        raise ConfigError(f"{name} must be a number in ({low_open:g}, {high_open:g}), got {value!r}: "
                          f"set it on the command line, e.g. {name}=0.5")
    return float(value)


def tabular_split(raw: RawDataset, train_fraction: float, contamination: float, seed: int,
                  val_fraction: float = 0.0) -> Split:
    """The `tabular` protocol (DAGMM / ALAD / RCGAN).

    A seeded random permutation puts `round(train_fraction * n)` rows in the train split and the rest
    in the test split. Anomalies are dropped from the train split (novelty detection, as ALAD's code
    does); `val_fraction` of the remaining normal train rows is held out for validation (early stopping
    of the deep models). The test split keeps every row; at test time the top `contamination` fraction
    of scores is flagged anomalous (`ganad_bench.metrics`).
    """
    train_fraction = check_fraction("protocol.train_fraction", train_fraction)
    contamination = check_fraction("protocol.contamination", contamination)
    if val_fraction != 0.0:
        val_fraction = check_fraction("protocol.val_fraction", val_fraction)
    flags = anomaly_flags(raw)
    n = len(flags)
    order = np.random.default_rng(seed).permutation(n)
    n_train = int(round(train_fraction * n))
    train_rows, test_rows = order[:n_train], order[n_train:]
    normal_train = train_rows[flags[train_rows] == 0]
    n_val = int(round(val_fraction * len(normal_train)))
    val, train = normal_train[:n_val], normal_train[n_val:]
    test_labels = flags[test_rows]
    if len(train) == 0 or len(test_rows) == 0 or test_labels.min() == test_labels.max():
        raise ConfigError(
            f"protocol.train_fraction={train_fraction:g} leaves {len(train)} normal training rows and a test "
            f"split of {len(test_rows)} rows with {int(test_labels.sum())} anomalies on {raw.name}: "
            f"choose a train_fraction nearer 0.5"
        )
    return Split("tabular", np.sort(train), np.sort(val), test_rows, test_labels, contamination)


def make_split(protocol_cfg, raw: RawDataset, seed: int) -> Split:
    """Dispatch on `protocol.name`."""
    name = protocol_cfg.get("name")
    if name == "tabular":
        if raw.official_split is not None or raw.features.ndim != 2:
            raise ConfigError(f"protocol tabular applies to tabular datasets, not {raw.name}: "
                              f"use protocol=one_class or protocol=alad_image")
        return tabular_split(raw, protocol_cfg.get("train_fraction"), protocol_cfg.get("contamination"), seed,
                             protocol_cfg.get("val_fraction", 0.0) or 0.0)
    raise ConfigError(f"unknown protocol '{name}': choose one of tabular")
