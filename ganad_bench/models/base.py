"""The detector contract (DESIGN.md, "The detector contract"), after pyod's BaseDetector.

    detector = create_detector("iforest", seed=0)
    detector.fit(x_train)              # normal samples only; returns self
    scores = detector.score_samples(x) # 1-D, HIGHER = MORE anomalous
    detector.save(path); Detector.load(path)

Scores of a test set never depend on its order or on how it is chunked.
"""

from __future__ import annotations

import pickle
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np


class Detector(ABC):
    name: str = "detector"

    def __init__(self, seed: int = 0):
        self.seed = int(seed)

    @abstractmethod
    def fit(self, x: np.ndarray, x_val: np.ndarray | None = None) -> Detector:
        """Fit on normal training samples (`x_val`: optional normal validation samples)."""

    @abstractmethod
    def score_samples(self, x: np.ndarray) -> np.ndarray:
        """Anomaly scores, one per sample; higher means more anomalous."""

    def save(self, path: str | Path) -> None:
        with open(path, "wb") as handle:
            pickle.dump(self, handle)

    @staticmethod
    def load(path: str | Path) -> Detector:
        with open(path, "rb") as handle:
            return pickle.load(handle)


def flatten(x: np.ndarray) -> np.ndarray:
    """(n, ...) -> (n, features) float64, the input of the classic detectors."""
    return np.asarray(x, dtype=np.float64).reshape(len(x), -1)


def subsample(x: np.ndarray, max_samples: int | None, seed: int) -> np.ndarray:
    """At most `max_samples` rows drawn without replacement (kernel methods scale as n^2 in memory
    and n^2..n^3 in time, so they fit on a seeded subsample of large training sets)."""
    if max_samples is None or len(x) <= max_samples:
        return x
    rows = np.random.default_rng(seed).choice(len(x), size=int(max_samples), replace=False)
    return x[np.sort(rows)]
