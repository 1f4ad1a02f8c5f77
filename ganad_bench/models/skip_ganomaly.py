"""Skip-GANomaly (Akcay, Atapour-Abarghouei, Breckon, IJCNN 2019, "Skip-GANomaly: Skip Connected and
Adversarially Trained Encoder-Decoder Anomaly Detection"; authors' code samet-akcay/skip-ganomaly): a U-Net
generator G reconstructs x, a discriminator D tells x from x_hat = G(x), and D's last feature layer f
gives the latent loss and half of the score.

Generator loss (the paper's objective; the code's `backward_g`, lib/models/skipganomaly.py):
    L_G = w_adv L_adv + w_con L_con + w_lat L_lat,
* L_adv = BCE(D(x_hat), 1) (non-saturating adversarial term, as the code),
* L_con = ||x - x_hat||_1 (contextual loss; mean over elements, the code's nn.L1Loss),
* L_lat = ||f(x) - f(x_hat)||_2^2 (latent loss; mean over elements, the code's `l2_loss`),
with the paper's weights w_adv = 1, w_con = 40, w_lat = 1 (the code's option default is w_con = 50, shared
with GANomaly). Discriminator loss, as the code's `backward_d`: BCE(D(x), 1) + BCE(D(x_hat), 0) + w_lat L_lat
(the code adds the latent term to D's loss too; gradient to D only, x_hat detached).

Anomaly score (the paper's A(x); the code's `test`): A(x) = lambda R(x) + (1 - lambda) L(x), lambda = 0.9
(`score_weight`), R(x) = mean((x - x_hat)^2) over the pixels / features and L(x) = mean((f(x) - f(x_hat))^2)
over the features (both per sample, mean squared errors, as the code computes them). The code then min-max
scales the scores over the whole test set; that would make a score depend on the other test samples
(DESIGN.md's contract) and does not change the ranking, so it is not applied.

Networks, images (the code's `define_G` / `define_D`; width w = `width`, the code's ngf = ndf = 64):
* G: the pix2pix U-Net (`UnetGenerator`, BatchNorm, no dropout) with log2(P) levels down to 1 x 1: 4x4
  stride-2 convolutions to w, 2w, 4w, 8w, 8w, ... channels (LeakyReLU(0.2) before each but the first,
  BatchNorm after each but the first and the innermost), the mirror image with transposed convolutions
  (ReLU before each, BatchNorm after each but the last, tanh output), and at every level the encoder's
  activation concatenated to the decoder's input (the skip connections; like the code's in-place
  LeakyReLU, the skip carries the activated map);
* D: the DCGAN encoder (`BasicDiscriminator`): 4x4 stride-2 convolutions w, 2w, 4w, ... without bias,
  BatchNorm after all but the first, LeakyReLU(0.2), down to 4 x 4, then a 4x4 valid convolution to
  `latent_dim` (the code's nz = 100) features f, and a bias-free linear logit (the code's 3x3 "same"
  convolution on the 1 x 1 feature map, whose only live tap is its centre);
* weights N(0, 0.02), BatchNorm scales N(1, 0.02) (the code's `init_weights`).
The U-Net needs a power-of-two side P: images are padded to the next power of two (edge replication; for
MNIST, 28 -> 32 with its black background) and G's output is cropped back, so the losses and the score see
exactly the input's pixels; D sees the padded images (the authors instead resize MNIST to 32 x 32).

Tabular rows: the paper has none (images only). Our choice: the same model with an MLP U-Net built like
ALAD's tabular generator (Tables X / XII: KDD99 hidden 64, 128; Arrhythmia 128, 256; other widths as KDD99):
encoder d -> 128 -> 64 -> latent (the mirror image of the generator, BatchNorm and LeakyReLU(0.2)), decoder
latent -> 64 -> 128 -> d (BatchNorm, ReLU, linear output) with each decoder layer taking the concatenation
of the previous decoder output and the encoder activation of the same width (skip connections), and
ALAD's GAN discriminator of Table X / XII (`kit.blocks.make_x_discriminator`, features = its last hidden
layer); Xavier initialisation as those tables.

Departures from the code: one step updates D first, then G (the code updates G, then D on the same
forward pass); G's input gets no noise (the code adds a buffer `noise` that it allocates with torch.empty
and never fills); D is not re-initialised when its loss falls under 1e-5 (`reinit_d`); no model selection
(the code evaluates on the TEST set every epoch and keeps the epoch with the best test AUROC, in training
mode: BatchNorm with test-batch statistics, which AMA's authors also point out); here the last epoch is
scored in eval mode, and no weight EMA (the paper has none).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ganad_bench.models.kit import blocks
from ganad_bench.models.kit.contract import is_number, require
from ganad_bench.models.kit.deep import DeepDetector
from ganad_bench.models.kit.losses import bce
from ganad_bench.models.kit.registry import register
from ganad_bench.training.engine import DetectorModule


def init_normal(module: nn.Module) -> nn.Module:
    """The code's `init_weights('normal', 0.02)`: conv / linear weights N(0, 0.02), BatchNorm scale N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
    return module


