"""Isolation Forest (Liu et al. 2008) with scikit-learn's default parameters, as ALAD Sec. V-B
("We use default parameters provided by the scikit-learn package")."""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import IsolationForest

from ganad_bench.models.base import Detector, flatten
from ganad_bench.models.registry import register


@register("iforest")
class IsolationForestDetector(Detector):
    def __init__(self, seed: int = 0, n_estimators: int = 100, max_samples="auto", max_features: float = 1.0,
                 n_jobs: int | None = None):
        super().__init__(seed)
        self.model = IsolationForest(n_estimators=n_estimators, max_samples=max_samples,
                                     max_features=max_features, n_jobs=n_jobs, random_state=self.seed)

    def fit(self, x, x_val=None):
        self.model.fit(flatten(x))
        return self

    def score_samples(self, x) -> np.ndarray:
        # sklearn's score_samples is higher for NORMAL points; the contract wants the opposite.
        return -self.model.score_samples(flatten(x))
