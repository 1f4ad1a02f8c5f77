"""Fence GAN and Skip-GANomaly on tiny CPU problems: every input shape composes, a short training run beats the
untrained network, scores ignore order and chunking, save / load and an interrupted run give the same
scores, a NaN loss ends the run, and each loss term and score is checked by hand on a tiny case."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score
from torch import nn

from ganad_bench.errors import ConfigError, TrainingDiverged
from ganad_bench.models import fgan, skip_ganomaly
from ganad_bench.models.kit.catalog import available_detectors
from ganad_bench.models.kit.contract import Detector
from ganad_bench.models.kit.registry import create_detector
from ganad_bench.training.device import seed_everything
from ganad_bench.training.engine import CHECKPOINT_FILE
from tests.checks import Interrupt, assert_order_and_chunk_invariant, cpu_trainer, poison_loss, stop_after
from tests.checks import shifted_gaussians as toy

MODELS = ["fgan", "skip_ganomaly"]
SHAPES = [(6,), (121,), (274,), (1, 16, 16), (1, 28, 28), (3, 32, 32)]
# the toy runs use one learning rate for both players (FGAN's paper D lr is half its G lr, both ~1e-5)
FAST = {"fgan": {"pretrain_epochs": 1}}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make(name, seed=0, checkpoint_dir=None, callbacks=(), params=None, **kw):
    params = {**FAST.get(name, {}), **(params or {})}
    return create_detector(name, seed=seed, trainer=cpu_trainer(**{"lr_d": None, **kw}),
                           checkpoint_dir=checkpoint_dir, callbacks=callbacks, **params)


def test_models_are_registered_with_the_papers_defaults():
    assert set(MODELS) <= set(available_detectors())
    f = create_detector("fgan")
    assert {k: f.params[k] for k in ("alpha", "beta", "gamma", "pretrain_epochs")} == {
        "alpha": 0.1, "beta": 30.0, "gamma": 0.1, "pretrain_epochs": 15}
    assert (f.trainer.lr, f.trainer.lr_d, f.trainer.batch_size, f.trainer.epochs) == (2e-5, 1e-5, 200, 100)
    assert f.trainer.ema_decay is None
    s = create_detector("skip_ganomaly")
    assert {k: s.params[k] for k in ("w_adv", "w_con", "w_lat", "score_weight", "width")} == {
        "w_adv": 1.0, "w_con": 40.0, "w_lat": 1.0, "score_weight": 0.9, "width": 64}
    assert (s.trainer.lr, s.trainer.batch_size, s.trainer.epochs, s.trainer.ema_decay) == (2e-4, 64, 15, None)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("name", MODELS)
def test_every_model_composes_with_every_shape(name, shape):
    x = np.random.default_rng(0).uniform(-1, 1, size=(8, *shape)).astype(np.float32)
    det = make(name, params={"width": 8}).fit(x)
    scores = det.score_samples(x[:3])
    assert scores.shape == (3,) and np.isfinite(scores).all()


def test_fgan_networks_are_the_authors():
    """MNIST: G 200 -> 1024 -> 7x7x128 -> 14x14x64 -> 28x28x1; D 64, 64 conv, dense 1024 (utils/model.py)."""
    seed_everything(0)
    nets = create_detector("fgan").build((1, 28, 28))
    assert nets.latent_dim == 200
    assert [m.out_features for m in nets.generator if isinstance(m, nn.Linear)] == [1024, 128 * 7 * 7]
    assert [m.out_channels for m in nets.generator if isinstance(m, nn.ConvTranspose2d)] == [64, 1]
    convs = [m for m in nets.discriminator.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 64]
    assert nets.discriminator.logit.in_features == 1024
    with torch.no_grad():
        assert nets.eval().generator(torch.zeros(2, 200)).shape == (2, 1, 28, 28)
    cifar = create_detector("fgan").build((3, 32, 32))
    assert cifar.latent_dim == 256
    assert [m.out_channels for m in cifar.discriminator.modules() if isinstance(m, nn.Conv2d)] == [32, 64, 128, 256]
    with pytest.raises(ConfigError, match="divisible by 4"):
        create_detector("fgan").build((1, 30, 30))


def test_skip_ganomaly_unet_pads_to_a_power_of_two_and_skips_every_level():
    nets = create_detector("skip_ganomaly", width=8).build((1, 28, 28)).eval()
    assert nets.padding == (2, 2, 2, 2)
    assert len(nets.generator.downs) == 5  # 32 -> 16 -> 8 -> 4 -> 2 -> 1
    # every decoder level but the innermost takes the encoder map of its level concatenated to its input
    assert [u[1].in_channels for u in nets.generator.ups] == [32, 64, 128, 64]
    assert nets.generator.out[1].in_channels == 16
    x = torch.rand(2, 1, 28, 28) * 2 - 1
    with torch.no_grad():
        assert nets.reconstruct(x).shape == x.shape
        logit, f = nets.discriminate(x)
    assert logit.shape == (2,) and f.shape == (2, 100)
    assert nets.discriminator.logit.bias is None


@pytest.mark.parametrize("name", MODELS)
def test_short_training_beats_the_untrained_network(name):
    """Over three seeds (an untrained FGAN discriminator is a random function whose AUROC on this linearly
    separable toy is anything from 0.2 to 0.95, seeds 0-3: 0.95, 0.23, 0.85, 0.24)."""
    train, test, labels = toy()
    aurocs = {0: [], 10: []}
    for seed in (0, 1, 2):
        for budget in aurocs:
            params = {"pretrain_epochs": min(budget, 2)} if name == "fgan" else {}
            det = make(name, seed=seed, epochs=budget, batch_size=64, params=params).fit(train)
            aurocs[budget].append(roc_auc_score(labels, det.score_samples(test)))
    assert min(aurocs[10]) >= 0.8, aurocs
    assert np.mean(aurocs[10]) > np.mean(aurocs[0]) + 0.1, aurocs


def tiny_images(seed=0, n_train=256):
    """16x16 images on a dark background: normal ones hold a bright 4x4 square, anomalies a bright 8x8 one."""
    rng = np.random.default_rng(seed)

    def draw(n, anomalous):
        x = np.full((n, 1, 16, 16), -1.0, np.float32)
        for img in x:
            r, c = rng.integers(0, 12, size=2)
            if anomalous:
                img[0, max(r - 2, 0):r + 6, max(c - 2, 0):c + 6] = 1.0
            else:
                img[0, r:r + 4, c:c + 4] = 1.0
        return x + rng.normal(0, 0.05, x.shape).astype(np.float32)

    return draw(n_train, False), np.vstack([draw(60, False), draw(20, True)]), np.r_[np.zeros(60), np.ones(20)]


@pytest.mark.parametrize("name", MODELS)
def test_tiny_images_are_told_apart(name):
    train, test, labels = tiny_images()
    aurocs = {}
    for budget in (0, 8):
        params = {"width": 8, **({"pretrain_epochs": min(budget, 1)} if name == "fgan" else {})}
        det = make(name, epochs=budget, batch_size=32, params=params).fit(train)
        aurocs[budget] = roc_auc_score(labels, det.score_samples(test))
    assert aurocs[8] >= 0.9 and aurocs[8] > aurocs[0] + 0.2, aurocs


@pytest.mark.parametrize("name", MODELS)
def test_scores_ignore_test_order_and_chunking(name):
    train, test, _ = toy(1)
    det = make(name, epochs=2, batch_size=64, score_batch_size=1000).fit(train)
    assert_order_and_chunk_invariant(det, test, rtol=1e-4)
    images, image_test, _ = tiny_images(1, n_train=64)
    det = make(name, epochs=1, batch_size=16, score_batch_size=1000, params={"width": 8}).fit(images)
    assert_order_and_chunk_invariant(det, image_test, rtol=1e-4)


@pytest.mark.parametrize("name", MODELS)
def test_save_and_load_keep_the_scores(name, tmp_path):
    train, test, _ = toy(3)
    det = make(name, epochs=1, batch_size=64).fit(train)
    det.save(tmp_path / "det.pkl")
    np.testing.assert_array_equal(Detector.load(tmp_path / "det.pkl").score_samples(test), det.score_samples(test))



@pytest.mark.parametrize("name,stop", [("fgan", 1), ("fgan", 4), ("skip_ganomaly", 2)],
                         ids=["fgan-in-pretraining", "fgan-adversarial", "skip_ganomaly"])
def test_killed_run_resumes_to_the_same_weights(name, stop, tmp_path):
    """FGAN: 2 pretraining + 3 adversarial epochs, killed in the first stage (epoch 1) or the second (its
    epoch 2, the 4th in all); Skip-GANomaly: killed after epoch 2 of 4."""
    train, test = toy(4)[:2]
    params = {"pretrain_epochs": 2} if name == "fgan" else {}
    epochs = 3 if name == "fgan" else 4
    reference = make(name, epochs=epochs, batch_size=64, params=params, checkpoint_dir=tmp_path / "a").fit(train)
    seen = []
    with pytest.raises(Interrupt):
        counter = stop_after(stop)

        def count(engine, done):
            seen.append(done)
            counter(engine, len(seen))

        make(name, epochs=epochs, batch_size=64, params=params, checkpoint_dir=tmp_path / "b",
             callbacks=[count]).fit(train)
    resumed = make(name, epochs=epochs, batch_size=64, params=params, checkpoint_dir=tmp_path / "b").fit(train)
    assert [h["epoch"] for h in resumed.history] == list(range(1, epochs + 1))
    for key, value in reference.scoring_module.state_dict().items():
        torch.testing.assert_close(resumed.scoring_module.state_dict()[key], value, rtol=0, atol=0)
    np.testing.assert_array_equal(resumed.score_samples(test), reference.score_samples(test))
    if name == "fgan":
        assert (tmp_path / "b" / "pretrain" / CHECKPOINT_FILE).exists()
        assert (tmp_path / "b" / "fgan" / CHECKPOINT_FILE).exists()


@pytest.mark.parametrize("name,cls,method", [("fgan", fgan.FenceGANModule, "g_loss"),
                                             ("fgan", fgan.FenceGANModule, "d_loss"),
                                             ("skip_ganomaly", skip_ganomaly.SkipGANomalyModule, "g_loss")])
def test_nan_loss_ends_the_run(monkeypatch, name, cls, method):
    train, _ = toy(5)[:2]
    poison_loss(monkeypatch, cls, method, at_call=3)
    with pytest.raises(TrainingDiverged, match="NaN or inf"):
        make(name, epochs=2, batch_size=64, params={"pretrain_epochs": 0} if name == "fgan" else {}).fit(train)


def test_fgan_pretraining_trains_the_discriminator_alone():
    train, _ = toy(6)[:2]
    det = make("fgan", epochs=0, batch_size=64, params={"pretrain_epochs": 2}).fit(train)
    seed_everything(det.seed)
    fresh = det.build(det.input_shape)
    for key, value in fresh.generator.state_dict().items():
        if "running" not in key and "num_batches" not in key:  # BatchNorm statistics follow the batches
            torch.testing.assert_close(det.scoring_module.generator.state_dict()[key], value, rtol=0, atol=0)
    moved = [not torch.equal(a, b) for a, b in zip(det.scoring_module.discriminator.parameters(),
                                                    fresh.discriminator.parameters(), strict=True)]
    assert any(moved)
    assert [h["epoch"] for h in det.history] == [] and len(det.engine.phases) == 1


# ------------------------------------------------------------------------------ losses by hand
class FixedGenerator(nn.Module):
    def __init__(self, out: torch.Tensor):
        super().__init__()
        self.out = out
        self.w = nn.Parameter(torch.ones(()))

    def forward(self, z):
        return self.out[: len(z)] * self.w


class MeanDiscriminator(nn.Module):
    """logit = scale * mean(x); features = the flattened input."""

    def __init__(self, scale: float = 1.0):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(scale))

    def forward(self, x):
        return self.scale * x.flatten(1).mean(1), x.flatten(1)


def test_fgan_losses_and_score_by_hand():
    module = create_detector("fgan", alpha=0.3, beta=2.0, gamma=0.25).build((2,))
    gen = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]])
    module.generator, module.discriminator = FixedGenerator(gen), MeanDiscriminator()
    x = torch.tensor([[1.0, 3.0], [-1.0, 1.0], [0.0, 0.0], [2.0, 4.0]])
    # dispersion: centre (1, 1), every sample at distance sqrt(2) -> 1 / sqrt(2)
    assert fgan.dispersion_loss(gen).item() == pytest.approx(1 / math.sqrt(2))
    loss, stats = module.g_loss(x)
    p = torch.sigmoid(gen.mean(1))
    encirclement = -(0.3 * torch.log(p) + 0.7 * torch.log(1 - p)).mean()
    assert stats["encirclement"].item() == pytest.approx(encirclement.item(), rel=1e-6)
    assert loss.item() == pytest.approx(encirclement.item() + 2.0 / math.sqrt(2), rel=1e-6)
    # the encirclement term is smallest where D(G(z)) = alpha
    logits = torch.linspace(-4, 4, 801)
    best = logits[torch.stack([F.binary_cross_entropy_with_logits(v, torch.tensor(0.3)) for v in logits]).argmin()]
    assert torch.sigmoid(best).item() == pytest.approx(0.3, abs=0.01)
    loss, stats = module.d_loss(x)
    real = -torch.log(torch.sigmoid(x.mean(1))).mean()
    fake = -torch.log(1 - torch.sigmoid(gen.mean(1))).mean()
    assert loss.item() == pytest.approx((real + 0.25 * fake).item(), rel=1e-6)
    torch.testing.assert_close(module.score(x), -x.mean(1))  # -logit D(x): low D(x) = anomalous


class HalfGenerator(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(0.5))

    def forward(self, x):
        return self.w * x


def test_skip_ganomaly_losses_and_score_by_hand():
    module = create_detector("skip_ganomaly", w_adv=2.0, w_con=40.0, w_lat=3.0, score_weight=0.9).build((3,))
    module.generator, module.discriminator = HalfGenerator(), MeanDiscriminator(scale=2.0)
    x = torch.tensor([[1.0, -2.0, 3.0], [0.5, 0.0, -1.0]])
    x_hat = 0.5 * x
    rec = (x - x_hat).pow(2).mean(1)
    lat = (x - x_hat).pow(2).mean(1)  # the stub's features are the input itself
    torch.testing.assert_close(module.score(x), 0.9 * rec + 0.1 * lat)
    loss, stats = module.g_loss(x)
    adv = F.softplus(-2.0 * x_hat.mean(1)).mean()  # BCE(D(x_hat), 1) = -log sigmoid(logit)
    con = (x - x_hat).abs().mean()
    mse = (x - x_hat).pow(2).mean()
    assert stats["adv"].item() == pytest.approx(adv.item(), rel=1e-6)
    assert stats["con"].item() == pytest.approx(con.item(), rel=1e-6)
    assert loss.item() == pytest.approx((2.0 * adv + 40.0 * con + 3.0 * mse).item(), rel=1e-6)
    loss, _ = module.d_loss(x)
    d_adv = F.softplus(-2.0 * x.mean(1)).mean() + F.softplus(2.0 * x_hat.mean(1)).mean()
    assert loss.item() == pytest.approx((d_adv + 3.0 * mse).item(), rel=1e-6)


def test_skip_ganomaly_scores_no_min_max_scaling():
    """A row's score does not depend on the other rows scored with it (the code's min-max scaling would)."""
    train, test, _ = toy(7)
    det = make("skip_ganomaly", epochs=1, batch_size=64).fit(train)
    alone = det.score_samples(test[:5])
    np.testing.assert_allclose(det.score_samples(np.vstack([test[:5], test[5:] * 10]))[:5], alone, rtol=1e-5)


def test_image_padding_is_cropped_back_exactly():
    module = create_detector("skip_ganomaly", width=8).build((1, 28, 28))
    module.generator = nn.Identity()
    x = torch.rand(3, 1, 28, 28)
    torch.testing.assert_close(module.reconstruct(x), x, rtol=0, atol=0)
    padded = module.pad(x)
    assert padded.shape == (3, 1, 32, 32)
    torch.testing.assert_close(padded[..., 0, 2:30], x[..., 0, :])  # edge replication


def test_bad_parameters_are_config_errors():
    with pytest.raises(ConfigError, match="alpha"):
        create_detector("fgan", alpha=1.5)
    with pytest.raises(ConfigError, match="pretrain_epochs"):
        create_detector("fgan", pretrain_epochs=-1)
    with pytest.raises(ConfigError, match="score_weight"):
        create_detector("skip_ganomaly", score_weight=2.0)
    with pytest.raises(ConfigError, match="w_con"):
        create_detector("skip_ganomaly", w_con=-1.0)