def padded_side(shape) -> int:
    """The power-of-two side (>= 8) the image U-Net works at."""
    return max(8, 2 ** math.ceil(math.log2(max(int(shape[1]), int(shape[2])))))


class UNet(nn.Module):
    """The pix2pix U-Net generator on C x P x P images, P a power of two (module docstring)."""

    def __init__(self, channels: int, side: int, width: int):
        super().__init__()
        depth = int(math.log2(side))
        chans = [width * 2 ** min(i, 3) for i in range(depth)]
        self.downs = nn.ModuleList([nn.Conv2d(channels, chans[0], 4, stride=2, padding=1, bias=False)])
        self.ups = nn.ModuleList()
        for i in range(1, depth):
            norm = [nn.BatchNorm2d(chans[i])] if i < depth - 1 else []
            self.downs.append(nn.Sequential(blocks.lrelu(), nn.Conv2d(chans[i - 1], chans[i], 4, stride=2, padding=1,
                                                                      bias=False), *norm))
            c_in = chans[i] if i == depth - 1 else 2 * chans[i]
            self.ups.append(nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(c_in, chans[i - 1], 4, stride=2, padding=1,
                                                                        bias=False), nn.BatchNorm2d(chans[i - 1])))
        self.out = nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(2 * chans[0], channels, 4, stride=2, padding=1),
                                 nn.Tanh())
        init_normal(self)

    def forward(self, x):
        skips = []
        h = x
        for down in self.downs:
            h = down(h)
            skips.append(F.leaky_relu(h, blocks.SLOPE))  # what the in-place LeakyReLU of the next level leaves
        h = self.ups[-1](h)
        for i in range(len(self.ups) - 2, -1, -1):
            h = self.ups[i](torch.cat([skips[i + 1], h], dim=1))
        return self.out(torch.cat([skips[0], h], dim=1))


class MLPUNet(nn.Module):
    """Our tabular U-Net: d -> hidden... -> latent -> ...hidden -> d, with skip concatenations (module docstring)."""

    def __init__(self, d: int, hidden: tuple[int, ...], latent_dim: int):
        super().__init__()
        sizes = [d, *hidden]
        self.downs = nn.ModuleList([blocks.mlp([a, b], blocks.lrelu, norm=nn.BatchNorm1d)
                                    for a, b in zip(sizes, sizes[1:], strict=False)])
        self.bottleneck = nn.Linear(sizes[-1], latent_dim)
        self.first_up = blocks.mlp([latent_dim, sizes[-1]], nn.ReLU, norm=nn.BatchNorm1d)
        self.ups = nn.ModuleList([blocks.mlp([2 * b, a], nn.ReLU, norm=nn.BatchNorm1d)
                                  for a, b in zip(sizes[1:-1], sizes[2:], strict=False)])
        self.out = nn.Linear(2 * sizes[1], d)
        blocks.init_weights(self, image=False)

    def forward(self, x):
        skips = []
        h = x
        for down in self.downs:
            h = down(h)
            skips.append(h)
        h = self.first_up(self.bottleneck(h))
        for i in range(len(self.ups) - 1, -1, -1):
            h = self.ups[i](torch.cat([skips[i + 1], h], dim=1))
        return self.out(torch.cat([skips[0], h], dim=1))


