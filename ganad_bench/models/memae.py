"""MemAE — memory-augmented autoencoder (Gong, Liu, Le, Saha, Mansour, Venkatesh, van den Hengel, ICCV 2019);
the MEMAE columns of MEMGAN Tables 1-2.

Model (Gong Sec. 3): encoder z = f_e(x); a memory M of N slots x C (a parameter, learned with the rest);
the query z is addressed as
* attention (Eqs. 4-5): w_i = softmax_i(d(z, m_i)) with d the cosine similarity of z and slot m_i (as
  the paper's Eq. 5; `similarity: cosine`, the default) or the plain inner product z m_i^T of the
  authors' code (`similarity: dot`). Measured on trained MNIST models: with cosine the softmax of
  logits in [-1, 1] stays close to uniform (max weight ~0.03, ~45 of 100 slots survive the shrinkage),
  far from the sparse addressing the paper describes; the inner product lets it become peaked;
* hard shrinkage (Eq. 7): w_i <- max(w_i - lambda, 0) * w_i / (|w_i - lambda| + eps), eps = 1e-12, then
  w <- w / ||w||_1 (the continuous ReLU form of the paper, as its `hard_shrink_relu`);
* z_hat = w M (Eq. 3), decoded to x_hat = f_d(z_hat).
lambda (`shrink_thres`): the paper suggests [1/N, 3/N]; we use 1/N (null). With cosine similarities the
logits lie in [-1, 1], so a softmax over N slots keeps every w_i within e^2/N of 1/N; a threshold of
2/N or 3/N can then zero every weight (z_hat = 0 and no gradient reaches the memory), while 1/N always
keeps the above-average slots and zeros the rest (the weights average 1/N), so addressing is sparse
from the first step.
Loss (Eq. 10): mean squared reconstruction error + alpha * mean entropy of w (Eq. 9, -sum w log w),
alpha = 0.0002. Score: the reconstruction error ||x - x_hat||_2^2 (Sec. 3.5).

Where the memory sits (`memory_on`): `image` (default): one query per image, z = the flattened encoder
output (C = 64 x 4 x 4 = 1024 for MNIST), as Gong Sec. 3.2-3.3 define it (z in R^C, M in R^{N x C}, one
addressing vector w in R^N per sample); `position`: one query per spatial position of the encoder's
feature map (C = its channels), as the authors' video code (`MemModule` on (N, C, T, H, W)). Measured on
MNIST (seed 0, 10 epochs): with `position` 16 queries of 64 channels per image, combined freely from
100 slots, reconstruct the other digits almost as well (mean AUROC 78.3, cosine; 78.8, dot), which is
why the default is the paper's per-sample query. Tabular rows: one query per row.
Networks (Gong Sec. 4.1), Conv2(k, s, c) = a k x k convolution of stride s with c filters, each followed
by BatchNorm and LeakyReLU(0.2) (as the code) except the decoder's last layer (linear output):
* grey images (MNIST): encoder Conv2(1,2,16) - Conv2(3,2,32) - Conv2(3,2,64) (28 -> 14 -> 7 -> 4), decoder
  Dconv2(3,2,64) - Dconv2(3,2,32) - Dconv2(3,2,1); N = 100 slots (C = 1024, or 64 per position);
* colour images (CIFAR-10): Conv2(3,2,64) - Conv2(3,2,128) - Conv2(3,2,128) - Conv2(3,2,256), decoder
  Dconv2(3,2,256) - Dconv2(3,2,128) - Dconv2(3,2,128) - Dconv2(3,2,3); N = 500 slots (C = 256 x 2 x 2);
* tabular rows (our choice; the paper has no tabular experiment): the DCAE MLP of `models.autoencoder`
  with biases (hidden (128, 64) -> 32 for d >= 100, (32, 16) -> 8 otherwise, -> 4 for d <= 6) and N = 100.
Transposed convolutions have padding 1 and the output padding that restores the encoder's sizes.
Inputs: the pipeline's pixels in [-1, 1] (`contrast_norm` null; l1 applies Deep SVDD's preprocessing).
Training: Adam, lr 1e-4 (Gong Sec. 4.1), batch 200 and 100 epochs (the paper does not give them for
images; conf/model/memae.yaml).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ganad_bench.errors import ConfigError
from ganad_bench.models.kit import blocks
from ganad_bench.models.kit.blocks import is_image
from ganad_bench.models.kit.contract import check_choice
from ganad_bench.models.kit.deep import DeepDetector
from ganad_bench.models.kit.lenet import mlp_decoder, mlp_encoder, tabular_sizes
from ganad_bench.models.kit.losses import squared_error
from ganad_bench.models.kit.registry import register
from ganad_bench.training.engine import DetectorModule

SHRINK_EPS = 1e-12
SLOPE = 0.2
SIMILARITIES = ("cosine", "dot")
MEMORY_ON = ("image", "position")


def hard_shrink(w: torch.Tensor, lambd: float) -> torch.Tensor:
    """Gong Eq. 7: max(w - lambda, 0) * w / (|w - lambda| + eps), then the l1 re-normalisation."""
    shrunk = F.relu(w - lambd) * w / ((w - lambd).abs() + SHRINK_EPS)
    return F.normalize(shrunk, p=1, dim=1)


class Memory(nn.Module):
    """N x C memory addressed by cosine-similarity attention with hard shrinkage (module docstring)."""

    def __init__(self, n_slots: int, dim: int, shrink_thres: float, similarity: str = "cosine"):
        super().__init__()
        self.similarity = similarity
        self.weight = nn.Parameter(torch.empty(n_slots, dim))
        stdv = 1.0 / dim ** 0.5
        nn.init.uniform_(self.weight, -stdv, stdv)  # as the authors' MemoryUnit.reset_parameters
        self.shrink_thres = float(shrink_thres)

    def address(self, z: torch.Tensor) -> torch.Tensor:
        """(queries, C) -> addressing weights (queries, N): non-negative, sparse, rows summing to 1."""
        if self.similarity == "cosine":
            logits = F.linear(F.normalize(z, dim=1), F.normalize(self.weight, dim=1))
        else:
            logits = F.linear(z, self.weight)
        w = F.softmax(logits, dim=1)
        return hard_shrink(w, self.shrink_thres) if self.shrink_thres > 0 else w

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        w = self.address(z)
        return w @ self.weight, w


def conv_layers(shape) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(kernel sizes, channels) of the encoder (Gong Sec. 4.1)."""
    return ((1, 3, 3), (16, 32, 64)) if int(shape[0]) == 1 else ((3, 3, 3, 3), (64, 128, 128, 256))


