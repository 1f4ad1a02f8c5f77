"""Fence GAN (FGAN; Ngo, Winarto, Kou, Park, Akram, Lee 2019, "Fence GAN: Towards Better Anomaly Detection",
arXiv 1904.01209; authors' code phuccuongngo99/Fence_GAN): a GAN whose generator is trained to put its samples
on the boundary ("fence") of the normal data, so that the discriminator itself is the anomaly detector.

Losses (the paper's encirclement, dispersion and discriminator losses, computed as the authors' code
computes them: utils/custom_losses.py `com_conv`, utils/model.py `D_loss`, fgan_train.py `train`), with
G(z), z ~ N(0, I), over a batch of N samples:

* generator: L_gen = L_encirclement + beta * L_dispersion, where
  - L_encirclement pulls D(G(z)) to alpha, the boundary level: the cross-entropy of D(G(z)) against the
    soft label alpha, mean over the batch (the code's `binary_crossentropy(y = alpha, D(G(z)))`; it is
    minimal exactly at D(G(z)) = alpha), and
  - L_dispersion = 1 / ((1/N) sum_i ||G(z_i) - mu||_2), mu = (1/N) sum_i G(z_i) (the batch's centre of
    mass; the L2 norm over all pixels / features), which spreads the samples along the boundary;
* discriminator: L_dis = BCE(D(x), 1) + gamma * BCE(D(G(z)), 0) (means over the batch): generated samples
  count gamma times as much as real ones.

Anomaly score: the paper thresholds D(x) (low = anomalous); our contract is higher = more anomalous, so the
score is the negated logit of D(x), -log(D(x) / (1 - D(x))): the same ranking as 1 - D(x) without the
float32 ties of a saturated sigmoid.

Training (the authors' MNIST command, README of their code: alpha 0.1, beta 30, gamma 0.1, batch 200,
latent 200, Adam D lr 1e-5, G lr 2e-5, beta1 0.5, 15 epochs of discriminator-only pretraining, then 100
adversarial epochs). The pretraining is its own engine stage (`pretrain_epochs`; D trained on real rows vs
samples of the untrained G, G frozen; checkpoints in `<checkpoint_dir>/pretrain`), then the adversarial
stage (`<checkpoint_dir>/fgan`). Both stages resume exactly after an interruption.

Networks. Images (`arch` auto / conv): the authors' networks. 3 x 32 x 32 (CIFAR-10, SVHN): their CIFAR-10
pair (G: dense to 8w x 2 x 2, BatchNorm, LeakyReLU(0.2), four 5x5 stride-2 transposed convolutions
4w, 2w, w, C with BatchNorm / LeakyReLU, tanh; D: four 5x5 stride-2 convolutions w, 2w, 4w, 8w, BatchNorm
on the first three, LeakyReLU(0.2), dropout 0.2, dense logit; Glorot-normal weights; w = `width`, theirs 32;
latent 256). Every other image shape (H, W divisible by 4; MNIST 28 x 28): their MNIST pair generalised
to H x W (G: dense 16w, ReLU, BatchNorm, dense 2w x H/4 x W/4, ReLU, BatchNorm, two 4x4 stride-2 transposed
convolutions w (ReLU, BatchNorm) and C (tanh); D: two 4x4 stride-2 convolutions w, w, dense 16w, LeakyReLU
(0.1) after each, dense logit; weights N(0, 0.02); w = `width`, theirs 64; latent 200). BatchNorm as Keras:
eps 1e-3, momentum 0.99. Tabular rows: the paper's KDD99 network is only in an archive of the authors'
repository that we could not read, so rows use the closest sibling here, ALAD's GAN of Tables X / XII
(`kit.blocks.make_generator` / `make_x_discriminator`, the networks of AnoGAN), latent by width.

Departures from the authors' code (each small; written down here once):

* one discriminator update per step on the sum BCE(D(x), 1) + gamma BCE(D(G(z)), 0) (the paper's L_dis);
  the code takes two Adam steps per step, one on the real half and one on the gamma-weighted generated half;
* the engine's epochs are random permutations of the training set (the code draws every batch afresh with
  `random.sample`), and the last incomplete batch is dropped;
* logits cross-entropies (the code clips a sigmoid output to [1e-7, 1 - 1e-7]); the samples the
  discriminator sees come from G in training mode (batch statistics; Keras' `G.predict` uses the moving
  averages);
* no model selection: the code evaluates every `v_freq` epochs on a validation split that contains
  anomalies and keeps the epoch with the best validation AUPRC; this benchmark's protocols have no
  labelled anomalies before the test, so the last epoch is scored (no weight EMA either: the paper has none);
* the protocol: FGAN's MNIST experiments take ONE digit as the anomaly and the other nine as normal (80% /
  15% / 5% of all 70,000 images for train / test / validation, AUPRC); the one-class protocol of AMA Table
  2 (one normal digit) is the reverse, which is what `dataset=mnist` runs here;
* the CIFAR-10 settings (alpha 0.5, beta 10, gamma 0.5, batch 128, latent 256, D lr 1e-4, G lr 1e-3,
  150 epochs) are not the constructor defaults (the MNIST ones are): set them per dataset
  (`model.params.alpha=0.5 ...`).
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from ganad_bench.errors import ConfigError
from ganad_bench.models.kit import blocks
from ganad_bench.models.kit.contract import is_number, require
from ganad_bench.models.kit.deep import DeepDetector
from ganad_bench.models.kit.losses import bce, flat_norm
from ganad_bench.models.kit.registry import register
from ganad_bench.training.engine import DetectorModule, Engine
from ganad_bench.training.noise import Dropout

# the authors' widths and latent sizes of their two image designs
CIFAR_SHAPE = (3, 32, 32)
DESIGNS = {"cifar10": {"width": 32, "latent_dim": 256}, "mnist": {"width": 64, "latent_dim": 200}}


def image_design(shape) -> str:
    return "cifar10" if tuple(shape) == CIFAR_SHAPE else "mnist"


def keras_batch_norm(kind, channels: int) -> nn.Module:
    """Keras' BatchNormalization defaults (eps 1e-3, moving-average momentum 0.99)."""
    return kind(channels, eps=1e-3, momentum=0.01)


