"""Gaussian kernel density estimation; score = negative log-density.

The bandwidth is chosen by `cv`-fold cross-validated log-likelihood over a log-spaced grid, on the
training data only (scikit-learn GridSearchCV + KernelDensity), as the one-class KDE baselines of
Ruff et al. 2018 (MEMGAN Table 1's KDE column) did. Training sets larger than `max_train_samples`
are subsampled with the run seed: a KDE is a sum over its training points, so scoring costs
O(n_train) per sample.

`contrast_norm` and `pca` (default off) transform the inputs first (`input_map.InputMap`, fitted on the
kept training rows). The image configs set pca = 0.95 (conf/dataset_model/<image dataset>_kde.yaml; Deep
SVDD's KDE baseline also ran on PCA components): on MNIST it keeps 110-150 of the 784 pixel dimensions and
makes a run about 3x faster, for an AUROC within about 1 point of the KDE on raw pixels.

Scoring is exact: log-sum-exp of Gaussian kernels over all kept training points, computed with BLAS
in chunks. It equals `KernelDensity.score_samples` where the density is not vanishingly small, is
orders of magnitude faster than its tree search in 100+ dimensions, and stays exact for far outliers,
where the tree's kernel sums underflow (e.g. -72.9 exact vs -67.6 from the tree on a test point).
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KernelDensity

from ganad_bench.models.kit.contract import ShallowDetector, flatten, is_count, is_number, require, subsample
from ganad_bench.models.kit.input_map import InputMap
from ganad_bench.models.kit.registry import register


@register("kde")
class KernelDensityDetector(ShallowDetector):
    def __init__(self, seed: int = 0, *, bandwidths: list[float] | None = None, cv: int = 5,
                 max_train_samples: int | None = 10000, max_search_samples: int = 2000,
                 chunk_size: int = 2048, contrast_norm: str | None = None, pca: float | int | None = None):
        super().__init__(seed)
        self.input_map = InputMap(contrast_norm, pca, seed=self.seed)  # validates the transform's settings
        require(bandwidths is None or (isinstance(bandwidths, (list, tuple)) and bandwidths
                                       and all(is_number(b) and b > 0 for b in bandwidths)),
                "bandwidths", "null or a list of numbers > 0", bandwidths)
        require(is_count(cv) and cv >= 2, "cv", "an integer >= 2", cv)
        require(max_train_samples is None or is_count(max_train_samples), "max_train_samples",
                "an integer >= 1 or null", max_train_samples)
        require(is_count(max_search_samples) and max_search_samples >= 2, "max_search_samples", "an integer >= 2",
                max_search_samples)
        require(is_count(chunk_size), "chunk_size", "an integer >= 1", chunk_size)
        self.bandwidth: float | None = None
        self.train: np.ndarray | None = None

    def _grid(self, x: np.ndarray) -> np.ndarray:
        if self.params["bandwidths"] is not None:
            return np.asarray(self.params["bandwidths"], dtype=np.float64)
        # A grid spanning two decades around the per-feature spread, so it fits any feature scaling.
        spread = float(np.sqrt(np.mean(np.var(x, axis=0)))) or 1.0
        return spread * np.logspace(-1.5, 0.5, 13)

    def fit_model(self, x, x_val=None):
        p = self.params
        x = subsample(flatten(x), p["max_train_samples"], self.seed)
        self.input_map = InputMap(p["contrast_norm"], p["pca"], seed=self.seed).fit(x)
        x = self.input_map(x)
        search = subsample(x, p["max_search_samples"], self.seed + 1)
        grid = GridSearchCV(KernelDensity(kernel="gaussian"), {"bandwidth": self._grid(search)},
                            cv=min(int(p["cv"]), len(search)))
        grid.fit(search)
        self.bandwidth = float(grid.best_params_["bandwidth"])
        self.train = x
        self.fit_rows = len(x)

    def log_density(self, x) -> np.ndarray:
        x = self.input_map(flatten(x))
        n, d = self.train.shape
        h2 = self.bandwidth**2
        log_norm = -np.log(n) - 0.5 * d * np.log(2.0 * np.pi * h2)
        train_sq = np.einsum("ij,ij->i", self.train, self.train)
        out = np.empty(len(x))
        for start in range(0, len(x), int(self.params["chunk_size"])):
            chunk = x[start:start + int(self.params["chunk_size"])]
            sq = np.einsum("ij,ij->i", chunk, chunk)[:, None] + train_sq[None, :] - 2.0 * chunk @ self.train.T
            out[start:start + len(chunk)] = logsumexp(-0.5 * np.maximum(sq, 0.0) / h2, axis=1) + log_norm
        return out

    def score_model(self, x) -> np.ndarray:
        return -self.log_density(x)