def make_image_discriminator(channels: int, side: int, width: int, feature_dim: int) -> blocks.PairDiscriminator:
    """The code's `BasicDiscriminator` on C x P x P: -> (logit, f), f the `feature_dim` (nz) features."""
    layers: list[nn.Module] = [nn.Conv2d(channels, width, 4, stride=2, padding=1, bias=False), blocks.lrelu()]
    c, s = width, side // 2
    while s > 4:
        layers += [nn.Conv2d(c, 2 * c, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(2 * c), blocks.lrelu()]
        c, s = 2 * c, s // 2
    layers += [nn.Conv2d(c, feature_dim, s, stride=1, padding=0, bias=False), nn.Flatten()]
    net = blocks.PairDiscriminator(nn.Sequential(*layers), feature_dim, pair=False)
    net.logit = nn.Linear(feature_dim, 1, bias=False)
    return init_normal(net)


class SkipGANomalyModule(DetectorModule):
    """G (U-Net) and D, the losses of the module docstring and the score lambda R(x) + (1 - lambda) L(x)."""

    discriminator_names = ("discriminator",)
    generator_names = ("generator",)

    def __init__(self, shape, latent_dim: int, *, arch: str, width: int, w_adv: float, w_con: float, w_lat: float,
                 score_weight: float):
        super().__init__()
        self.w_adv, self.w_con, self.w_lat = float(w_adv), float(w_con), float(w_lat)
        self.score_weight = float(score_weight)
        arch = blocks.resolve_arch(shape, arch)
        self.padding = (0, 0, 0, 0)
        if arch == "conv":
            c, h, w = (int(s) for s in shape)
            side = padded_side(shape)
            self.padding = ((side - w) // 2, side - w - (side - w) // 2, (side - h) // 2, side - h - (side - h) // 2)
            self.generator = UNet(c, side, width)
            self.discriminator = make_image_discriminator(c, side, width, latent_dim)
        else:
            hidden = tuple(reversed(blocks.TABULAR_SPECS[arch].generator))
            self.generator = MLPUNet(int(shape[0]), hidden, latent_dim)
            self.discriminator = blocks.make_x_discriminator(shape, arch)

    def pad(self, x):
        return F.pad(x, self.padding, mode="replicate") if any(self.padding) else x

    def reconstruct(self, x):
        """x_hat = G(x) at the input's own size (padded for the U-Net, cropped back)."""
        out = self.generator(self.pad(x))
        if not any(self.padding):
            return out
        left, _, top, _ = self.padding
        return out[..., top:top + x.shape[-2], left:left + x.shape[-1]]

    def discriminate(self, x):
        return self.discriminator(self.pad(x))

    def d_loss(self, x):
        with torch.no_grad():
            x_hat = self.reconstruct(x)
        logit_real, f_real = self.discriminate(x)
        logit_fake, f_fake = self.discriminate(x_hat)
        adv = bce(logit_real, 1.0) + bce(logit_fake, 0.0)
        lat = F.mse_loss(f_fake, f_real)
        return adv + self.w_lat * lat, {"d_adv": adv.detach(), "d_lat": lat.detach()}

    def g_loss(self, x):
        x_hat = self.reconstruct(x)
        _, f_real = self.discriminate(x)
        logit_fake, f_fake = self.discriminate(x_hat)
        adv = bce(logit_fake, 1.0)
        con = F.l1_loss(x_hat, x)
        lat = F.mse_loss(f_fake, f_real)
        loss = self.w_adv * adv + self.w_con * con + self.w_lat * lat
        return loss, {"adv": adv.detach(), "con": con.detach(), "lat": lat.detach()}

    def score(self, x):
        x_hat = self.reconstruct(x)
        rec = (x - x_hat).flatten(1).pow(2).mean(1)
        lat = (self.discriminate(x)[1] - self.discriminate(x_hat)[1]).flatten(1).pow(2).mean(1)
        return self.score_weight * rec + (1.0 - self.score_weight) * lat


@register("skip_ganomaly")
class SkipGANomaly(DeepDetector):
    """Skip-GANomaly (module docstring). Parameters: `w_adv`, `w_con`, `w_lat` (the loss weights), `score_weight`
    (lambda of the score), `latent_dim` (images: D's feature size, the code's nz, null: 100; rows: the U-Net's
    bottleneck, null: by width), `width` (images: the code's ngf = ndf), `arch` as ALAD (rows)."""

    def __init__(self, seed: int = 0, trainer: dict | None = None, checkpoint_dir=None, callbacks=(), *,
                 w_adv: float = 1.0, w_con: float = 40.0, w_lat: float = 1.0, score_weight: float = 0.9,
                 latent_dim: int | None = None, width: int = 64, arch: str = "auto"):
        super().__init__(seed, trainer, checkpoint_dir, callbacks)
        for name, value in (("w_adv", w_adv), ("w_con", w_con), ("w_lat", w_lat)):
            require(is_number(value) and float(value) >= 0.0, name, ">= 0", value)
        require(is_number(score_weight) and 0.0 <= float(score_weight) <= 1.0, "score_weight", "in [0, 1]",
                score_weight)

    def build(self, input_shape):
        return SkipGANomalyModule(input_shape, self.latent_dim(input_shape), **self.module_params("latent_dim"))