def init_networks(module: nn.Module, glorot: bool) -> nn.Module:
    """The authors' initialisation: N(0, 0.02) (MNIST) or Glorot-normal (CIFAR-10) kernels, zero biases."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            if glorot:
                nn.init.xavier_normal_(m.weight)
            else:
                nn.init.normal_(m.weight, 0.0, 0.02)
            nn.init.zeros_(m.bias)
    return module


def mnist_networks(shape, latent_dim: int, width: int) -> tuple[nn.Module, blocks.PairDiscriminator]:
    """The authors' MNIST generator and discriminator (utils/model.py `get_mnist_model`), for any C x H x W
    with H and W divisible by 4 (MNIST: 7 x 7 -> 14 x 14 -> 28 x 28)."""
    c, h, w = (int(s) for s in shape)
    if h % 4 or w % 4:
        raise ConfigError(f"fgan: the MNIST-type networks need image sides divisible by 4, got {shape}")
    bn1, bn2 = (lambda n: keras_batch_norm(nn.BatchNorm1d, n)), (lambda n: keras_batch_norm(nn.BatchNorm2d, n))
    base = 2 * width * (h // 4) * (w // 4)
    generator = nn.Sequential(
        nn.Linear(latent_dim, 16 * width), nn.ReLU(), bn1(16 * width),
        nn.Linear(16 * width, base), nn.ReLU(), bn1(base), blocks.Reshape(2 * width, h // 4, w // 4),
        nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1), nn.ReLU(), bn2(width),
        nn.ConvTranspose2d(width, c, 4, stride=2, padding=1), nn.Tanh())
    body = nn.Sequential(
        nn.Conv2d(c, width, 4, stride=2, padding=1), nn.LeakyReLU(0.1),
        nn.Conv2d(width, width, 4, stride=2, padding=1), nn.LeakyReLU(0.1), nn.Flatten(),
        nn.Linear(width * (h // 4) * (w // 4), 16 * width), nn.LeakyReLU(0.1))
    discriminator = blocks.PairDiscriminator(body, 16 * width, pair=False)
    return init_networks(generator, glorot=False), init_networks(discriminator, glorot=False)


def cifar10_networks(latent_dim: int, width: int) -> tuple[nn.Module, blocks.PairDiscriminator]:
    """The authors' CIFAR-10 generator and discriminator (utils/model.py `get_cifar10_model`), 3 x 32 x 32."""
    bn = lambda n: keras_batch_norm(nn.BatchNorm2d, n)  # noqa: E731
    chans = [8 * width, 4 * width, 2 * width, width]
    layers: list[nn.Module] = [nn.Linear(latent_dim, chans[0] * 4), blocks.Reshape(chans[0], 2, 2), bn(chans[0]),
                               nn.LeakyReLU(0.2)]
    for c_in, c_out in zip(chans, chans[1:], strict=False):
        layers += [nn.ConvTranspose2d(c_in, c_out, 5, stride=2, padding=2, output_padding=1), bn(c_out),
                   nn.LeakyReLU(0.2)]
    layers += [nn.ConvTranspose2d(width, 3, 5, stride=2, padding=2, output_padding=1), nn.Tanh()]
    body: list[nn.Module] = []
    c_in = 3
    for i, c_out in enumerate(reversed(chans)):
        body.append(nn.Conv2d(c_in, c_out, 5, stride=2, padding=2))
        body += [bn(c_out)] if i < 3 else []
        body.append(nn.LeakyReLU(0.2))
        c_in = c_out
    body += [nn.Flatten(), Dropout(0.2)]
    discriminator = blocks.PairDiscriminator(nn.Sequential(*body), chans[0] * 2 * 2, pair=False)
    return init_networks(nn.Sequential(*layers), glorot=True), init_networks(discriminator, glorot=True)


