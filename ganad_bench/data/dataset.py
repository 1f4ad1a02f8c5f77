"""The in-memory form every source produces, before any protocol is applied."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class RawDataset:
    """Features with their ORIGINAL labels (class ids or label strings), never 0/1 anomaly flags:
    turning labels into anomaly flags is the protocol's job (`ganad_bench.data.protocols`).

    `anomaly_labels` is the canonical anomaly definition of the tabular benchmarks (DESIGN.md), used by
    the `tabular` protocol. `official_split` (0 = train, 1 = test) exists for datasets with one.
    """

    name: str
    source: str
    features: np.ndarray
    labels: np.ndarray
    anomaly_labels: tuple = ()
    official_split: np.ndarray | None = None
    feature_names: list[str] = field(default_factory=list)
    class_names: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)  # file name -> sha256, recorded in result rows

    @property
    def n_features(self) -> int:
        return int(np.prod(self.features.shape[1:]))
