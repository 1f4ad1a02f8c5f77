"""One-class SVM (Schölkopf et al. 2001) as ALAD Sec. V-B and RCGAN Sec. 5.2 configure it: RBF kernel
with gamma = 1 / n_features, nu = the expected anomaly proportion (the protocol's contamination).

libsvm's fit is quadratic to cubic in the number of samples, so training sets larger than
`max_train_samples` (default 20,000: KDD99's normal-only half has ~200,000 rows) are subsampled with the
run seed; the number of rows actually used is recorded as `fit_rows`."""

from __future__ import annotations

import numpy as np
from sklearn.svm import OneClassSVM

from ganad_bench.models.base import Detector, flatten, subsample
from ganad_bench.models.registry import register


@register("ocsvm")
class OneClassSVMDetector(Detector):
    def __init__(self, seed: int = 0, nu: float = 0.1, gamma: float | str = "inverse_features",
                 max_train_samples: int | None = 20000, cache_size_mb: int = 1000):
        super().__init__(seed)
        self.nu, self.gamma = float(nu), gamma
        self.max_train_samples = max_train_samples
        self.cache_size_mb = cache_size_mb
        self.model: OneClassSVM | None = None
        self.fit_rows = 0

    def fit(self, x, x_val=None):
        x = subsample(flatten(x), self.max_train_samples, self.seed)
        gamma = 1.0 / x.shape[1] if self.gamma == "inverse_features" else self.gamma
        self.model = OneClassSVM(kernel="rbf", nu=self.nu, gamma=gamma, cache_size=self.cache_size_mb)
        self.model.fit(x)
        self.fit_rows = len(x)
        return self

    def score_samples(self, x) -> np.ndarray:
        # decision_function is positive inside the learned support (normal): negate it.
        return -self.model.decision_function(flatten(x))
