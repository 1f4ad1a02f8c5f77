"""BatchNorm statistics re-estimated on a scoring path (`kit.blocks.reestimate_batchnorm`, the engine's
`calibrate` hook, MEMGAN's `batchnorm_stats`) and scripts/memgan_check.py batchnorm, which compares them on a
saved run: the plain mean of what each layer saw over the pass, deterministic, nothing else touched, applied
before every validation and curve point and after training, never changing how training goes."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

from ganad_bench.errors import ConfigError
from ganad_bench.models.kit import blocks
from ganad_bench.models.kit.registry import create_detector
from ganad_bench.models.memgan import MEMGANModule
from tests.checks import cpu_trainer
from tests.conftest import load_script

pytestmark = pytest.mark.usefixtures("one_torch_thread")
BATCH = 8


def tiny_module() -> MEMGANModule:
    torch.manual_seed(0)
    return MEMGANModule((1, 16, 16), 8, n_memory=5, arch="conv", width=8, spectral_norm=True, image_dropout=0.0,
                        projection_loss=True, batchnorm_stats="scoring_path", encoder_loss="min_max",
                        memory_init="normal").eval()


def first_batchnorm(module):
    return next(m for m in module.encoder.modules() if isinstance(m, blocks.BATCH_NORMS))


def images(n: int) -> torch.Tensor:
    return torch.as_tensor(np.random.default_rng(0).uniform(-1, 1, (n, 1, 16, 16)).astype(np.float32))


def test_reestimated_statistics_are_the_mean_over_whole_batches_and_touch_nothing_else():
    module = tiny_module()
    x = images(3 * BATCH + 5)
    probe = copy.deepcopy(module)  # what the first layer sees on the scoring path, batch by batch, nothing else
    probe.eval()
    first_batchnorm(probe).train()
    seen = []
    first_batchnorm(probe).register_forward_hook(lambda _m, inputs, _o: seen.append(inputs[0].mean(dim=(0, 2, 3))))
    with torch.no_grad():
        for start in range(0, 3 * BATCH, BATCH):  # the partial tail is left out
            probe.reconstruct(x[start:start + BATCH])
    others = {k: v.clone() for k, v in module.state_dict().items() if "running_" not in k and "num_batches" not in k}
    module.train()
    module.d_xz.eval()  # modes are put back as they were, layer by layer

    module.calibrate(x, BATCH)
    assert torch.allclose(first_batchnorm(module).running_mean, torch.stack(seen).mean(0), atol=1e-5)
    assert int(first_batchnorm(module).num_batches_tracked) == 3
    assert first_batchnorm(module).momentum == 0.1
    assert module.encoder.training and not module.d_xz.training
    after = module.state_dict()
    assert all(torch.equal(after[k], v) for k, v in others.items())  # weights, spectral-norm vectors, streams
    stats = {k: v.clone() for k, v in after.items()}
    module.calibrate(x, BATCH)  # no randomness: the same weights give the same statistics
    assert all(torch.equal(module.state_dict()[k], v) for k, v in stats.items())


def test_fewer_rows_than_a_batch_are_one_batch_and_other_modes_leave_the_statistics():
    module = tiny_module()
    module.calibrate(images(3), BATCH)
    assert int(first_batchnorm(module).num_batches_tracked) == 1
    module = tiny_module()
    module.batchnorm_stats = "training"
    before = first_batchnorm(module).running_mean.clone()
    module.calibrate(images(3 * BATCH), BATCH)
    assert torch.equal(first_batchnorm(module).running_mean, before)


def fitted(stats: str, curve_every=None, epochs=2):
    """A tiny image MEMGAN (its encoder and generator have BatchNorm) with a validation split."""
    rng = np.random.default_rng(0)

    def draw(n, centre):
        return np.clip(rng.normal(centre, 0.5, (n, 1, 16, 16)), -1, 1).astype(np.float32)

    x, x_test, labels = draw(96, 0.3), np.vstack([draw(20, 0.3), draw(10, -0.3)]), np.r_[np.zeros(20), np.ones(10)]
    det = create_detector("memgan", seed=0, trainer=cpu_trainer(epochs=epochs, batch_size=16, curve_every=curve_every),
                          n_memory=4, width=8, arch="conv", batchnorm_stats=stats)
    if curve_every:
        det.watch(x_test, labels)
    det.fit(x[:80], x[80:])
    return det, x[:80], x[80:], x_test


def test_memgan_scores_with_scoring_path_statistics_and_trains_as_without_them():
    det, x_train, x_val, x_test = fitted("scoring_path", curve_every=1)
    plain, *_ = fitted("training")
    alone, *_ = fitted("scoring_path")
    module, trained = det.scoring_module, plain.scoring_module
    weights = [k for k in trained.state_dict() if "running_" not in k and "num_batches" not in k]
    assert all(torch.equal(module.state_dict()[k], trained.state_dict()[k]) for k in weights)  # same training
    expected = copy.deepcopy(trained)
    expected.batchnorm_stats = "scoring_path"
    expected.calibrate(torch.as_tensor(det.preprocess(x_train)), 16)
    assert all(torch.equal(module.state_dict()[k], v) for k, v in expected.state_dict().items())
    assert not torch.equal(first_batchnorm(module).running_var, first_batchnorm(trained).running_var)
    # the recorded validation loss is the scoring network's, and curve points change nothing
    assert det.history[-1]["val_loss"] == pytest.approx(det.validation_loss(x_val), rel=1e-6)
    assert det.history[-1]["val_loss"] != pytest.approx(plain.validation_loss(x_val), rel=1e-6)
    assert np.array_equal(det.score_samples(x_test), alone.score_samples(x_test))


def test_memgan_rejects_an_unknown_batchnorm_source():
    from ganad_bench.errors import ConfigError

    with pytest.raises(ConfigError, match="batchnorm_stats must be one of scoring_path, training"):
        create_detector("memgan", batchnorm_stats="eval")


@pytest.fixture(scope="module")
def check_script():
    return load_script("memgan_check")


def test_the_check_script_reestimates_on_a_copy_with_and_without_memory_batches(check_script):
    module = tiny_module()
    x = images(3 * check_script.BATCH + 5).numpy()
    before = first_batchnorm(module).running_mean.clone()
    scoring = check_script.reestimated(module, x, with_memory_batches=False)
    assert torch.equal(first_batchnorm(module).running_mean, before)  # the original is untouched
    module.calibrate(torch.as_tensor(x), check_script.BATCH)  # the same statistics as the detector's own
    assert torch.equal(first_batchnorm(scoring).running_mean, first_batchnorm(module).running_mean)
    mixed = check_script.reestimated(module, x, with_memory_batches=True)
    assert not torch.allclose(first_batchnorm(mixed).running_mean, first_batchnorm(scoring).running_mean)


def test_the_check_script_names_what_is_wrong_with_a_folder(check_script, tmp_path):
    row = {"status": "ok", "model": "deep_svdd", "dataset": "mnist", "protocol": "one_class", "seed": 0,
           "metrics": {"auroc": 0.9}}
    # no row, a row cut short, a failed run: one line each, not a traceback from json
    for text in (None, json.dumps(row)[:30], json.dumps({**row, "status": "failed"})):
        if text is not None:
            (tmp_path / "result.json").write_text(text)
        with pytest.raises(ConfigError, match="holds no finished run .*: give a finished MEMGAN run's folder"):
            check_script.batchnorm_check(tmp_path)
    (tmp_path / "result.json").write_text(json.dumps(row))
    with pytest.raises(ConfigError, match="has no detector.pt: give the run's own folder"):
        check_script.batchnorm_check(tmp_path)
    (tmp_path / "detector.pt").write_bytes(b"")
    with pytest.raises(ConfigError, match="is a deep_svdd run: give a MEMGAN run's folder"):
        check_script.batchnorm_check(tmp_path)


def test_runs_from_before_the_setting_keep_their_folder_and_read_as_trained_statistics():
    from ganad_bench.results.store import config_hash

    before = {"model": {"name": "memgan", "params": {"n_memory": 50}}, "trainer": {"epochs": 7}, "seed": 0}
    training = {**before, "model": {"name": "memgan", "params": {"n_memory": 50, "batchnorm_stats": "training"}}}
    scoring = {**before, "model": {"name": "memgan", "params": {"n_memory": 50, "batchnorm_stats": "scoring_path"}}}
    assert config_hash(before) == config_hash(training) != config_hash(scoring)


def test_checkpoints_from_before_the_setting_resume_at_trained_statistics(tmp_path):
    """At its old default the parameter stays out of the checkpoint fingerprint as it does out of the folder
    hash: a MEMGAN checkpoint written before the setting existed resumes, one of the other setting does not."""
    from tests.checks import Interrupt, stop_after

    x = np.clip(np.random.default_rng(0).normal(0.3, 0.5, (48, 1, 16, 16)), -1, 1).astype(np.float32)

    def memgan(stats, **kw):
        return create_detector("memgan", seed=0, trainer=cpu_trainer(epochs=2, batch_size=16), n_memory=4, width=8,
                               arch="conv", batchnorm_stats=stats, checkpoint_dir=str(tmp_path), **kw)

    with pytest.raises(Interrupt):
        memgan("training", callbacks=[stop_after(1)]).fit(x)
    fingerprint = torch.load(tmp_path / "last.pt", weights_only=False)["fingerprint"]
    assert "batchnorm_stats" not in fingerprint["params"] + fingerprint["training_params"]
    resumed = memgan("training")
    resumed.fit(x)
    assert resumed.resumed_from["epoch"] == 1
    assert memgan("scoring_path").fit(x).resumed_from is None
