"""scripts/gan_measure.py's test-split subsample (used for AnoGAN's costly latent search on MNIST): it
must keep the anomaly ratio, never repeat a row, and be the same for the same seed."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import load_script


@pytest.fixture(scope="module")
def gan_measure():
    return load_script("gan_measure")


def test_stratified_subsample_keeps_the_anomaly_ratio_without_repeats(gan_measure):
    labels = np.r_[np.zeros(980, dtype=int), np.ones(8820, dtype=int)]  # one_class MNIST: 90 % anomalous
    np.random.default_rng(3).shuffle(labels)
    keep = gan_measure.stratified_subsample(labels, 1500, seed=0)
    assert len(keep) == len(np.unique(keep)) == 1500
    assert np.all(np.diff(keep) > 0)  # sorted: the subsample keeps the test order
    assert abs(labels[keep].mean() - labels.mean()) <= 1 / 1500
    assert np.array_equal(keep, gan_measure.stratified_subsample(labels, 1500, seed=0))
    assert not np.array_equal(keep, gan_measure.stratified_subsample(labels, 1500, seed=1))


def test_drop_train_above_drops_only_the_training_rows_beyond_it(gan_measure):
    """--drop-train-above: the outlier experiment removes the training rows whose largest absolute feature exceeds
    the bound (KDD99's 693,375,640-byte row) and leaves the test rows and labels alone."""
    from types import SimpleNamespace

    x_train = np.zeros((6, 3), dtype=np.float32)
    x_train[2, 1], x_train[4, 0] = 7e8, -2e8
    x_test = np.full((4, 3), 9e8, dtype=np.float32)
    data = SimpleNamespace(x_train=x_train, x_test=x_test, split=SimpleNamespace(test_labels=[0, 1, 0, 1]))
    kept, test, labels = gan_measure.test_split(data, 0, None, None, drop_train_above=1e8)
    assert np.array_equal(kept, x_train[[0, 1, 3, 5]])
    assert test is x_test and list(labels) == [0, 1, 0, 1]
    assert len(gan_measure.test_split(data, 0, None, None)[0]) == 6


def test_the_learning_curve_of_every_score_ends_at_the_final_scores(gan_measure, make_cfg, tiny_data,
                                                                      one_torch_thread):
    """--eval-epochs --all-scores: each score's curve point after the last epoch is that score's result on the
    finished networks (one curve implementation: the detector's `learning_curve_point`)."""
    from types import SimpleNamespace

    from ganad_bench.config import to_container

    config = to_container(make_cfg("model=alad", "dataset=musk", "trainer.epochs=2", "trainer.batch_size=32",
                                   data_dir=tiny_data))
    args = SimpleNamespace(max_train=None, max_test=None, eval_epochs=[1, 2], checkpoint_root=None, all_scores=True,
                           drop_train_above=None)
    row = gan_measure.measure_seed(config, 0, args)
    assert [p["epoch"] for p in row["curve"]] == [1, 2]
    last = row["curve"][-1]
    assert last["auroc"] == pytest.approx(row["auroc"]) and last["f1"] == pytest.approx(row["f1"])
    for name in ("l1", "l2", "logits", "features"):
        assert last[f"auroc_{name}"] == pytest.approx(row[f"score_{name}"]["auroc"])