class ConvEncoder(nn.Module):
    def __init__(self, shape):
        super().__init__()
        kernels, chans = conv_layers(shape)
        layers: list[nn.Module] = []
        c_in, side = int(shape[0]), int(shape[1])
        self.sides = [side]
        for k, c_out in zip(kernels, chans, strict=True):
            layers += [nn.Conv2d(c_in, c_out, k, stride=2, padding=k // 2), nn.BatchNorm2d(c_out),
                       nn.LeakyReLU(SLOPE)]
            side = (side + 2 * (k // 2) - k) // 2 + 1
            self.sides.append(side)
            c_in = c_out
        self.net = nn.Sequential(*layers)
        self.out_channels = c_in

    def forward(self, x):
        return self.net(x)


class ConvDecoder(nn.Module):
    """Dconv2(3, 2, c) layers back to the encoder's sizes; channels (last, ..., second, input channels)."""

    def __init__(self, shape, sides: list[int]):
        super().__init__()
        _, chans = conv_layers(shape)
        outs = [*reversed(chans[1:]), int(shape[0])]
        ins = [chans[-1], *outs[:-1]]
        targets = list(reversed(sides[:-1]))
        layers: list[nn.Module] = []
        side = sides[-1]
        for i, (c_in, c_out, target) in enumerate(zip(ins, outs, targets, strict=True)):
            pad = target - (2 * side - 1)  # (side - 1) * 2 - 2 + 3 + output_padding = target
            if pad not in (0, 1):
                raise ConfigError(f"cannot mirror the encoder from side {side} to {target}")
            layers.append(nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=pad))
            if i < len(outs) - 1:
                layers += [nn.BatchNorm2d(c_out), nn.LeakyReLU(SLOPE)]
            side = target
        self.net = nn.Sequential(*layers)

    def forward(self, z):
        return self.net(z)


class MemAEModule(DetectorModule):
    """Encoder, memory and decoder; MSE + entropy loss (Eq. 10); the reconstruction error as the score."""

    generator_names = ("encoder", "memory", "decoder")

    def __init__(self, shape, *, mem_slots: int | None, shrink_thres: float | None, entropy_weight: float, hidden,
                 rep_dim: int | None, similarity: str, memory_on: str):
        super().__init__()
        blocks.resolve_arch(shape)  # (features,) or square images of side >= 8
        shape = tuple(int(s) for s in shape)
        self.image = is_image(shape)
        self.per_position = self.image and memory_on == "position"
        if self.image:
            self.encoder = ConvEncoder(shape)
            self.decoder = ConvDecoder(shape, self.encoder.sides)
            dim = self.encoder.out_channels * (1 if self.per_position else self.encoder.sides[-1] ** 2)
            n = int(mem_slots or (100 if int(shape[0]) == 1 else 500))
        else:
            d = int(shape[0])
            default_hidden, default_rep = tabular_sizes(d)
            hidden = tuple(int(h) for h in hidden) if hidden else default_hidden
            dim = int(rep_dim or default_rep)
            self.encoder = mlp_encoder(d, hidden, dim, bias=True)
            self.decoder = mlp_decoder(d, hidden, dim, bias=True)
            n = int(mem_slots or 100)
        lambd = 1.0 / n if shrink_thres is None else float(shrink_thres)
        self.memory = Memory(n, dim, lambd, similarity)
        self.entropy_weight = float(entropy_weight)

    def queries(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...] | None]:
        z = self.encoder(x)
        if not self.image:
            return z, None
        n, c, h, w = z.shape
        if not self.per_position:
            return z.flatten(1), (n, c, h, w)
        return z.permute(0, 2, 3, 1).reshape(n * h * w, c), (n, h, w, c)

    def addressing(self, x: torch.Tensor) -> torch.Tensor:
        """The addressing weights of every query of x: (queries, N)."""
        return self.memory.address(self.queries(x)[0])

    def forward(self, x):
        z, layout = self.queries(x)
        z_hat, w = self.memory(z)
        if layout is not None and not self.per_position:
            z_hat = z_hat.reshape(layout)
        elif layout is not None:
            n, h, ww, c = layout
            z_hat = z_hat.reshape(n, h, ww, c).permute(0, 3, 1, 2)
        return self.decoder(z_hat), w

    def g_loss(self, x):
        x_hat, w = self(x)
        mse = F.mse_loss(x_hat, x)
        entropy = -(w * torch.log(w + SHRINK_EPS)).sum(1).mean()
        loss = mse + self.entropy_weight * entropy
        return loss, {"mse": mse.detach(), "entropy": entropy.detach()}

    def score(self, x):
        return squared_error(x, self(x)[0])


@register("memae")
class MemAE(DeepDetector):
    """MemAE (module docstring). Parameters: `mem_slots` N (null: 100 grey images / tabular, 500 colour
    images), `shrink_thres` lambda (null: 1/N; 0: no shrinkage), `entropy_weight` alpha (0.0002),
    `hidden` / `rep_dim` (tabular networks, null: by width), `contrast_norm` (null | l1 | l2; images only),
    `similarity` (cosine: the paper's Eq. 5 | dot: the authors' code), `memory_on` (image: one query per
    sample, the paper | position: one per feature-map position, the authors' video code)."""

    def __init__(self, seed: int = 0, trainer: dict | None = None, checkpoint_dir=None, callbacks=(), *,
                 mem_slots: int | None = None, shrink_thres: float | None = None, entropy_weight: float = 0.0002,
                 hidden=None, rep_dim: int | None = None, contrast_norm: str | None = None,
                 similarity: str = "cosine", memory_on: str = "image"):
        super().__init__(seed, trainer, checkpoint_dir, callbacks)
        check_choice("memory_on", memory_on, MEMORY_ON)
        check_choice("similarity", similarity, SIMILARITIES)

    def build(self, input_shape):
        return MemAEModule(input_shape, **self.module_params("contrast_norm"))
