"""Ruff's autoencoder family, shared by Deep SVDD, DCAE and MemAE (tabular rows): the LeNet-type networks,
the bias-free MLP, and the plain autoencoder training module.

Networks (written down here once; the model files cite them):

* `lenet_encoder` / `lenet_decoder` — Deep SVDD's LeNet-type networks (Ruff et al., ICML 2018, Sec. 4.1,
  and their reference code lukasruff/Deep-SVDD-PyTorch `networks/mnist_LeNet.py`, `cifar10_LeNet.py`).
  Encoder: 5x5 "same" convolutions, each -> BatchNorm (eps 1e-4, no affine) -> LeakyReLU(0.01) -> 2x2 max
  pool, then one dense layer to the representation: MNIST-type (1 channel) 8 -> 4 filters, rep 32;
  CIFAR-type (3 channels) 32 -> 64 -> 128 filters, rep 128 (the reference's CIFAR-10 autoencoder adds a
  BatchNorm on the representation that its Deep SVDD network lacks; we use one encoder for both, without
  it). Decoder: the
  representation viewed as (rep / 16, 4, 4) -> LeakyReLU, then per encoder stage in reverse: nearest
  upsampling to that stage's side -> 5x5 transposed convolution -> BatchNorm -> LeakyReLU; a last
  upsampling to the input side, a 5x5 transposed convolution to the input channels and a sigmoid (the
  reference's inputs are in [0, 1]; linear output when the inputs are not contrast normalised). For
  CIFAR-10 this is the reference decoder layer for layer; for MNIST the reference upsamples 4 -> 8 -> 16
  and shrinks 16 -> 14 with padding 3, where we upsample 4 -> 7 -> 14 -> 28 directly (same layers and
  widths). With `bias=False` (Deep SVDD, Ruff Sec. 3.3 Proposition 2: a bias lets phi collapse to the
  constant c) no layer has a bias and BatchNorm has no affine parameters.
* `mlp_encoder` / `mlp_decoder` — tabular rows: the bias-free MLP of the authors' follow-up code
  (lukasruff/Deep-SAD-PyTorch `networks/mlp.py`: Linear -> BatchNorm1d (eps 1e-4, no affine) ->
  LeakyReLU(0.01) per hidden layer, linear representation layer), with its per-dataset sizes as a rule
  on the width d: d >= 100 (Arrhythmia 274, KDD99 121, Musk 166): hidden (128, 64), rep 32 (its
  arrhythmia_mlp); otherwise hidden (32, 16), rep 8, rep 4 when d <= 6 (its thyroid_mlp, cardio_mlp, ...).
  The decoder mirrors it with a linear output (our tabular rows are min-max scaled on the training rows,
  so test rows may leave [0, 1]; Deep SAD's decoder ends in a sigmoid).

Their inputs' contrast normalisation (`contrast_norm`) is the deep detectors' input map (`kit.deep`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ganad_bench.errors import ConfigError
from ganad_bench.models.kit import blocks
from ganad_bench.models.kit.blocks import is_image
from ganad_bench.models.kit.losses import squared_error
from ganad_bench.training.engine import DetectorModule

BN_EPS = 1e-4
SLOPE = 0.01  # F.leaky_relu's default, as the reference code


def leaky_relu() -> nn.Module:
    return nn.LeakyReLU(SLOPE)


# ------------------------------------------------------------------------------------ LeNet (Ruff)
def lenet_channels(shape) -> tuple[int, ...]:
    """MNIST-type (8, 4) for grey images, CIFAR-type (32, 64, 128) for colour ones."""
    return (8, 4) if int(shape[0]) == 1 else (32, 64, 128)


def default_rep_dim(shape) -> int:
    if is_image(shape):
        return 32 if int(shape[0]) == 1 else 128
    return tabular_sizes(int(shape[0]))[1]


def tabular_sizes(d: int) -> tuple[tuple[int, ...], int]:
    """(hidden sizes, representation size) of the tabular MLP (module docstring)."""
    if d >= 100:
        return (128, 64), 32
    return (32, 16), (4 if d <= 6 else 8)


def bn(n: int, dims: int, affine: bool) -> nn.Module:
    return (nn.BatchNorm2d if dims == 2 else nn.BatchNorm1d)(n, eps=BN_EPS, affine=affine)


def lenet_sides(side: int, n_stages: int) -> list[int]:
    sides = [side]
    for _ in range(n_stages):
        sides.append(sides[-1] // 2)
    return sides


class LeNetEncoder(nn.Module):
    def __init__(self, shape, rep_dim: int, bias: bool = False):
        super().__init__()
        c, side = int(shape[0]), int(shape[1])
        chans = lenet_channels(shape)
        sides = lenet_sides(side, len(chans))
        if sides[-1] < 1:
            raise ConfigError(f"images of side {side} are too small for {len(chans)} pooling stages")
        layers: list[nn.Module] = []
        c_in = c
        for c_out in chans:
            layers += [nn.Conv2d(c_in, c_out, 5, padding=2, bias=bias), bn(c_out, 2, bias),
                       nn.LeakyReLU(SLOPE), nn.MaxPool2d(2, 2)]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(c_in * sides[-1] ** 2, rep_dim, bias=bias)
        self.rep_dim = rep_dim

    def forward(self, x):
        return self.fc(self.features(x).flatten(1))


class LeNetDecoder(nn.Module):
    def __init__(self, shape, rep_dim: int, bias: bool = False, sigmoid: bool = True):
        super().__init__()
        if rep_dim % 16:
            raise ConfigError(f"model.params.rep_dim={rep_dim}: the LeNet decoder views the representation as "
                              f"(rep_dim / 16, 4, 4), so it must be a multiple of 16 (MNIST 32, CIFAR-10 128)")
        c, side = int(shape[0]), int(shape[1])
        chans = lenet_channels(shape)
        sides = lenet_sides(side, len(chans))
        self.rep_dim, self.side, self.sigmoid = rep_dim, side, sigmoid
        # stage i (from the deepest): upsample to sides[i + 1], deconv chans -> BN -> LeakyReLU
        self.sizes = [sides[i + 1] for i in range(len(chans) - 1, -1, -1)]
        outs = list(reversed(chans))
        ins = [rep_dim // 16, *outs[:-1]]
        self.deconvs = nn.ModuleList(nn.ConvTranspose2d(i, o, 5, padding=2, bias=bias)
                                     for i, o in zip(ins, outs, strict=True))
        self.bns = nn.ModuleList(bn(o, 2, bias) for o in outs)
        self.out = nn.ConvTranspose2d(outs[-1], c, 5, padding=2, bias=bias)

    def forward(self, z):
        x = F.leaky_relu(z.reshape(len(z), self.rep_dim // 16, 4, 4), SLOPE)
        for size, deconv, norm in zip(self.sizes, self.deconvs, self.bns, strict=True):
            if x.shape[-1] != size:
                x = F.interpolate(x, size=(size, size))
            x = F.leaky_relu(norm(deconv(x)), SLOPE)
        x = self.out(F.interpolate(x, size=(self.side, self.side)))
        return torch.sigmoid(x) if self.sigmoid else x


# -------------------------------------------------------------------------------- tabular MLPs
def mlp_encoder(d: int, hidden: tuple[int, ...], rep_dim: int, bias: bool = False) -> nn.Sequential:
    """Linear -> BatchNorm1d (eps 1e-4, affine only with biases) -> LeakyReLU(0.01) per hidden layer, then a
    linear representation layer."""
    return blocks.mlp([d, *hidden, rep_dim], leaky_relu, norm=lambda n: bn(n, 1, bias), bias=bias, last_act=False)


def mlp_decoder(d: int, hidden: tuple[int, ...], rep_dim: int, bias: bool = False) -> nn.Sequential:
    """The mirror image of `mlp_encoder`, with a linear output."""
    return blocks.mlp([rep_dim, *reversed(hidden), d], leaky_relu, norm=lambda n: bn(n, 1, bias), bias=bias,
                      last_act=False)


def make_autoencoder(shape, rep_dim: int | None = None, hidden=None, bias: bool = False,
                     sigmoid: bool = True) -> tuple[nn.Module, nn.Module]:
    """(encoder, decoder) of Deep SVDD / DCAE (module docstring)."""
    blocks.resolve_arch(shape)  # (features,) or square images of side >= 8
    shape = tuple(int(s) for s in shape)
    rep = int(rep_dim or default_rep_dim(shape))
    if is_image(shape):
        return LeNetEncoder(shape, rep, bias), LeNetDecoder(shape, rep, bias, sigmoid=sigmoid)
    d = int(shape[0])
    hidden = tuple(int(h) for h in hidden) if hidden else tabular_sizes(d)[0]
    return mlp_encoder(d, hidden, rep, bias), mlp_decoder(d, hidden, rep, bias)


# --------------------------------------------------------------------------------- the modules
class AutoEncoderModule(DetectorModule):
    """encoder + decoder trained on the mean squared error; score ||x - x_rec||_2^2 (no discriminator)."""

    generator_names = ("encoder", "decoder")

    def __init__(self, encoder: nn.Module, decoder: nn.Module):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder

    def reconstruct(self, x):
        return self.decoder(self.encoder(x))

    def g_loss(self, x):
        loss = F.mse_loss(self.reconstruct(x), x)
        return loss, {"mse": loss.detach()}

    def score(self, x):
        return squared_error(x, self.reconstruct(x))
