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

Initialisation (`init`): `pytorch`, PyTorch's defaults, as the PyTorch reference code; or `theano`, that of
the authors' Theano code (lukasruff/Deep-SVDD), whose runs are the published MNIST / CIFAR-10 DCAE and
DSVDD numbers (`theano_initialise`, `dictionary_initialise`): Glorot-uniform weights and, from the training
images, a learnt dictionary as the first layer's filters.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganad_bench.errors import ConfigError
from ganad_bench.models.kit import blocks
from ganad_bench.models.kit.blocks import is_image
from ganad_bench.models.kit.contract import check_choice
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


# ------------------------------------------------------------------- the Theano code's initialisation
INITS = ("pytorch", "theano")
LEAKY_GAIN = (2.0 / (1.0 + SLOPE**2)) ** 0.5  # Lasagne's Glorot gain for LeakyReLU(0.01), as modules.py sets it


def check_init(init: str, shape) -> None:
    check_choice("init", init, INITS)
    if init == "theano" and not is_image(tuple(shape)):
        raise ConfigError("model.params.init=theano is the initialisation of Ruff et al.'s image networks: use "
                          "init=pytorch for tabular rows")


@torch.no_grad()
def theano_initialise(encoder: LeNetEncoder, decoder: LeNetDecoder) -> None:
    """The Theano code's initialisation: each convolution of a conv module (encoder and decoder) Glorot-uniform
    with the leaky-ReLU gain (`datasets/modules.py`: GlorotUniform(gain=(2/(1+0.01**2)) ** 0.5)), the dense
    representation layer Glorot-uniform (`layers/dense.py`), the reconstruction convolution Glorot-uniform
    with gain sqrt(2) (`layers/conv.py`: gain='relu'), biases zero. The first convolution's filters, a
    dictionary learnt on the (preprocessed) training images' patches (the scripts' --weight_dict_init 1), come
    when training starts from scratch (`dictionary_initialise`, called by `AutoEncoderModule`). Glorot's
    bounds count a (transposed) convolution's fans as Lasagne's."""
    convs = [m for m in encoder.features if isinstance(m, nn.Conv2d)]
    for layer in [*convs, *decoder.deconvs]:
        nn.init.xavier_uniform_(layer.weight, gain=LEAKY_GAIN)
    nn.init.xavier_uniform_(encoder.fc.weight)
    nn.init.xavier_uniform_(decoder.out.weight, gain=2.0**0.5)
    for layer in [*convs, *decoder.deconvs, encoder.fc, decoder.out]:
        if layer.bias is not None:
            nn.init.zeros_(layer.bias)


@torch.no_grad()
def dictionary_initialise(encoder: LeNetEncoder, x_train: np.ndarray, seed: int) -> None:
    """The first convolution's filters: a dictionary learnt on the training images' patches (`dictionary_filters`)."""
    first = next(m for m in encoder.features if isinstance(m, nn.Conv2d))
    atoms = dictionary_filters(x_train, first.out_channels, first.kernel_size[0], seed)
    first.weight.copy_(torch.from_numpy(atoms))


