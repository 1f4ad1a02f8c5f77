"""The non-adversarial deep baselines (Deep SVDD, DCAE, MemAE) on tiny CPU problems: training beats the
untrained network, every model composes with tabular and image shapes, scores ignore order and chunking,
Deep SVDD's networks are bias-free and its centre is fixed, the soft-boundary radius is the quantile,
MemAE's addressing is sparse and normalised, and an interrupted run resumes to the same scores."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

from ganad_bench.models.kit.catalog import available_detectors
from ganad_bench.models.kit.contract import Detector
from ganad_bench.models.kit.registry import create_detector
from ganad_bench.models.memae import hard_shrink
from ganad_bench.training.engine import CHECKPOINT_FILE
from tests.checks import assert_order_and_chunk_invariant, cpu_trainer

MODELS = ["deep_svdd", "dcae", "memae"]
SHAPES = [(6,), (1, 28, 28)]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def trainer(**kw):
    return cpu_trainer(**{"lr_milestones": [], **kw})


def make(name, seed=0, checkpoint_dir=None, callbacks=(), params=None, **kw):
    params = dict(params or {})
    if name == "deep_svdd":
        params.setdefault("pretrain_epochs", kw.get("epochs", 1))
    return create_detector(name, seed=seed, trainer=trainer(**kw), checkpoint_dir=checkpoint_dir,
                           callbacks=callbacks, **params)


def toy(seed=0, d=6, n=512):
    """Normal rows near a 2-d plane through (0.5, ...), anomalies off it (same mean and spread)."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(d, d)))[0]

    def draw(m, anomalous):
        coef = rng.normal(size=(m, d)) * 0.5
        coef[:, 2:] *= 0.02 if not anomalous else 1.0
        coef[:, :2] *= 1.0 if not anomalous else 0.02
        return (coef @ basis.T + 0.5).astype(np.float32)

    return draw(n, False), np.vstack([draw(200, False), draw(50, True)]), np.r_[np.zeros(200), np.ones(50)]


def test_models_are_registered():
    assert set(MODELS) <= set(available_detectors())


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("name", MODELS)
def test_every_model_composes_with_tabular_and_image_shapes(name, shape):
    x = np.random.default_rng(0).uniform(-1, 1, size=(8, *shape)).astype(np.float32)
    det = make(name).fit(x)
    scores = det.score_samples(x[:3])
    assert scores.shape == (3,) and np.isfinite(scores).all()


@pytest.mark.parametrize("name", MODELS)
def test_short_training_beats_the_untrained_network(name):
    train, test, labels = toy()
    aurocs = {}
    for budget in (0, 15):
        det = make(name, epochs=budget, batch_size=64).fit(train)
        aurocs[budget] = roc_auc_score(labels, det.score_samples(test))
    assert aurocs[15] >= 0.85, aurocs
    assert aurocs[15] > aurocs[0] + 0.05, aurocs


@pytest.mark.parametrize("name", MODELS)
def test_scores_ignore_test_order_and_chunking(name):
    train, test, _ = toy(1)
    det = make(name, epochs=2, batch_size=64, score_batch_size=1000).fit(train)
    assert_order_and_chunk_invariant(det, test, rtol=1e-4)


def test_image_scores_ignore_order_and_chunking_with_contrast_normalisation():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(16, 1, 28, 28)).astype(np.float32)
    det = make("dcae").fit(x)
    assert det.input_map is not None  # Ruff's l1 global contrast normalisation
    full = det.score_samples(x)
    det.trainer.score_batch_size = 5
    np.testing.assert_allclose(np.concatenate([det.score_samples(x[:9]), det.score_samples(x[9:])]), full,
                               rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_deep_svdd_networks_have_no_bias(shape):
    det = make("deep_svdd")
    for module in (det.build_autoencoder(shape), det.build(shape)):
        names = [n for n, _ in module.named_parameters()]
        assert names and not [n for n in names if "bias" in n], names
        norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        assert norms and all(not m.affine for m in norms)
        assert all(m.bias is None for m in module.modules() if isinstance(m, (nn.Linear, nn.Conv2d,
                                                                             nn.ConvTranspose2d)))


def test_deep_svdd_image_network_is_ruffs_lenet():
    det = make("deep_svdd")
    encoder = det.build((1, 28, 28)).encoder
    convs = [m for m in encoder.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size) for c in convs] == [(8, (5, 5)), (4, (5, 5))]
    assert encoder.fc.in_features == 4 * 7 * 7 and encoder.fc.out_features == 32
    cifar = det.build((3, 32, 32)).encoder
    assert [m.out_channels for m in cifar.modules() if isinstance(m, nn.Conv2d)] == [32, 64, 128]
    assert cifar.fc.out_features == 128


