"""scripts/gan_measure.py's test-split subsample (used for AnoGAN's costly latent search on MNIST): it
must keep the anomaly ratio, never repeat a row, and be the same for the same seed."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from tests.conftest import REPO


@pytest.fixture(scope="module")
def gan_measure():
    spec = importlib.util.spec_from_file_location("gan_measure", REPO / "scripts" / "gan_measure.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_stratified_subsample_keeps_the_anomaly_ratio_without_repeats(gan_measure):
    labels = np.r_[np.zeros(980, dtype=int), np.ones(8820, dtype=int)]  # one_class MNIST: 90 % anomalous
    np.random.default_rng(3).shuffle(labels)
    keep = gan_measure.stratified_subsample(labels, 1500, seed=0)
    assert len(keep) == len(np.unique(keep)) == 1500
    assert np.all(np.diff(keep) > 0)  # sorted: the subsample keeps the test order
    assert abs(labels[keep].mean() - labels.mean()) <= 1 / 1500
    assert np.array_equal(keep, gan_measure.stratified_subsample(labels, 1500, seed=0))
    assert not np.array_equal(keep, gan_measure.stratified_subsample(labels, 1500, seed=1))
