"""Learning curves (`trainer.curve_every`): every that many epochs and after the last, a run records the
normal-only validation loss and the test metrics of its networks as they are then. They are reported only:
training must go on exactly as without them (same weights, same scores), the last point is the run's own
result, and the setting is not part of a run's identity."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ganad_bench import create_detector
from ganad_bench.metrics import evaluate
from ganad_bench.run import run
from ganad_bench.training.pack import run_together
from tests.checks import Interrupt, cpu_trainer, shifted_gaussians, stop_after

# ALAD: dropout and EMA; AMA: fits a Gaussian into buffers after training (`after_fit`); AnoGAN: its score
# is a seeded latent search; Deep SVDD: a pretraining stage before the scoring one
MODELS = {"alad": {}, "ama": {}, "anogan": {"search_steps": 5}, "deep_svdd": {"pretrain_epochs": 2}}


def fitted(name: str, seed: int = 0, curve_every: int | None = None, **trainer):
    x_train, x_test, labels = shifted_gaussians(seed=3, d=6, n_train=96)
    settings = {"epochs": 3, "batch_size": 16, "curve_every": curve_every, **trainer}
    det = create_detector(name, seed=seed, trainer=cpu_trainer(**settings), **MODELS[name])
    if curve_every is not None:
        det.watch(x_test, labels)
    det.fit(x_train)
    return det, x_test, labels


@pytest.mark.parametrize("name", MODELS)
def test_a_curve_leaves_training_and_scores_unchanged_and_ends_at_the_result(name, one_torch_thread):
    plain, x_test, labels = fitted(name)
    watched, _, _ = fitted(name, curve_every=1)
    expected = plain.score_samples(x_test)
    np.testing.assert_array_equal(watched.score_samples(x_test), expected)
    points = watched.learning_curve()
    assert [r["epoch"] for r in points] == [1, 2, 3]
    assert points[-1]["test_auroc"] == pytest.approx(evaluate(labels, expected)["auroc"], abs=1e-12)
    assert len({r["test_auroc"] for r in points}) > 1  # the networks change along training
    assert plain.learning_curve() == []
    assert not any(k.startswith("test_") for r in plain.history for k in r)
    if name == "deep_svdd":  # the pretraining stage (an autoencoder, not the detector) gets no curve
        assert not any(k.startswith("test_") for r in watched.pretrain_history for k in r)


def test_what_a_curve_point_draws_or_writes_is_undone(monkeypatch, one_torch_thread):
    """A curve point that draws from every global generator and advances the networks' own random streams
    (as a scoring that samples could) leaves training as it was."""
    import random

    import torch

    from ganad_bench.models.kit.deep import DeepDetector
    from ganad_bench.training.noise import RandomStream

    def greedy(self, engine):
        torch.randn(100), np.random.rand(100), random.random()
        for stream in (m for m in engine.module.modules() if isinstance(m, RandomStream)):
            stream.bits(100)
        return {"test_auroc": 0.5}

    monkeypatch.setattr(DeepDetector, "learning_curve_point", greedy)
    plain, x_test, _ = fitted("alad", ema_decay=None)
    watched, _, _ = fitted("alad", curve_every=1, ema_decay=None)
    np.testing.assert_array_equal(watched.score_samples(x_test), plain.score_samples(x_test))


def test_a_curve_costlier_than_the_training_it_follows_is_warned_about_once(monkeypatch, caplog, one_torch_thread):
    """Each point scores the whole test split: with a latent search (AnoGAN) or a pack, whose members' points
    come one after another, the curve can cost many times the training; the log says so, once, with the fix."""
    import logging
    import time

    from ganad_bench.models.kit.deep import DeepDetector
    from ganad_bench.training import engine as engine_module

    last = [0.0]

    def slow(self, engine):  # longer than the epoch before it however loaded the machine: twice the time since
        time.sleep(max(0.3, 2 * (time.monotonic() - last[0])))  # the fit began or the last point ended
        last[0] = time.monotonic()
        return {"test_auroc": 0.5}

    monkeypatch.setattr(DeepDetector, "learning_curve_point", slow)
    monkeypatch.setattr(engine_module, "_WARNED_CURVE_COST", set())
    with caplog.at_level(logging.WARNING, logger="ganad_bench"):
        last[0] = time.monotonic()
        det, _, _ = fitted("alad", curve_every=1)
    warnings = [r.getMessage() for r in caplog.records if "learning-curve point took" in r.getMessage()]
    assert len(warnings) == 1 and "raise trainer.curve_every, or set it to null" in warnings[0]
    assert all(r["curve_seconds"] >= 0.3 for r in det.history)
    monkeypatch.setattr(engine_module, "_WARNED_CURVE_COST", set())
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="ganad_bench"):
        det.engine.warn_if_curve_dominates(0.6, 1.0)  # alone: cheaper than the epoch between two points
        assert not caplog.records
        det.engine.pack_size = 2  # in a pack of 2, one point after another: 1.2 s for the pack
        det.engine.warn_if_curve_dominates(0.6, 1.0)
    assert "for each of the pack's 2 runs, one after another" in caplog.records[0].getMessage()


def test_curve_points_fall_every_n_epochs_and_after_the_last(one_torch_thread):
    det, _, _ = fitted("alad", curve_every=2, epochs=5)
    assert [r["epoch"] for r in det.learning_curve()] == [2, 4, 5]


def test_curve_points_carry_the_normal_only_validation_loss(one_torch_thread):
    x_train, x_test, labels = shifted_gaussians(seed=3, d=6, n_train=96)
    det = create_detector("alad", seed=0, trainer=cpu_trainer(epochs=2, batch_size=16, curve_every=1))
    det.watch(x_test, labels)
    det.fit(x_train[:80], x_train[80:])
    assert [set(r) >= {"epoch", "val_loss", "test_auroc"} for r in det.learning_curve()] == [True, True]


def test_a_packed_member_records_the_curve_of_its_run_alone(one_torch_thread):
    alone = [fitted("alad", seed=seed, curve_every=1)[0] for seed in (0, 1)]
    x_train, x_test, labels = shifted_gaussians(seed=3, d=6, n_train=96)
    members = [create_detector("alad", seed=seed, trainer=cpu_trainer(epochs=3, batch_size=16, curve_every=1))
               for seed in (0, 1)]
    for det in members:
        det.watch(x_test, labels)
    run_together([lambda d=d: d.fit(x_train) for d in members])
    for det, single in zip(members, alone, strict=True):
        got = [r["test_auroc"] for r in det.learning_curve()]
        assert got == pytest.approx([r["test_auroc"] for r in single.learning_curve()], abs=2e-3)


def test_an_interrupted_run_keeps_its_earlier_curve_points(tmp_path, one_torch_thread):
    x_train, x_test, labels = shifted_gaussians(seed=3, d=6, n_train=96)

    def detector(callbacks=()):
        det = create_detector("alad", seed=0, trainer=cpu_trainer(epochs=3, batch_size=16, curve_every=1),
                              checkpoint_dir=tmp_path / "ckpt", callbacks=callbacks)
        det.watch(x_test, labels)
        return det

    with pytest.raises(Interrupt):
        detector([stop_after(2)]).fit(x_train)
    resumed = detector()
    resumed.fit(x_train)
    assert resumed.resumed_from["epoch"] == 2
    assert [r["epoch"] for r in resumed.learning_curve()] == [1, 2, 3]
    straight, _, _ = fitted("alad", curve_every=1)
    assert [r["test_auroc"] for r in resumed.learning_curve()] == pytest.approx(
        [r["test_auroc"] for r in straight.learning_curve()], abs=1e-9)


def test_a_cli_run_records_its_curve_in_the_row_and_keeps_its_identity(make_cfg, tiny_data, one_torch_thread):
    common = ("model=alad", "dataset=musk", "trainer.epochs=2", "trainer.batch_size=32", "plots=false")
    plain = run(make_cfg(*common, data_dir=tiny_data))
    watched = run(make_cfg(*common, "trainer.curve_every=1", "force=true", data_dir=tiny_data))
    assert watched["config_hash"] == plain["config_hash"]  # the same run: it overwrote the same folder
    curve = watched["learning_curve"]
    assert [p["epoch"] for p in curve] == [1, 2]
    assert set(curve[0]) >= {"test_auroc", "test_auprc", "test_f1"}
    assert curve[-1]["test_f1"] == pytest.approx(watched["metrics"]["f1"])
    assert watched["metrics"] == pytest.approx(plain["metrics"])
    stored = json.loads(open(watched["result_path"]).read())
    assert stored["learning_curve"] == curve and "learning_curve" not in plain


def test_a_module_of_several_scores_records_the_curve_of_each(one_torch_thread):
    """ALAD's four scores (Table VII) are each evaluated at every point, and the run's curve is its own score's:
    its last point is the result that score gives."""
    det, x_test, labels = fitted("alad", curve_every=1)
    last = det.history[-1]
    for name in ("features", "logits", "l1", "l2"):
        det.scoring_module.score_name = name
        assert last[f"test_auroc/{name}"] == pytest.approx(evaluate(labels, det.score_samples(x_test))["auroc"],
                                                           abs=1e-12)
    det.scoring_module.score_name = "l1"
    assert det.learning_curve()[-1]["test_auroc"] == last["test_auroc/l1"]
    assert not any("test_auroc" in r for r in det.history)  # no unnamed score in a record of several


def test_a_run_that_scores_its_twins_networks_reads_its_own_scores_curve(make_cfg, one_torch_thread):
    """ALAD Table VII: the L1 run adopts the Features run's checkpoints and only scores; its curve is the L1
    score's along that training (ending at its own result), not the Features curve it inherited. (The
    embedded Thyroid: on the tiny files every score ranks perfectly, and the curves could not differ.)"""
    common = ("model=alad", "dataset=thyroid", "trainer.epochs=2", "plots=false", "trainer.curve_every=1")
    features = run(make_cfg(*common, "model.params.score=features"))
    l1 = run(make_cfg(*common, "model.params.score=l1"))
    assert l1["trained_by"]  # it trained nothing: the Features run's networks
    assert [p["epoch"] for p in l1["learning_curve"]] == [1, 2]
    assert l1["learning_curve"][-1]["test_auroc"] == pytest.approx(l1["metrics"]["auroc"])
    assert features["learning_curve"][-1]["test_auroc"] == pytest.approx(features["metrics"]["auroc"])
    trained = pd.read_csv(Path(features["result_path"]).parent / features["files"]["metrics"])
    for point, record in zip(l1["learning_curve"], trained.to_dict("records"), strict=True):
        assert point["test_auprc"] == pytest.approx(record["test_auprc/l1"])  # the twin's record of the L1 score
    assert l1["learning_curve"] != features["learning_curve"]


def test_an_adopted_point_that_does_not_name_its_score_is_not_credited(one_torch_thread):
    """A point recorded before scores were named (plain `test_<metric>`) belongs to whichever score trained the
    networks: a run that adopted them cannot tell whose, so it shows no curve rather than another's."""
    det, _, _ = fitted("alad", curve_every=1)
    det.history = [{"epoch": 1, "test_auroc": 0.9}]
    assert det.learning_curve(adopted=True) == []
    assert det.learning_curve() == [{"epoch": 1, "test_auroc": 0.9}]


@pytest.mark.parametrize("value", [0, -2, "often", 1.5])
def test_a_bad_curve_setting_is_refused_in_one_line(make_cfg, tiny_data, value):
    from ganad_bench.errors import ConfigError

    with pytest.raises(ConfigError, match="trainer.curve_every") as err:
        run(make_cfg("model=alad", "dataset=musk", f"trainer.curve_every={value}", data_dir=tiny_data))
    assert "\n" not in str(err.value)