def dictionary_filters(x: np.ndarray, n_filters: int, size: int, seed: int, n_images: int = 500,
                       n_patches: int = 10_000) -> np.ndarray:
    """(n_filters, C, size, size) filters: the Theano code's `learn_dictionary` (datasets/preprocessing.py).
    Every size x size patch of 500 random training images, each pixel standardised over the patches, and
    scikit-learn's MiniBatchDictionaryLearning(n_components=n_filters, alpha=1, batch_size=10) for the 1,000
    mini-batches its `n_iter=1000` meant then (one pass over 10,000 of the patches drawn at random; the
    parameter is gone from today's scikit-learn, whose `max_iter` counts passes). As the reference, the
    images are reshaped (not transposed) to channels-last and the atoms back; Lasagne convolves
    (flip_filters=True), which is PyTorch's cross-correlation with each filter flipped."""
    from sklearn.decomposition import MiniBatchDictionaryLearning
    from sklearn.feature_extraction.image import PatchExtractor

    rng = np.random.default_rng(seed)
    n, c, h, w = x.shape
    chosen = x[rng.choice(n, min(n_images, n), replace=False)].reshape(-1, h, w, c)
    patches = PatchExtractor(patch_size=(size, size)).transform(chosen).reshape(-1, size * size * c)
    patches = patches.astype(np.float64)
    patches -= patches.mean(axis=0)
    spread = patches.std(axis=0)
    patches /= np.where(spread > 0, spread, 1.0)
    drawn = patches[rng.permutation(len(patches))[:n_patches]]
    learner = MiniBatchDictionaryLearning(n_components=n_filters, alpha=1, max_iter=1, batch_size=10, shuffle=True,
                                          random_state=seed, tol=0.0, max_no_improvement=None)
    atoms = learner.fit(drawn).components_.reshape(n_filters, c, size, size)
    return np.ascontiguousarray(atoms[:, :, ::-1, ::-1], dtype=np.float32)


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
                     sigmoid: bool = True, init: str = "pytorch") -> tuple[nn.Module, nn.Module]:
    """(encoder, decoder) of Deep SVDD / DCAE (module docstring); `init`: their initialisation (`theano`:
    Glorot-uniform; its first layer's dictionary is `autoencoder_module`'s)."""
    blocks.resolve_arch(shape)  # (features,) or square images of side >= 8
    shape = tuple(int(s) for s in shape)
    check_init(init, shape)
    rep = int(rep_dim or default_rep_dim(shape))
    if is_image(shape):
        encoder, decoder = LeNetEncoder(shape, rep, bias), LeNetDecoder(shape, rep, bias, sigmoid=sigmoid)
        if init == "theano":
            theano_initialise(encoder, decoder)
        return encoder, decoder
    d = int(shape[0])
    hidden = tuple(int(h) for h in hidden) if hidden else tabular_sizes(d)[0]
    return mlp_encoder(d, hidden, rep, bias), mlp_decoder(d, hidden, rep, bias)


def autoencoder_module(shape, rep_dim: int | None, hidden, bias: bool, sigmoid: bool, init: str,
                       seed: int) -> AutoEncoderModule:
    """DCAE's network and Deep SVDD's pretraining one (`make_autoencoder`); with `init=theano` on images, the
    first layer's dictionary is learnt when training starts from scratch (`AutoEncoderModule`)."""
    encoder, decoder = make_autoencoder(shape, rep_dim, hidden, bias, sigmoid=sigmoid, init=init)
    learnt = init == "theano" and is_image(tuple(int(s) for s in shape))
    return AutoEncoderModule(encoder, decoder, dictionary_seed=seed if learnt else None)


# --------------------------------------------------------------------------------- the modules
class AutoEncoderModule(DetectorModule):
    """encoder + decoder trained on the mean squared error; score ||x - x_rec||_2^2 (no discriminator)."""

    generator_names = ("encoder", "decoder")

    def __init__(self, encoder: nn.Module, decoder: nn.Module, dictionary_seed: int | None = None):
        """`dictionary_seed`: the seed of the first-layer dictionary learnt from the training images when
        training starts from scratch (`init=theano` on images, `initialise_from_data`); None: none."""
        super().__init__()
        self.encoder, self.decoder = encoder, decoder
        self.dictionary_seed = dictionary_seed

    def initialise_from_data(self, x_train: np.ndarray) -> None:
        # about 3 s of scikit-learn a run on MNIST, one member after another in a pack: a run resumed from its
        # checkpoint, whose weights replace these, skips it
        if self.dictionary_seed is not None:
            dictionary_initialise(self.encoder, np.asarray(x_train, dtype=np.float32), self.dictionary_seed)

    def reconstruct(self, x):
        return self.decoder(self.encoder(x))

    def g_loss(self, x):
        loss = F.mse_loss(self.reconstruct(x), x)
        return loss, {"mse": loss.detach()}

    def score(self, x):
        return squared_error(x, self.reconstruct(x))
