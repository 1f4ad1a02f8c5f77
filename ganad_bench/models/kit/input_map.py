"""An optional input transform, fitted on a detector's training rows only (the classic detectors' `contrast_norm`
and `pca`, the deep baselines' `contrast_norm`).

Deep SVDD (Ruff et al. 2018), whose shallow-baseline numbers MEMGAN Tables 1-2 reprint, preprocessed its
baselines differently per method (reference code lukasruff/Deep-SVDD: `datasets/preprocessing.py` and
`scripts/mnist_{if,kde,ocsvm}.sh`): the Isolation Forest saw globally contrast-normalised images (L1) reduced
by PCA to 95 % of the variance; KDE and OC-SVM optionally PCA. Those steps are per-method choices, so they
live with the detector (`model.params.contrast_norm`, `model.params.pca`), not with the dataset, and are
off unless a config turns them on:

1. `contrast_norm` ("l1" / "l2"): global contrast normalisation of each sample on its own (subtract the
   mean of its features, divide by their L1 / L2 norm), then a min-max rescale to [0, 1] with the training
   rows' global min and max (Deep SVDD's `global_contrast_normalization` + `rescale_to_unit_interval`).
   Per-sample statistics use no other sample, so nothing leaks between training and test rows.
2. `pca`: projection onto the leading principal components of the training rows: a float in (0, 1) keeps
   that fraction of the variance (Deep SVDD's `pca(..., 0.95)`), an int that many components. On raw
   pixels it removes noise directions and makes each kernel evaluation several times cheaper.
"""

from __future__ import annotations

import numpy as np

from ganad_bench.errors import ConfigError

CONTRAST_NORMS = ("l1", "l2")


def check_contrast_norm(value) -> None:
    if value is not None and value not in CONTRAST_NORMS:
        raise ConfigError(f"model.params.contrast_norm={value!r}: choose null, l1 or l2")


class InputMap:
    def __init__(self, contrast_norm: str | None = None, pca: float | int | None = None, seed: int = 0):
        check_contrast_norm(contrast_norm)
        if pca is not None and (isinstance(pca, bool) or not isinstance(pca, (int, float)) or
                                (isinstance(pca, float) and not 0.0 < pca < 1.0) or (isinstance(pca, int) and pca < 1)):
            raise ConfigError(f"model.params.pca={pca!r} must be null, a fraction of variance in (0, 1) or a "
                              f"number of components >= 1: e.g. model.params.pca=0.95")
        self.contrast_norm = contrast_norm
        self.pca_components = pca
        self.seed = seed
        self.low = self.span = None
        self.pca = None

    def fit(self, x: np.ndarray) -> InputMap:
        """Fit on flattened (n, features) training rows."""
        if self.contrast_norm is not None:
            normalised = self._gcn(x)
            self.low = float(normalised.min())
            self.span = float(normalised.max() - self.low) or 1.0
            x = (normalised - self.low) / self.span
        if self.pca_components is not None:
            if isinstance(self.pca_components, int) and self.pca_components > min(x.shape):
                raise ConfigError(f"model.params.pca={self.pca_components} exceeds the {min(x.shape)} components "
                                  f"that {x.shape[0]} training rows of {x.shape[1]} features allow: lower it")
            self.pca = _fit_pca(x, self.pca_components, self.seed)
        return self

    def state(self) -> dict:
        """The fitted contrast normalisation as plain values (saved with a deep detector; PCA is only used
        by the classic detectors, which are saved as their training rows)."""
        if self.pca is not None:
            raise ValueError("an InputMap with PCA is saved as its training rows, not as a state")
        return {"contrast_norm": self.contrast_norm, "low": self.low, "span": self.span}

    @classmethod
    def from_state(cls, state: dict) -> InputMap:
        input_map = cls(contrast_norm=state["contrast_norm"])
        input_map.low, input_map.span = state["low"], state["span"]
        return input_map

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.contrast_norm is not None:
            x = (self._gcn(x) - self.low) / self.span
        if self.pca is not None:
            x = self.pca.transform(x)
        return x

    def _gcn(self, x: np.ndarray) -> np.ndarray:
        centred = x - x.mean(axis=1, keepdims=True)
        norm = np.abs(centred).sum(axis=1, keepdims=True) if self.contrast_norm == "l1" else \
            np.sqrt((centred**2).sum(axis=1, keepdims=True))
        return centred / np.where(norm > 0, norm, 1.0)  # a constant image stays all zeros


def _fit_pca(x: np.ndarray, n_components, seed: int):
    """An exact PCA. With more rows than features it eigendecomposes the features x features covariance
    ("covariance_eigh": faster there, and robust where LAPACK's divide-and-conquer SVD fails to converge,
    as it does on the contrast-normalised MNIST 2s and 3s); otherwise a full SVD, with that fallback."""
    from sklearn.decomposition import PCA

    solvers = ("covariance_eigh",) if x.shape[0] >= x.shape[1] else ("full", "covariance_eigh")
    for solver in solvers:
        try:
            return PCA(n_components=n_components, svd_solver=solver, random_state=seed).fit(x)
        except np.linalg.LinAlgError:
            if solver == solvers[-1]:
                raise
