"""Network blocks built from the input shape: the one MLP builder, the one architecture resolver, and the
ALAD family of encoders, generators and discriminators shared by the GAN detectors.

Architectures (ALAD appendix, Zenati et al. 2018):

* `conv` — images (C, H, W) with H = W: ALAD Table IX (CIFAR-10 / SVHN, 32x32). Encoder: three 4x4 stride-2
  convolutions (width, 2 width, 4 width = 128, 256, 512), BatchNorm, LeakyReLU(0.2), then a valid
  convolution to the latent vector (100). Generator: the mirror image with transposed convolutions,
  ReLU, tanh output. Other sizes use the same family: each stride-2 layer halves the side (4x4 kernels
  on even sides, 3x3 on odd ones, so 28 -> 14 -> 7 -> 4 for MNIST and 32 -> 16 -> 8 -> 4 for CIFAR-10)
  until it is at most 4, and a valid convolution of that size maps to 1x1.
* `kdd99` — 121 features: ALAD Tables X (GAN) and XI (ALAD).
* `arrhythmia` — 274 features: ALAD Tables XII (GAN) and XIII (ALAD).
* `mlp` — any other tabular width: the KDD99 layout (the smaller of the two), latent dimension
  `max(2, min(32, d // 2))` unless given.

`arch="auto"` picks `conv` for images, `kdd99` for 121 features, `arrhythmia` for 274, else `mlp`.

Choices where the tables are silent or inconsistent (written down here once for every model):

* Table XI gives the KDD99 encoder's last layer 1 unit while the latent dimension is 32: we use 32.
* Table IX marks BatchNorm on the generator's tanh output layer; we leave it out (DCGAN's convention).
  Its D_xz x-branch lists one "ReLU" between LeakyReLUs; we use LeakyReLU throughout.
* Table IX's z-branch of D_xz convolves a 1x1 "image" of z with 4x4 "same" kernels, which is a dense
  layer; we write it as one. The x-branch map is flattened and joined with the z-branch by a dense
  layer of 1024 units (the 1x1 convolution on a 1x1 map), whose output is D_xz's feature layer.
* The dropout rate of the daggered image layers is unspecified: 0.2 (`image_dropout`).
* Discriminators return raw logits (the tables' Sigmoid is folded into a logits cross-entropy) and the
  activations of the layer before the logits (the "features" of ALAD Sec. IV-C).
* Initialisation: tabular Xavier-uniform / zero bias (Tables X-XIII); images N(0, 0.01) / zero bias
  (Table IX); BatchNorm weight 1, bias 0.
* Spectral normalisation (`spectral_norm=True`, ALAD Sec. IV-B) wraps every Linear / Conv layer of the
  module it is applied to; ALAD applies it to the discriminators and the encoder.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import _SpectralNorm

from ganad_bench.errors import ConfigError
from ganad_bench.training.noise import Dropout

SLOPE = 0.2
BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)  # the normalisation layers the builders below use

# tabular layouts picked by the input width under arch=auto
TABULAR_BY_WIDTH = {121: "kdd99", 274: "arrhythmia"}


@dataclasses.dataclass(frozen=True)
class TabularSpec:
    latent_dim: int
    encoder: tuple[int, ...]
    generator: tuple[int, ...]
    xz_x: int
    xz_z: int
    xz_joint: tuple[int, ...]
    xx: tuple[int, ...]
    zz: tuple[int, ...]
    d: tuple[int, ...]          # plain GAN discriminator (Tables X, XII)
    d_dropout: tuple[float, ...]


TABULAR_SPECS = {
    "kdd99": TabularSpec(latent_dim=32, encoder=(64,), generator=(64, 128), xz_x=128, xz_z=128, xz_joint=(128,),
                         xx=(128,), zz=(32,), d=(256, 128, 128), d_dropout=(0.2, 0.2, 0.2)),
    "arrhythmia": TabularSpec(latent_dim=64, encoder=(256, 128), generator=(128, 256), xz_x=128, xz_z=128,
                              xz_joint=(256,), xx=(256, 128), zz=(64, 32), d=(256, 128), d_dropout=(0.2, 0.5)),
}
TABULAR_SPECS["mlp"] = TABULAR_SPECS["kdd99"]
IMAGE_LATENT_DIM = 100


def is_image(shape: tuple[int, ...]) -> bool:
    return len(shape) == 3


def arch_names(by_width: dict[int, str] | None = None, conv: bool = True) -> tuple[str, ...]:
    """The `arch` values a model accepts: auto, conv (images), its width-named tabular layouts, mlp."""
    named = dict.fromkeys((TABULAR_BY_WIDTH if by_width is None else by_width).values())
    return ("auto", *(("conv",) if conv else ()), *named, "mlp")


def resolve_arch(shape: tuple[int, ...], arch: str = "auto", by_width: dict[int, str] | None = None,
                 square_images: bool = True) -> str:
    """The one architecture resolver of every model: `conv` for images (C, H, W) (square, side >= 8 unless
    `square_images=False`), for rows the tabular layout named by their width (`by_width`, default
    {121: kdd99, 274: arrhythmia}) or `mlp`. An explicit `arch` must be one of those names and fit the
    input; anything else is a one-line `ConfigError`."""
    shape = tuple(int(s) for s in shape)
    by_width = TABULAR_BY_WIDTH if by_width is None else by_width
    choices = arch_names(by_width)
    if arch not in choices:
        raise ConfigError(f"unknown model.params.arch '{arch}': choose one of {', '.join(choices)}")
    if len(shape) not in (1, 3):
        raise ConfigError(f"input shape {shape}: expected (features,) or (channels, height, width)")
    if is_image(shape):
        if arch not in ("auto", "conv"):
            raise ConfigError(f"arch '{arch}' is tabular but the inputs are images {shape}")
        if square_images and (shape[1] != shape[2] or shape[1] < 8):
            raise ConfigError(f"the conv networks need square images of side >= 8, got {shape}")
        return "conv"
    if arch == "conv":
        raise ConfigError(f"arch 'conv' needs images, got tabular inputs of shape {shape}")
    if arch != "auto":
        return arch
    return by_width.get(shape[0], "mlp")


def default_latent_dim(shape: tuple[int, ...], arch: str = "auto") -> int:
    arch = resolve_arch(shape, arch)
    if arch == "conv":
        return IMAGE_LATENT_DIM
    if arch == "mlp":
        return max(2, min(32, int(shape[0]) // 2))
    return TABULAR_SPECS[arch].latent_dim


# ----------------------------------------------------------------------------------------- helpers
def lrelu() -> nn.Module:
    return nn.LeakyReLU(SLOPE)


def init_weights(module: nn.Module, image: bool) -> nn.Module:
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            if image:
                nn.init.normal_(m.weight, 0.0, 0.01)
            else:
                nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, BATCH_NORMS):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return module


class SpectralNorm(_SpectralNorm):
    """torch's spectral-norm parametrization with its power iteration written as in-place copies instead of
    `out=` arguments, which `torch.func.vmap` cannot batch (a pack trains stacked members under vmap); the
    same numbers, the same state (`_u`, `_v`) and the same state-dict names."""

    @torch.no_grad()
    def _power_method(self, weight_mat: torch.Tensor, n_power_iterations: int) -> None:
        for _ in range(n_power_iterations):
            self._u.copy_(F.normalize(torch.mv(weight_mat, self._v), dim=0, eps=self.eps))
            self._v.copy_(F.normalize(torch.mv(weight_mat.H, self._u), dim=0, eps=self.eps))


def apply_spectral_norm(module: nn.Module) -> nn.Module:
    """Spectral normalisation (Miyato et al. 2018) on every Linear / Conv layer of `module` (torch's
    `spectral_norm` defaults: one power iteration, eps 1e-12; ConvTranspose2d normalised along dim 1).

    As Miyato et al.'s, the vectors u, v are constants of the gradient, and each forward pass in training
    advances them one iteration. ALAD's image code (utils/sn.py, after taki0112's TensorFlow version) differs
    in two ways: its gradient flows through the one iteration from the stored u, and each call of a session
    run iterates from the stored u in no set order with the others' updates of it. Its tabular code builds
    no SN layer (alad/kdd_utilities.py and arrhythmia_utilities.py take `do_spectral_norm` and use it
    nowhere), so the published KDD99 and Arrhythmia cells depend on neither (gap_causes.yaml, ALAD Table
    VII)."""
    for m in list(module.modules()):
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            dim = 1 if isinstance(m, nn.ConvTranspose2d) else 0
            parametrize.register_parametrization(m, "weight", SpectralNorm(m.weight, 1, dim, 1e-12))
    return module


@torch.no_grad()
def reestimate_batchnorm(modules, forward, x: torch.Tensor, batch_size: int) -> None:
    """Set the running statistics of every BatchNorm layer in `modules` to the plain average of its batch
    statistics over one pass of `forward` on `x`, in order, in whole batches of `batch_size` (the last partial
    one left out, as training's batches are whole; one batch of all rows when there are fewer).

    Training's running statistics are an exponential average over every forward pass of training, whatever
    its inputs (generated samples as well as encodings of real rows); a score that runs one path through the
    layers wants the statistics of that path. Only the BatchNorm layers are in training mode meanwhile:
    spectral-norm vectors, dropout and the rest stay as in scoring. No randomness: the same weights give the
    same statistics."""
    modules = list(modules)
    norms = [m for module in modules for m in module.modules() if isinstance(m, BATCH_NORMS)]
    if not norms or len(x) == 0:
        return
    modes = [(m, m.training) for module in modules for m in module.modules()]
    momenta = [m.momentum for m in norms]
    for module in modules:
        module.eval()
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the pass
        m.train()
    try:
        size = min(int(batch_size), len(x))
        for start in range(0, len(x) - size + 1, size):
            forward(x[start:start + size])
    finally:
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum
        for m, mode in modes:
            m.training = mode


def initialize(module: nn.Module, image: bool, spectral_norm: bool) -> nn.Module:
    """The Table IX-XIII initialisation, then spectral normalisation when `spectral_norm`."""
    init_weights(module, image)
    return apply_spectral_norm(module) if spectral_norm else module


def mlp(sizes: list[int], act, dropout: float | tuple[float, ...] = 0.0, norm=None, bias: bool = True,
        last_act: bool = True) -> nn.Sequential:
    """The one MLP builder: dense layers sizes[0] -> ... -> sizes[-1], each hidden one followed by
    `norm(width)` (e.g. BatchNorm; None: none), `act()` and dropout; the last layer too when `last_act`."""
    layers: list[nn.Module] = []
    n = len(sizes) - 1
    drops = dropout if isinstance(dropout, tuple) else (dropout,) * n
    for i in range(n):
        layers.append(nn.Linear(sizes[i], sizes[i + 1], bias=bias))
        if i < n - 1 or last_act:
            if norm is not None:
                layers.append(norm(sizes[i + 1]))
            layers.append(act())
            if drops[i]:
                layers.append(Dropout(drops[i]))
    return nn.Sequential(*layers)


def down_kernels(side: int) -> list[int]:
    """Kernel sizes of the stride-2 (padding 1) layers that take `side` down to at most 4."""
    kernels = []
    while side > 4:
        kernels.append(4 if side % 2 == 0 else 3)
        side = (side + 1) // 2
    return kernels


def final_side(side: int) -> int:
    for _ in down_kernels(side):
        side = (side + 1) // 2
    return side


def conv_trunk(channels: int, side: int, width: int, batch_norm: tuple[bool, ...] | None = None,
               dropout: float = 0.0) -> tuple[nn.Sequential, int]:
    """Stride-2 conv layers (width, 2 width, 4 width, ...) with LeakyReLU: (C, side, side) ->
    (out_channels, s, s), s <= 4. Returns the trunk and its output channel count."""
    layers: list[nn.Module] = []
    c_in = channels
    kernels = down_kernels(side)
    for i, k in enumerate(kernels):
        c_out = width * 2 ** min(i, 3)
        layers.append(nn.Conv2d(c_in, c_out, k, stride=2, padding=1))
        if batch_norm is None or batch_norm[min(i, len(batch_norm) - 1)]:
            layers.append(nn.BatchNorm2d(c_out))
        layers.append(lrelu())
        if dropout:
            layers.append(Dropout(dropout))
        c_in = c_out
    return nn.Sequential(*layers), c_in


# ---------------------------------------------------------------------------------------- networks
class Reshape(nn.Module):
    def __init__(self, *shape: int):
        super().__init__()
        self.shape = shape

    def forward(self, x):
        return x.reshape(len(x), *self.shape)


def make_encoder(shape, latent_dim: int, arch: str = "auto", width: int = 128, sn: bool = False) -> nn.Module:
    """E: x -> z (n, latent_dim). Table IX (images), XI / XIII (tabular)."""
    arch = resolve_arch(shape, arch)
    if arch == "conv":
        c, side = int(shape[0]), int(shape[1])
        trunk, c_out = conv_trunk(c, side, width)
        s = final_side(side)
        net = nn.Sequential(trunk, nn.Conv2d(c_out, latent_dim, s, stride=1, padding=0), nn.Flatten())
        return initialize(net, True, sn)
    spec = TABULAR_SPECS[arch]
    net = mlp([int(shape[0]), *spec.encoder, latent_dim], lrelu, last_act=False)
    return initialize(net, False, sn)


def make_generator(shape, latent_dim: int, arch: str = "auto", width: int = 128) -> nn.Module:
    """G: z -> x. Images: transposed convolutions, BatchNorm, ReLU, tanh output (Table IX); tabular:
    dense ReLU layers with a linear output (Tables X-XIII)."""
    arch = resolve_arch(shape, arch)
    if arch == "conv":
        c, side = int(shape[0]), int(shape[1])
        kernels = down_kernels(side)
        s = final_side(side)
        chans = [width * 2 ** min(i, 3) for i in range(len(kernels))]
        layers: list[nn.Module] = [Reshape(latent_dim, 1, 1),
                                   nn.ConvTranspose2d(latent_dim, chans[-1], s, stride=1, padding=0),
                                   nn.BatchNorm2d(chans[-1]), nn.ReLU()]
        for i in range(len(kernels) - 1, -1, -1):
            c_in = chans[i]
            c_out = chans[i - 1] if i > 0 else c
            layers.append(nn.ConvTranspose2d(c_in, c_out, kernels[i], stride=2, padding=1))
            if i > 0:
                layers += [nn.BatchNorm2d(c_out), nn.ReLU()]
        layers.append(nn.Tanh())
        return init_weights(nn.Sequential(*layers), True)
    spec = TABULAR_SPECS[arch]
    return init_weights(mlp([latent_dim, *spec.generator, int(shape[0])], nn.ReLU, last_act=False), False)


class JointDiscriminator(nn.Module):
    """D_xz(x, z) -> (logit (n,), features): an x branch and a z branch, joined by dense layers."""

    def __init__(self, x_branch: nn.Module, z_branch: nn.Module, joint: nn.Module, feature_dim: int):
        super().__init__()
        self.x_branch, self.z_branch, self.joint = x_branch, z_branch, joint
        self.logit = nn.Linear(feature_dim, 1)

    def forward(self, x, z):
        h = torch.cat([self.x_branch(x).flatten(1), self.z_branch(z)], dim=1)
        features = self.joint(h)
        return self.logit(features).squeeze(1), features


class PairDiscriminator(nn.Module):
    """D(a, b) on the concatenation of a pair (D_xx of images / tabular rows, D_zz of latents) or
    D(x) on one input (`pair=False`): -> (logit (n,), features before the logit)."""

    def __init__(self, body: nn.Module, feature_dim: int, pair: bool = True, channel_dim: int = 1):
        super().__init__()
        self.body = body
        self.pair = pair
        self.channel_dim = channel_dim
        self.logit = nn.Linear(feature_dim, 1)

    def forward(self, a, b=None):
        h = torch.cat([a, b], dim=self.channel_dim) if self.pair else a
        features = self.body(h).flatten(1)
        return self.logit(features).squeeze(1), features


def make_xz_discriminator(shape, latent_dim: int, arch: str = "auto", width: int = 128, sn: bool = False,
                          image_dropout: float = 0.2) -> JointDiscriminator:
    """D_xz (Table IX / XI / XIII)."""
    arch = resolve_arch(shape, arch)
    if arch == "conv":
        c, side = int(shape[0]), int(shape[1])
        x_branch, c_out = conv_trunk(c, side, width, batch_norm=(False, True))
        s = final_side(side)
        z_dim = width * 4
        z_branch = mlp([latent_dim, z_dim, z_dim], lrelu, dropout=image_dropout)
        joint = mlp([c_out * s * s + z_dim, width * 8], lrelu, dropout=image_dropout)
        net = JointDiscriminator(x_branch, z_branch, joint, width * 8)
        return initialize(net, True, sn)
    spec = TABULAR_SPECS[arch]
    x_branch = mlp([int(shape[0]), spec.xz_x], lrelu, norm=nn.BatchNorm1d)
    z_branch = mlp([latent_dim, spec.xz_z], lrelu, dropout=0.5)
    joint = mlp([spec.xz_x + spec.xz_z, *spec.xz_joint], lrelu, dropout=0.5)
    return initialize(JointDiscriminator(x_branch, z_branch, joint, spec.xz_joint[-1]), False, sn)


def make_xx_discriminator(shape, arch: str = "auto", width: int = 128, sn: bool = False,
                          image_dropout: float = 0.2) -> PairDiscriminator:
    """D_xx(x, x') on the concatenated pair (Table IX: two 5x5 stride-2 convolutions of 64 and 128
    filters; Tables XI / XIII: dense layers)."""
    arch = resolve_arch(shape, arch)
    if arch == "conv":
        c, side = int(shape[0]), int(shape[1])
        w1, w2 = max(1, width // 2), width
        body = nn.Sequential(nn.Conv2d(2 * c, w1, 5, stride=2, padding=2), lrelu(), Dropout(image_dropout),
                             nn.Conv2d(w1, w2, 5, stride=2, padding=2), lrelu(), Dropout(image_dropout))
        s = (((side + 1) // 2) + 1) // 2
        return initialize(PairDiscriminator(body, w2 * s * s, pair=True), True, sn)
    spec = TABULAR_SPECS[arch]
    body = mlp([2 * int(shape[0]), *spec.xx], lrelu, dropout=0.2)
    return initialize(PairDiscriminator(body, spec.xx[-1], pair=True), False, sn)


def make_zz_discriminator(latent_dim: int, shape, arch: str = "auto", sn: bool = False) -> PairDiscriminator:
    """D_zz(z, z') on the concatenated pair (Table IX: 64, 32; XI: 32; XIII: 64, 32; dropout 0.2)."""
    arch = resolve_arch(shape, arch)
    sizes = (64, 32) if arch == "conv" else TABULAR_SPECS[arch].zz
    body = mlp([2 * latent_dim, *sizes], lrelu, dropout=0.2)
    return initialize(PairDiscriminator(body, sizes[-1], pair=True), arch == "conv", sn)


def make_x_discriminator(shape, arch: str = "auto", width: int = 128, sn: bool = False) -> PairDiscriminator:
    """A plain GAN discriminator D(x) -> (logit, features). Tabular: ALAD Tables X / XII (the GAN
    used for AnoGAN); images: the DCGAN discriminator of the Table IX family (the x-branch of D_xz:
    no BatchNorm on the first layer), features = the flattened last convolutional map."""
    arch = resolve_arch(shape, arch)
    if arch == "conv":
        c, side = int(shape[0]), int(shape[1])
        trunk, c_out = conv_trunk(c, side, width, batch_norm=(False, True))
        s = final_side(side)
        return initialize(PairDiscriminator(trunk, c_out * s * s, pair=False), True, sn)
    spec = TABULAR_SPECS[arch]
    body = mlp([int(shape[0]), *spec.d], lrelu, dropout=spec.d_dropout)
    return initialize(PairDiscriminator(body, spec.d[-1], pair=False), False, sn)
