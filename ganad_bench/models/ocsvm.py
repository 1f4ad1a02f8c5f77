"""One-class SVM (Schölkopf et al. 2001) as ALAD Sec. V-B and RCGAN Sec. 5.2 configure it: RBF kernel
with gamma = 1 / n_features, nu = the expected anomaly proportion (the protocol's contamination).

libsvm's fit is quadratic to cubic in the number of samples, so training sets larger than
`max_train_samples` (default 20,000: KDD99's normal-only half has ~200,000 rows) are subsampled with the
run seed; the number of rows actually used is recorded as `fit_rows`.

Images (one-class protocols): nu falls back to 0.1 there, because those protocols have no contamination
(`contamination: null`). Deep SVDD (Ruff et al. 2018), whose OC-SVM numbers MEMGAN Table 1 reprints,
picked nu from {0.01, 0.1} and gamma from {2^-10, ..., 2^-1} by AUROC on 10 % of the TEST set; model
selection on test labels is excluded here (DESIGN.md), so nu = 0.1 and gamma = 1 / n_features are fixed
(with pixels in [-1, 1] this reproduces the published MNIST column within 0.5 AUROC points on every
class). `contrast_norm` and `pca` (default off) transform the inputs first (`input_map.InputMap`)."""

from __future__ import annotations

import numpy as np
from sklearn.svm import OneClassSVM

from ganad_bench.models.kit.contract import (
    ShallowDetector,
    flatten,
    is_count,
    is_fraction,
    is_number,
    require,
    subsample,
)
from ganad_bench.models.kit.input_map import InputMap
from ganad_bench.models.kit.registry import register


@register("ocsvm")
class OneClassSVMDetector(ShallowDetector):
    def __init__(self, seed: int = 0, *, nu: float = 0.1, gamma: float | str = "inverse_features",
                 max_train_samples: int | None = 20000, cache_size_mb: int = 1000,
                 contrast_norm: str | None = None, pca: float | int | None = None):
        super().__init__(seed)
        self.input_map = InputMap(contrast_norm, pca, seed=self.seed)  # validates the transform's settings
        require(is_fraction(nu), "nu", "a fraction in (0, 1]", nu)
        require(gamma in ("inverse_features", "scale", "auto") or (is_number(gamma) and gamma > 0), "gamma",
                "inverse_features, scale, auto or a number > 0", gamma)
        require(max_train_samples is None or is_count(max_train_samples), "max_train_samples",
                "an integer >= 1 or null", max_train_samples)
        require(is_number(cache_size_mb) and cache_size_mb > 0, "cache_size_mb", "a number > 0", cache_size_mb)
        self.model: OneClassSVM | None = None

    def fit_model(self, x, x_val=None):
        p = self.params
        x = subsample(flatten(x), p["max_train_samples"], self.seed)
        self.input_map = InputMap(p["contrast_norm"], p["pca"], seed=self.seed).fit(x)
        x = self.input_map(x)
        gamma = 1.0 / x.shape[1] if p["gamma"] == "inverse_features" else p["gamma"]
        self.model = OneClassSVM(kernel="rbf", nu=float(p["nu"]), gamma=gamma, cache_size=p["cache_size_mb"])
        self.model.fit(x)
        self.fit_rows = len(x)

    def score_model(self, x) -> np.ndarray:
        x = self.input_map(flatten(x))
        # decision_function is positive inside the learned support (normal): negate it.
        return -self.model.decision_function(x)