def test_deep_svdd_center_is_fixed_and_never_optimised():
    train, _, _ = toy(2)
    det = make("deep_svdd", epochs=3, batch_size=64).fit(train)
    module = det.scoring_module
    c = module.c.detach().numpy()
    np.testing.assert_array_equal(c, det.center_init)  # unchanged by the 3 epochs of training
    assert (np.abs(c) >= 0.1 - 1e-7).all()  # the eps rule
    assert "c" in dict(module.named_buffers()) and "c" not in dict(module.named_parameters())
    optimised = {id(p) for engine in (det.engine, det.pretrain_engine) for opt in engine.optimizers().values()
                 for group in opt.param_groups for p in group["params"]}
    assert id(module.c) not in optimised
    assert optimised >= {id(p) for p in module.encoder.parameters()}
    # the one-class score is the squared distance to c
    x = torch.as_tensor(train[:10])
    with torch.no_grad():
        expected = ((module.encoder(x) - module.c) ** 2).sum(1).numpy()
    np.testing.assert_allclose(det.score_samples(train[:10]), expected, rtol=1e-5, atol=1e-6)


def test_deep_svdd_soft_boundary_radius_is_the_quantile():
    train, test, _ = toy(3)
    nu = 0.2
    det = make("deep_svdd", epochs=3, batch_size=64,
               params={"objective": "soft_boundary", "nu": nu, "warmup_epochs": 1}).fit(train)
    module = det.scoring_module
    with torch.no_grad():
        dist = ((module.encoder(torch.as_tensor(train)) - module.c) ** 2).sum(1)
    radius = float(module.radius)
    assert radius > 0
    np.testing.assert_allclose(radius, float(torch.quantile(dist.sqrt(), 1 - nu)), rtol=1e-5)
    assert abs(float((dist.sqrt() > radius).float().mean()) - nu) < 0.01
    with torch.no_grad():
        expected = (((module.encoder(torch.as_tensor(test)) - module.c) ** 2).sum(1) - radius ** 2).numpy()
    np.testing.assert_allclose(det.score_samples(test), expected, rtol=1e-4, atol=1e-5)
    assert det.history[-1]["g_loss"] > radius ** 2 * 0.99  # the loss contains R^2


@pytest.mark.parametrize("similarity,memory_on", [("cosine", "image"), ("dot", "image"), ("cosine", "position")])
def test_memae_addressing_is_non_negative_sparse_and_normalised(similarity, memory_on):
    train, _, _ = toy(4)
    for x in (train, np.random.default_rng(0).uniform(-1, 1, (8, 1, 28, 28))):
        det = make("memae", epochs=2, batch_size=4, params={"similarity": similarity, "memory_on": memory_on})
        det.fit(np.asarray(x[:64], dtype=np.float32))
        module = det.scoring_module
        assert module.memory.weight.shape[0] == 100 and module.memory.shrink_thres == pytest.approx(0.01)
        with torch.no_grad():
            w = module.addressing(torch.as_tensor(np.asarray(x[:16], dtype=np.float32)))
        assert (w >= 0).all()
        assert (w == 0).any(dim=1).all()  # every query has exact zeros after shrinkage
        np.testing.assert_allclose(w.sum(1).numpy(), 1.0, atol=1e-5)
    assert det.history[-1]["g_loss"] > 0


def test_hard_shrinkage_formula():
    w = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    out = hard_shrink(w, 0.1)
    kept = torch.tensor([0.5 * 0.4 / 0.4, 0.3 * 0.2 / 0.2, 0.15 * 0.05 / 0.05, 0.0])
    torch.testing.assert_close(out, (kept / kept.sum()).unsqueeze(0))


class Interrupt(Exception):
    pass


def stop_after(epoch, stage=None):
    def callback(engine, done):
        if done == epoch and (stage is None or engine.fingerprint.get("stage") == stage):
            raise Interrupt(f"killed after epoch {done}")

    return callback


@pytest.mark.parametrize("name,params", [("memae", {}),
                                         ("deep_svdd", {"objective": "soft_boundary", "warmup_epochs": 1})])
