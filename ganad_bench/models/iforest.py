"""Isolation Forest (Liu et al. 2008) with scikit-learn's default parameters, as ALAD Sec. V-B
("We use default parameters provided by the scikit-learn package").

`contrast_norm` and `pca` (default off) transform the inputs first (`input_map.InputMap`, fitted on the
training rows). MEMGAN Table 1's IF column is Deep SVDD's, whose IF saw L1 global-contrast-normalised
MNIST images reduced by PCA to 95 % of the variance (lukasruff/Deep-SVDD `scripts/mnist_if.sh`:
`--gcn 1 --unit_norm_used l1 --pca`): `model.params.contrast_norm=l1 model.params.pca=0.95` reproduces
that column within 0.5 AUROC points on every class (3 seeds), where plain pixels fall up to 15 points
short (digits 2, 5, 8). The default keeps ALAD's setting (plain inputs, ALAD Tables II-III);
`conf/dataset_model/mnist_iforest.yaml` turns Deep SVDD's preprocessing on for MNIST."""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import IsolationForest

from ganad_bench.models.kit.contract import ShallowDetector, flatten, is_count, is_fraction, require
from ganad_bench.models.kit.input_map import InputMap
from ganad_bench.models.kit.registry import register


@register("iforest")
class IsolationForestDetector(ShallowDetector):
    def __init__(self, seed: int = 0, *, n_estimators: int = 100, max_samples="auto", max_features: float = 1.0,
                 n_jobs: int | None = None, contrast_norm: str | None = None, pca: float | int | None = None):
        super().__init__(seed)
        self.input_map = InputMap(contrast_norm, pca, seed=self.seed)  # validates the transform's settings
        require(is_count(n_estimators), "n_estimators", "an integer >= 1", n_estimators)
        require(max_samples == "auto" or is_count(max_samples) or is_fraction(max_samples), "max_samples",
                "auto, an integer >= 1 or a fraction in (0, 1]", max_samples)
        require(is_count(max_features) or is_fraction(max_features), "max_features",
                "an integer >= 1 or a fraction in (0, 1]", max_features)
        # scikit-learn's meaning: -1 every core, -2 all but one; 0 means nothing and failed the run in joblib
        require(n_jobs is None or isinstance(n_jobs, int) and not isinstance(n_jobs, bool) and n_jobs != 0, "n_jobs",
                "a non-zero integer (-1: every CPU core) or null", n_jobs)

    def fit_model(self, x, x_val=None):
        p = self.params
        x = flatten(x)
        self.input_map = InputMap(p["contrast_norm"], p["pca"], seed=self.seed).fit(x)
        self.model = IsolationForest(n_estimators=p["n_estimators"], max_samples=p["max_samples"],
                                     max_features=p["max_features"], n_jobs=p["n_jobs"], random_state=self.seed)
        self.model.fit(self.input_map(x))

    def score_model(self, x) -> np.ndarray:
        # sklearn's score_samples is higher for NORMAL points; the contract wants the opposite.
        return -self.model.score_samples(self.input_map(flatten(x)))