def dispersion_loss(x_gen: torch.Tensor) -> torch.Tensor:
    """1 / mean_i ||G(z_i) - mu||_2 with mu the batch mean of the generated samples."""
    return 1.0 / flat_norm(x_gen - x_gen.mean(0, keepdim=True), 2).mean()


class FenceGANModule(DetectorModule):
    """G and D, the encirclement / dispersion / weighted discriminator losses and the score -logit D(x).
    While `pretraining` is set the module has no generator phase (the discriminator-only stage)."""

    discriminator_names = ("discriminator",)
    generator_names = ("generator",)

    def __init__(self, shape, latent_dim: int, width: int, *, arch: str, alpha: float, beta: float, gamma: float):
        super().__init__()
        self.latent_dim = latent_dim
        self.alpha, self.beta, self.gamma = float(alpha), float(beta), float(gamma)
        self.pretraining = False
        if blocks.resolve_arch(shape, arch) == "conv":
            if image_design(shape) == "cifar10":
                self.generator, self.discriminator = cifar10_networks(latent_dim, width)
            else:
                self.generator, self.discriminator = mnist_networks(shape, latent_dim, width)
        else:
            self.generator = blocks.make_generator(shape, latent_dim, arch)
            self.discriminator = blocks.make_x_discriminator(shape, arch)

    def phases(self):
        return [] if self.pretraining else super().phases()

    def sample(self, like: torch.Tensor) -> torch.Tensor:
        return self.generator(self.noise.normal((len(like), self.latent_dim), like))

    def d_loss(self, x):
        with torch.no_grad():
            x_gen = self.sample(x)
        real = bce(self.discriminator(x)[0], 1.0)
        fake = bce(self.discriminator(x_gen)[0], 0.0)
        loss = real + self.gamma * fake
        return loss, {"d_real": real.detach(), "d_gen": fake.detach()}

    def g_loss(self, x):
        x_gen = self.sample(x)
        encirclement = bce(self.discriminator(x_gen)[0], self.alpha)
        dispersion = dispersion_loss(x_gen)
        loss = encirclement + self.beta * dispersion
        return loss, {"encirclement": encirclement.detach(), "dispersion": dispersion.detach()}

    def score(self, x):
        return -self.discriminator(x)[0]


@register("fgan")
class FenceGAN(DeepDetector):
    """Fence GAN (module docstring). Parameters: `alpha` (the encirclement target D(G(z)) = alpha), `beta`
    (dispersion weight), `gamma` (weight of the generated samples in D's loss), `pretrain_epochs`
    (discriminator-only epochs before the adversarial ones; 0: none), `latent_dim` (null: 200 for the MNIST
    networks, 256 for CIFAR-10's, rows by width), `width` (null: the authors' 64 / 32; images only),
    `arch` as ALAD (rows: kdd99 / arrhythmia / mlp)."""

    def __init__(self, seed: int = 0, trainer: dict | None = None, checkpoint_dir=None, callbacks=(), *,
                 alpha: float = 0.1, beta: float = 30.0, gamma: float = 0.1, pretrain_epochs: int = 15,
                 latent_dim: int | None = None, width: int | None = None, arch: str = "auto"):
        super().__init__(seed, trainer, checkpoint_dir, callbacks)
        require(is_number(alpha) and 0.0 <= float(alpha) <= 1.0, "alpha", "in [0, 1]", alpha)
        require(is_number(beta) and float(beta) >= 0.0, "beta", ">= 0", beta)
        require(is_number(gamma) and float(gamma) >= 0.0, "gamma", ">= 0", gamma)

    def build(self, input_shape):
        p = self.params
        image = blocks.resolve_arch(input_shape, p["arch"]) == "conv"
        design = DESIGNS[image_design(input_shape)] if image else {}
        latent = p["latent_dim"] or design.get("latent_dim") or blocks.default_latent_dim(input_shape, p["arch"])
        width = int(p["width"] or design.get("width", 0))
        return FenceGANModule(input_shape, int(latent), width, arch=p["arch"], alpha=p["alpha"], beta=p["beta"],
                              gamma=p["gamma"])

    def train(self, x, x_val) -> Engine:
        """Stage 1 (`pretrain`): the discriminator alone; stage 2 (`fgan`): the adversarial training."""
        module = self.build(self.input_shape)
        epochs = int(self.params["pretrain_epochs"])
        if epochs > 0:
            module.pretraining = True
            stage = dataclasses.replace(self.trainer, epochs=epochs, early_stopping_patience=None)
            self.train_stage("pretrain", module, stage, x, x_val)
            module.pretraining = False
        return self.train_stage("fgan", module, self.trainer, x, x_val)