def test_killed_run_resumes_to_the_same_scores(name, params, tmp_path):
    train, test, _ = toy(5, n=256)
    reference = make(name, epochs=4, batch_size=64, params=params, checkpoint_dir=tmp_path / "a").fit(train)
    with pytest.raises(Interrupt):
        make(name, epochs=4, batch_size=64, params=params, checkpoint_dir=tmp_path / "b",
             callbacks=[stop_after(2, "svdd" if name == "deep_svdd" else None)]).fit(train)
    stage = "svdd/" if name == "deep_svdd" else ""
    state = torch.load(tmp_path / "b" / f"{stage}{CHECKPOINT_FILE}", weights_only=False)
    assert state["epoch"] == 2
    resumed = make(name, epochs=4, batch_size=64, params=params, checkpoint_dir=tmp_path / "b").fit(train)
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3, 4]
    np.testing.assert_array_equal(resumed.score_samples(test), reference.score_samples(test))


@pytest.mark.parametrize("name", MODELS)
def test_save_and_load_keep_the_scores(name, tmp_path):
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(16, 1, 28, 28)).astype(np.float32)
    det = make(name, params={"contrast_norm": "l1"}).fit(x)
    det.save(tmp_path / "det.pkl")
    np.testing.assert_allclose(Detector.load(tmp_path / "det.pkl").score_samples(x), det.score_samples(x),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", MODELS)
def test_configs_compose_and_run_end_to_end(name, make_cfg):
    from ganad_bench.run import run

    extra = ["model.params.pretrain_epochs=1"] if name == "deep_svdd" else []
    cfg = make_cfg(f"model={name}", "dataset=thyroid", "trainer.epochs=1", "trainer.device=cpu",
                   "trainer.progress=false", *extra)
    assert cfg.trainer.ema_decay is None and cfg.trainer.lr_d is None and cfg.trainer.batch_size == 200
    row = run(cfg)
    assert row["status"] == "ok", row.get("error")
    assert 0.0 <= row["metrics"]["auroc"] <= 1.0


def test_memgan_table1_baselines_experiment_composes(make_cfg):
    from hydra import compose, initialize_config_module

    with initialize_config_module(config_module="ganad_bench.conf", version_base=None):
        cfg = compose(config_name="config", overrides=["experiment=memgan_table1_baselines", "model=memae"],
                      return_hydra_config=True)
    assert cfg.dataset.name == "mnist" and cfg.protocol.name == "one_class"
    params = cfg.hydra.sweeper.params
    assert params.model == "ocsvm,iforest,kde,anogan,deep_svdd,dcae,memae"
    assert params["dataset.normal_class"] == "range(10)" and params.seed == "range(10)"


# ------------------------------------------------------------------- the Theano code's initialisation
def test_dictionary_filters_are_unit_atoms_of_the_patches_flipped_and_seeded():
    """`learn_dictionary`'s filters: one unit-norm atom per filter, the same for the same seed, and (as
    Lasagne convolves) flipped: images made of one atom's pattern correlate most with that flipped filter."""
    from ganad_bench.models.kit.lenet import dictionary_filters

    rng = np.random.default_rng(0)
    x = rng.random((40, 1, 12, 12)).astype(np.float32)
    filters = dictionary_filters(x, 4, 5, seed=1, n_patches=500)
    assert filters.shape == (4, 1, 5, 5) and filters.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(filters.reshape(4, -1), axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(filters, dictionary_filters(x, 4, 5, seed=1, n_patches=500))
    assert not np.array_equal(filters, dictionary_filters(x, 4, 5, seed=2, n_patches=500))


def test_theano_initialisation_is_glorot_with_the_dictionary_first_and_only_for_images():
    from ganad_bench.errors import ConfigError
    from ganad_bench.models.kit.lenet import LEAKY_GAIN, autoencoder_module, dictionary_filters, make_autoencoder

    rng = np.random.default_rng(0)
    x = rng.random((30, 1, 12, 12)).astype(np.float32)
    torch.manual_seed(0)
    module = autoencoder_module((1, 12, 12), None, None, False, sigmoid=True, init="theano", seed=3)
    module.initialise_from_data(x)  # as the engine does when training starts from scratch
    encoder = module.encoder
    first, second = [m for m in encoder.features if isinstance(m, nn.Conv2d)]
    np.testing.assert_array_equal(first.weight.detach().numpy(), dictionary_filters(x, 8, 5, seed=3))
    bound = LEAKY_GAIN * (6.0 / ((8 + 4) * 25)) ** 0.5  # Glorot: gain * sqrt(6 / (fan_in + fan_out))
    assert second.weight.abs().max() <= bound and second.weight.abs().max() > 0.9 * bound
    assert encoder.fc.weight.abs().max() <= (6.0 / (encoder.fc.in_features + encoder.fc.out_features)) ** 0.5
    torch.manual_seed(0)
    default, _ = make_autoencoder((1, 12, 12))
    assert not torch.equal(default.features[0].weight, first.weight)
    without_data, _ = make_autoencoder((1, 12, 12), init="theano")  # loading a saved detector: weights follow
    assert without_data.features[0].weight.abs().max() <= LEAKY_GAIN * (6.0 / ((1 + 8) * 25)) ** 0.5
    with pytest.raises(ConfigError, match="init=pytorch for tabular rows"):
        make_autoencoder((6,), init="theano")
    with pytest.raises(ConfigError, match="model.params.init 'glorot'"):
        make("dcae", params={"init": "glorot"})


@pytest.mark.parametrize("name", ["dcae", "deep_svdd"])
def test_theano_initialised_networks_train_score_and_reload(name, tmp_path, monkeypatch):
    import ganad_bench.models.kit.lenet as lenet

    rng = np.random.default_rng(0)
    x = rng.random((24, 1, 12, 12)).astype(np.float32)
    learnt = []
    original = lenet.dictionary_filters
    monkeypatch.setattr(lenet, "dictionary_filters", lambda *a, **kw: learnt.append(original(*a, **kw)) or learnt[-1])
    det = make(name, params={"init": "theano"}, epochs=1).fit(x)
    assert len(learnt) == 1 and learnt[0].shape == (8, 1, 5, 5)  # once, from the training images while fitting
    scores = det.score_samples(x)
    assert np.isfinite(scores).all()
    det.save(tmp_path / "det")
    np.testing.assert_allclose(Detector.load(tmp_path / "det").score_samples(x), scores, rtol=1e-5)


@pytest.mark.parametrize("name,stage", [("dcae", None), ("deep_svdd", "pretrain"), ("deep_svdd", "svdd")])
def test_a_resumed_theano_run_does_not_learn_its_dictionary_again(name, stage, tmp_path, monkeypatch):
    """The first layer's dictionary (seconds of scikit-learn a run) is learnt when training starts from scratch;
    a run resumed from its checkpoint, whose weights replace it, does not learn it again, and ends the same."""
    import ganad_bench.models.kit.lenet as lenet

    x = np.random.default_rng(0).random((24, 1, 12, 12)).astype(np.float32)
    learnt = []
    original = lenet.dictionary_filters
    monkeypatch.setattr(lenet, "dictionary_filters", lambda *a, **kw: learnt.append(original(*a, **kw)) or learnt[-1])
    reference = make(name, params={"init": "theano"}, epochs=3, checkpoint_dir=tmp_path / "a").fit(x).score_samples(x)
    with pytest.raises(Interrupt):
        make(name, params={"init": "theano"}, epochs=3, checkpoint_dir=tmp_path / "b",
             callbacks=[stop_after(2, stage)]).fit(x)
    assert len(learnt) == 2
    resumed = make(name, params={"init": "theano"}, epochs=3, checkpoint_dir=tmp_path / "b").fit(x)
    engine = resumed.pretrain_engine if stage == "pretrain" else resumed.engine  # the stage it stopped in
    assert len(learnt) == 2 and engine.resumed_from["epoch"] == 2
    np.testing.assert_array_equal(resumed.score_samples(x), reference)
    np.testing.assert_array_equal(learnt[0], learnt[1])


def test_deep_svdd_without_pretraining_starts_from_the_learnt_dictionary(monkeypatch):
    import ganad_bench.models.kit.lenet as lenet

    x = np.random.default_rng(0).random((24, 1, 12, 12)).astype(np.float32)
    learnt = []
    original = lenet.dictionary_filters
    monkeypatch.setattr(lenet, "dictionary_filters", lambda *a, **kw: learnt.append(original(*a, **kw)) or learnt[-1])
    det = make("deep_svdd", params={"init": "theano", "pretrain_epochs": 0}, epochs=0).fit(x)
    first = next(m for m in det.scoring_module.encoder.features if isinstance(m, nn.Conv2d))
    assert len(learnt) == 1
    np.testing.assert_array_equal(first.weight.detach().numpy(), learnt[0])
