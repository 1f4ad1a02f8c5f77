"""The energy-based deep baselines DAGMM and DSEBM (-e / -r) on tiny CPU problems: composition with the input
shapes, the papers' networks, a short training run beats the untrained network, scores ignore order and
chunking, the GMM is a valid mixture on degenerate data, DSEBM-e / -r share their training, resume, NaN guard,
save / load and the Hydra configs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf
from sklearn.metrics import roc_auc_score

from ganad_bench.errors import ConfigError, TrainingDiverged
from ganad_bench.models.dagmm import gmm_parameters, sample_energy
from ganad_bench.models.kit.catalog import available_detectors
from ganad_bench.models.kit.contract import Detector
from ganad_bench.models.kit.registry import create_detector
from ganad_bench.training.engine import CHECKPOINT_FILE
from ganad_bench.training.noise import Dropout
from ganad_bench.training.settings import TrainerConfig
from tests.checks import assert_order_and_chunk_invariant

MODELS = ["dagmm", "dsebm_e", "dsebm_r"]
CONF = Path(__file__).resolve().parents[1] / "conf"

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make(name, seed=0, checkpoint_dir=None, callbacks=(), params=None, **trainer):
    settings = {"device": "cpu", "epochs": 1, "batch_size": 64, "lr": 1e-3, "progress": False,
                "checkpoint_seconds": 0, **trainer}
    return create_detector(name, seed=seed, trainer=settings, checkpoint_dir=checkpoint_dir, callbacks=callbacks,
                           **(params or {}))


def manifold(seed=0, d=6, n=512, n_test=200, n_anomalies=50):
    """Normal rows on a noisy 1-D curve in R^d; anomalies are normal rows with every column shuffled
    independently (the same marginals, off the curve), so only a model of the joint structure finds them."""
    rng = np.random.default_rng(seed)

    def normal(m):
        t = rng.uniform(-1, 1, m)
        curve = np.stack([t, t ** 2, np.sin(3 * t), np.cos(2 * t), t ** 3, 0.5 * t], 1)[:, :d]
        return (curve + 0.02 * rng.normal(size=(m, d))).astype(np.float32)

    anomalies = normal(n_anomalies)
    for j in range(d):
        anomalies[:, j] = rng.permutation(anomalies[:, j])
    return normal(n), np.vstack([normal(n_test), anomalies]), np.r_[np.zeros(n_test), np.ones(n_anomalies)]


def test_energy_models_are_registered():
    assert set(MODELS) <= set(available_detectors())


@pytest.mark.parametrize("name,shape", [(m, s) for m in MODELS for s in [(6,), (121,), (274,)]]
                         + [("dsebm_e", (1, 28, 28)), ("dsebm_r", (1, 28, 28))],
                         ids=lambda v: v if isinstance(v, str) else "x".join(map(str, v)))
def test_every_model_composes_with_the_input_shapes(name, shape):
    x = np.random.default_rng(0).uniform(0, 1, size=(16, *shape)).astype(np.float32)
    det = make(name, batch_size=8).fit(x)
    scores = det.score_samples(x[:5])
    assert scores.shape == (5,) and np.isfinite(scores).all()


@pytest.mark.parametrize("width,hidden,latent,k", [(121, [60, 30, 10], 1, 4), (6, [12, 4], 1, 2),
                                                   (274, [10], 2, 2), (166, [60, 30, 10], 1, 4)])
def test_dagmm_networks_follow_section_4_3(width, hidden, latent, k):
    net = make("dagmm").build((width,))
    enc = [m.out_features for m in net.encoder.modules() if isinstance(m, torch.nn.Linear)]
    dec = [m.out_features for m in net.decoder.modules() if isinstance(m, torch.nn.Linear)]
    est = [m.out_features for m in net.estimator.modules() if isinstance(m, torch.nn.Linear)]
    assert enc == [*hidden, latent] and dec == [*hidden[::-1], width] and est == [10, k]
    assert net.estimator[0].in_features == latent + 2
    assert any(isinstance(m, Dropout) and m.p == 0.5 for m in net.estimator)


@pytest.mark.parametrize("shape,sizes", [((121,), [128, 512]), ((274,), [10, 2]), ((6,), [128, 512]),
                                         ((1, 28, 28), [64, 128]), ((3, 32, 32), [64, 128])])
def test_dsebm_networks_follow_alad(shape, sizes):
    net = make("dsebm_e").build(shape)
    layers = [m for m in net.features.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]
    assert [getattr(m, "out_features", getattr(m, "out_channels", None)) for m in layers] == sizes
    assert net.b_prime.shape == shape
    assert net.energy(torch.zeros(2, *shape)).shape == (2,)


@pytest.mark.parametrize("name", MODELS)
def test_short_training_beats_the_untrained_network(name):
    train, test, labels = manifold()
    aurocs = {}
    for epochs in (0, 30):
        det = make(name, epochs=epochs).fit(train)
        aurocs[epochs] = roc_auc_score(labels, det.score_samples(test))
    # DSEBM-e reaches 0.59-0.68 here over seeds 0-3 (with the global generator before the random streams, and
    # with them); the others clear 0.65
    floor = 0.58 if name == "dsebm_e" else 0.65
    assert aurocs[30] >= floor and aurocs[30] > aurocs[0] + 0.1, aurocs


@pytest.mark.parametrize("name", MODELS)
def test_scores_ignore_test_order_and_chunking(name):
    train, test, _ = manifold(1)
    det = make(name, epochs=2, score_batch_size=1000).fit(train)
    assert_order_and_chunk_invariant(det, test, rtol=1e-5)


def test_sample_energy_is_equation_6():
    from scipy.stats import multivariate_normal

    rng = np.random.default_rng(0)
    z = torch.as_tensor(rng.normal(size=(40, 3)))
    gamma = torch.softmax(torch.as_tensor(rng.normal(size=(40, 2))), 1)
    phi, mu, sigma = gmm_parameters(z, gamma, eps=1e-6)
    dens = sum(phi[k].item() * multivariate_normal(mu[k].numpy(), sigma[k].numpy()).pdf(z.numpy()) for k in range(2))
    np.testing.assert_allclose(sample_energy(z, phi, mu, sigma).numpy(), -np.log(dens), rtol=1e-9)
    # Eq. 5: phi = mean membership, mu = membership-weighted mean
    np.testing.assert_allclose(phi.numpy(), gamma.mean(0).numpy())
    np.testing.assert_allclose(mu[0].numpy(), (gamma[:, :1] * z).sum(0).numpy() / gamma[:, 0].sum().item())


@pytest.mark.parametrize("case", ["constant_columns", "constant_rows", "zeros"])
def test_dagmm_energy_is_finite_on_degenerate_features(case):
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, size=(256, 6)).astype(np.float32)
    if case == "constant_columns":
        x[:, [1, 3, 4]] = 0.5
    elif case == "constant_rows":
        x[:] = x[0]
    else:
        x[:] = 0.0
    det = make("dagmm", epochs=3).fit(x)
    assert all(np.isfinite([h["g_loss"] for h in det.history]))
    scores = det.score_samples(np.vstack([x[:10], rng.uniform(0, 1, size=(10, 6)).astype(np.float32)]))
    assert np.isfinite(scores).all()
    net = det.scoring_module
    assert torch.isfinite(net.sigma).all() and torch.isfinite(net.mu).all()
    assert (torch.linalg.eigvalsh(net.sigma) > 0).all()


def test_dagmm_gmm_is_a_valid_mixture():
    train, test, _ = manifold(2)
    det = make("dagmm", epochs=3).fit(train)
    net = det.scoring_module
    assert not net.training and bool(net.fitted)
    with torch.no_grad():
        _, z, gamma = net(torch.as_tensor(test))
    np.testing.assert_allclose(gamma.sum(1).numpy(), 1.0, atol=1e-6)
    assert float(net.phi.sum()) == pytest.approx(1.0, abs=1e-6)
    assert (torch.linalg.eigvalsh(net.sigma) > 0).all()
    np.testing.assert_allclose(net.sigma.numpy(), net.sigma.transpose(1, 2).numpy())
    # the buffers are Eq. 5 over the whole training set (eval-mode memberships), plus eps I
    with torch.no_grad():
        _, z_tr, g_tr = net(torch.as_tensor(train))
    phi, mu, sigma = gmm_parameters(z_tr.double(), g_tr.double(), eps=net.cov_eps)
    np.testing.assert_allclose(net.phi.numpy(), phi.numpy(), rtol=1e-6)
    np.testing.assert_allclose(net.mu.numpy(), mu.numpy(), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(net.sigma.numpy(), sigma.numpy(), rtol=1e-5, atol=1e-9)


def test_dsebm_e_and_r_share_training_and_differ_only_in_the_score():
    train, test, _ = manifold(3)
    e = make("dsebm_e", seed=4, epochs=3).fit(train)
    r = make("dsebm_r", seed=4, epochs=3).fit(train)
    state_e, state_r = e.scoring_module.state_dict(), r.scoring_module.state_dict()
    assert state_e.keys() == state_r.keys()
    for key in state_e:
        torch.testing.assert_close(state_e[key], state_r[key], rtol=0, atol=0)
    x = torch.as_tensor(test).requires_grad_(True)
    energy = e.scoring_module.energy(x)
    (grad,) = torch.autograd.grad(energy.sum(), x)
    np.testing.assert_allclose(e.score_samples(test), energy.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(r.score_samples(test), grad.pow(2).sum(1).numpy(), rtol=1e-5)
    assert not np.allclose(e.score_samples(test), r.score_samples(test))


def test_dsebm_reconstruction_is_one_gradient_step():
    net = make("dsebm_r").build((4,))
    x = torch.randn(3, 4)
    with torch.no_grad():  # as the engine scores
        rec, energy = net.reconstruct(x)
    # E(x) = 0.5||x - b'||^2 - sum softplus(W2 softplus(W1 x + b1) + b2): dE/dx by hand
    lin1, lin2 = [m for m in net.features if isinstance(m, torch.nn.Linear)]
    a1 = lin1(x)
    a2 = lin2(torch.nn.functional.softplus(a1))
    grad = (x - net.b_prime) - ((torch.sigmoid(a2) @ lin2.weight) * torch.sigmoid(a1)) @ lin1.weight
    torch.testing.assert_close(rec, (x - grad).detach())


@pytest.mark.parametrize("name", ["dagmm", "dsebm_r"])
def test_killed_run_resumes_to_the_same_scores(name, tmp_path):
    class Interrupt(Exception):
        pass

    def stop_after_2(engine, epoch):
        if epoch == 2:
            raise Interrupt

    train, test, _ = manifold(4, n=256)
    reference = make(name, seed=3, epochs=4, checkpoint_dir=tmp_path / "a").fit(train).score_samples(test)
    with pytest.raises(Interrupt):
        make(name, seed=3, epochs=4, checkpoint_dir=tmp_path / "b", callbacks=[stop_after_2]).fit(train)
    assert torch.load(tmp_path / "b" / CHECKPOINT_FILE, weights_only=False)["epoch"] == 2
    resumed = make(name, seed=3, epochs=4, checkpoint_dir=tmp_path / "b").fit(train)
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3, 4]
    np.testing.assert_array_equal(resumed.score_samples(test), reference)


@pytest.mark.parametrize("name", MODELS)
def test_nan_is_caught(name):
    x = np.random.default_rng(0).uniform(size=(128, 6)).astype(np.float32)
    x[5, 2] = 3e38  # finite (NaN input is refused by the contract before training), but its square is not
    with pytest.raises(TrainingDiverged, match="NaN or inf"):
        make(name, epochs=2).fit(x)


@pytest.mark.parametrize("name", MODELS)
def test_save_and_load_keep_the_scores(name, tmp_path):
    train, test, _ = manifold(5, n=256)
    det = make(name, epochs=1).fit(train)
    det.save(tmp_path / "det.pkl")
    np.testing.assert_allclose(Detector.load(tmp_path / "det.pkl").score_samples(test), det.score_samples(test),
                               rtol=1e-6, atol=1e-6)


def test_bad_parameters_are_config_errors():
    with pytest.raises(ConfigError, match="arch"):
        make("dagmm", params={"arch": "nope"})
    with pytest.raises(ConfigError, match="cov_eps"):
        make("dagmm", params={"cov_eps": 0})
    with pytest.raises(ConfigError, match="noise_std"):
        make("dsebm_e", params={"noise_std": -1})
    with pytest.raises(ConfigError, match="arch"):
        make("dsebm_r", params={"arch": "conv"}).fit(np.zeros((4, 6), np.float32))


def compose_cfg(*overrides):
    with initialize_config_module("ganad_bench.conf", version_base=None):
        return compose("config", overrides=list(overrides))


@pytest.mark.parametrize("model,dataset,lr,batch,epochs", [
    ("dagmm", "kdd99", 1e-4, 1024, 200), ("dagmm", "thyroid", 1e-4, 1024, 20000),
    ("dagmm", "arrhythmia", 1e-4, 128, 10000), ("dsebm_e", "kdd99", 1e-4, 100, 100),
    ("dsebm_r", "arrhythmia", 1e-4, 26, 1000), ("dsebm_r", "thyroid", 1e-4, 100, 200)])
def test_configs_carry_the_papers_settings_and_build(model, dataset, lr, batch, epochs):
    cfg = compose_cfg(f"model={model}", f"dataset={dataset}", "trainer.device=cpu")
    assert (cfg.trainer.lr, cfg.trainer.batch_size, cfg.trainer.epochs) == (lr, batch, epochs)
    assert cfg.trainer.ema_decay is None and list(cfg.trainer.betas) == [0.9, 0.999]
    TrainerConfig.from_dict(dict(cfg.trainer))
    det = create_detector(cfg.model.name, seed=0, trainer=OmegaConf.to_container(cfg.trainer),
                          **OmegaConf.to_container(cfg.model.params))
    assert det.name == model and det.engine is None


def test_dsebm_e_and_r_configs_differ_only_in_the_name():
    pairs = [(CONF / "model" / "dsebm_e.yaml", CONF / "model" / "dsebm_r.yaml")]
    pairs += [(p, p.with_name(p.name.replace("_dsebm_e", "_dsebm_r")))
              for p in (CONF / "dataset_model").glob("*_dsebm_e.yaml")]
    assert len(pairs) > 3
    for e, r in pairs:
        a, b = OmegaConf.load(e), OmegaConf.load(r)
        if "defaults" in a:  # each takes its own model's parameter defaults (the same constructor)
            assert a.pop("defaults")[0] == {"/model_params@model.params": "dsebm_e"}
            assert b.pop("defaults")[0] == {"/model_params@model.params": "dsebm_r"}
        if "model" in a:
            assert a.model.name == "dsebm_e" and b.model.name == "dsebm_r"
            a.model.name = b.model.name = "x"
        assert a == b, (e, r)


def test_energy_baselines_experiment_composes():
    with initialize_config_module("ganad_bench.conf", version_base=None):
        cfg = compose("config", overrides=["experiment=energy_baselines"], return_hydra_config=True)
    params = cfg.hydra.sweeper.params
    assert params.model == "dagmm,dsebm_e,dsebm_r" and params.dataset == "kdd99,arrhythmia,thyroid"
