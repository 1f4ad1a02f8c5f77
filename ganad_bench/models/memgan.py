"""MEMGAN — Memory Augmented Generative Adversarial Networks (Yang, Zhang, Bozchalooi, Darve, 2020; memgan.txt).

A bidirectional GAN (E, G, D_xz) with an external memory M (n x d, `n_memory` x `memory_dim`) trained with
the networks (Sec. 4):

* latent samples z ~ M are random convex combinations of the memory rows, z = M^T alpha with
  alpha = softmax(u), u ~ N(0, I) (Sec. 4.1 and 4.4: "by applying softmax to a random vector");
* the projection P(z) = M^T softmax(M z) (Eq. 5);
* l_cyc = E||x - G(P(E(x)))||_2 (Eq. 4), l_proj = E||E(x) - P(E(x))||_2 (Eq. 6) and the mutual information
  loss l_mi = -sum_i alpha_i log alpha'_i with alpha' = softmax(M E(G(M^T alpha))) (Eq. 7).

One training step is Algorithm 1, in its order, each update with its own Adam optimizer (engine phases):

1. D_xz:   -log D(x, E(x)) - log(1 - D(G(z), z))
2. E:       log D(x, E(x)) + l_cyc + l_proj + l_mi      (the min-max form, as printed; `encoder_loss`)
3. G:      -log D(G(z), z) + l_cyc + l_mi                 (non-saturating, Sec. 4.4)
4. M:       l_cyc + l_proj + l_mi

The minibatch x and the convex coefficients alpha are drawn once per step and shared by the four updates
(Algorithm 1 samples them before the updates); each update sees the networks as left by the previous one.

Anomaly score (Eq. 8): A(x) = ||x - G(P(E(x)))||_2.

Silent in the paper (its network configurations are in a supplement we do not have): E, G and D_xz are the
shared ALAD family (`kit.blocks`, Table IX for images, Tables XI / XIII / generic MLP for rows) with the
latent size d; spectral normalisation of D_xz and E as ALAD (`spectral_norm`, on: without it D_xz wins
outright within an epoch on MNIST — d_loss 0.001 — and the AUROC falls as training goes on); the memory is
initialised N(0, 1) (with a Glorot-scale memory the addressing stays uniform, every x is projected to the
memory's centroid); Adam beta1 0.5 and batch 32 as ALAD; no EMA of the weights.
BatchNorm statistics (`batchnorm_stats`): E and G see two kinds of batches in training, real encodings
(x -> E -> P -> G, the path Eq. 8 scores) and decoded memory samples (G(z), E(G(z)) for the adversarial and
mutual-information terms), and PyTorch's running statistics average over both. By default
(`scoring_path`) they are re-estimated after training, and before every validation or learning-curve point,
as the plain average over the training rows through the scoring path alone (`kit.blocks.
reestimate_batchnorm`; `training`: PyTorch's own). Chosen by the normal-only validation loss, which it lowers
on every MNIST digit measured (docs/measured.md; `scripts/memgan_check.py batchnorm` compares the two on a
saved run); the paper does not say.
Input scale (`contrast_norm`, off by default as the paper says nothing of it): Eq. 8's pixel distance grows
with an image's ink, so on raw pixels the thin 1s reconstruct within the error of the normal class's own
digits and rank as normal (digits 2 and 8: `ganad-bench-table --by-anomaly-class`); `contrast_norm=l1` trains
and scores on Ruff et al.'s contrast-normalised images (`kit.deep`), the preprocessing of the Deep SVDD runs
whose numbers MEMGAN's Table 1 reprints beside its own.
Section 6: MNIST n = 50, d = 64, 7 epochs, lr 1e-5..1e-4 per class (we use 1e-4 for all classes);
CIFAR-10 n = 100, d = 256, 10 epochs, lr 5e-5..1e-4 (conf/dataset_model/{mnist,cifar10}_memgan.yaml).
`decode_memory` renders G(m_i) for every memory row (Fig. 1); an image run writes them to `memory.png` in
its run folder (`write_artifacts`).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ganad_bench.models.kit import blocks
from ganad_bench.models.kit.contract import require
from ganad_bench.models.kit.deep import DeepDetector
from ganad_bench.models.kit.losses import bce, flat_norm
from ganad_bench.models.kit.registry import register
from ganad_bench.results.image_grid import image_grid, write_png
from ganad_bench.training.engine import DetectorModule
from ganad_bench.training.noise import RandomStream

# where E's and G's BatchNorm running statistics come from (module docstring)
BATCHNORM_STATS = ("scoring_path", "training")
# E's adversarial term: Algorithm 1's `log D(x, E(x))`, minimised as printed (min_max), or the non-saturating
# -log(1 - D(x, E(x))) that ALAD's and BiGAN's code give their encoders (and Sec. 4.4 gives MEMGAN's G): the
# printed form's gradient vanishes where D is sure the pair is real, as it is early in training
ENCODER_LOSSES = ("min_max", "non_saturating")
# how M starts (the paper does not say): N(0, 1), or TensorFlow's default for a variable made without an
# initializer (`tf.get_variable`: Glorot uniform, std sqrt(2 / (n + d)), 0.13 for MNIST's 50 x 64). Adam moves
# an entry by about the learning rate a step at most, so over MNIST's 7 epochs (about 1,150 steps at lr 1e-4) an
# N(0, 1) memory stays where it was drawn (digit 8, seed 0: moved 1.2%); a Glorot one moves 15%, but the rows
# then address it almost uniformly (`scripts/memgan_check.py memory`; docs/measured.md)
MEMORY_INITS = ("normal", "glorot_uniform")


class MEMGANModule(DetectorModule):
    """E, G, D_xz and the memory M, Algorithm 1's four updates as engine phases, the score of Eq. 8."""

    discriminator_names = ("d_xz",)
    generator_names = ("encoder", "generator", "memory")

    def __init__(self, shape, memory_dim: int, *, n_memory: int, arch: str, width: int, spectral_norm: bool,
                 image_dropout: float, projection_loss: bool, batchnorm_stats: str, encoder_loss: str,
                 memory_init: str):
        super().__init__()
        self.n_memory, self.memory_dim = int(n_memory), int(memory_dim)
        self.projection_loss = projection_loss
        self.encoder_loss = encoder_loss
        self.batchnorm_stats = batchnorm_stats
        self.encoder = blocks.make_encoder(shape, memory_dim, arch, width, sn=spectral_norm)
        self.generator = blocks.make_generator(shape, memory_dim, arch, width)
        self.d_xz = blocks.make_xz_discriminator(shape, memory_dim, arch, width, sn=spectral_norm,
                                                 image_dropout=image_dropout)
        memory = torch.empty(self.n_memory, self.memory_dim)
        init = nn.init.normal_ if memory_init == "normal" else nn.init.xavier_uniform_
        self.memory = nn.Parameter(init(memory))
        # the convex coefficients of a step: drawn once and shared by its four updates (D, E, G, M): every update
        # but the last (M) reads the stream's next block without moving on, M moves on (so no state is kept on
        # the module between the updates, and a pack can stack it: `training.pack`)
        self.alpha_stream = RandomStream()

    # ------------------------------------------------------------------------------- memory maths
    def sample_alpha(self, n: int, like: torch.Tensor, advance: bool = False) -> torch.Tensor:
        """The step's random convex coefficients: softmax of a standard normal vector (positive, summing to 1);
        `advance` (the step's last update) moves the stream on to the next step's."""
        return torch.softmax(self.alpha_stream.normal((n, self.n_memory), like, advance=advance), dim=1)

    def combine(self, alpha: torch.Tensor) -> torch.Tensor:
        """z = M^T alpha for each row of alpha."""
        return alpha @ self.memory

    def address(self, z: torch.Tensor) -> torch.Tensor:
        """alpha = softmax(M z) (Eq. 5)."""
        return torch.softmax(z @ self.memory.t(), dim=1)

    def project(self, z: torch.Tensor) -> torch.Tensor:
        """P(z) = M^T softmax(M z) (Eq. 5)."""
        return self.combine(self.address(z))

    # ------------------------------------------------------------------------------------- losses
    def memory_losses(self, x: torch.Tensor, alpha: torch.Tensor) -> dict[str, torch.Tensor]:
        z_enc = self.encoder(x)
        z_proj = self.project(z_enc)
        l_cyc = flat_norm(x - self.generator(z_proj), 2).mean()
        l_proj = flat_norm(z_enc - z_proj, 2).mean()
        z = self.combine(alpha)
        log_alpha_rec = torch.log_softmax(self.encoder(self.generator(z)) @ self.memory.t(), dim=1)
        l_mi = -(alpha * log_alpha_rec).sum(1).mean()
        return {"z_enc": z_enc, "z": z, "cyc": l_cyc, "proj": l_proj, "mi": l_mi}

    def d_loss(self, x):
        alpha = self.sample_alpha(len(x), x)
        with torch.no_grad():
            z_enc = self.encoder(x)
            z = self.combine(alpha)
            x_gen = self.generator(z)
        loss = bce(self.d_xz(x, z_enc)[0], 1.0) + bce(self.d_xz(x_gen, z)[0], 0.0)
        return loss, {"d_xz": loss.detach()}

    def e_loss(self, x):
        terms = self.memory_losses(x, self.sample_alpha(len(x), x))
        logit = self.d_xz(x, terms["z_enc"])[0]
        if self.encoder_loss == "min_max":
            adversarial = F.logsigmoid(logit).mean()  # log D(x, E(x))
        else:
            adversarial = bce(logit, 0.0)  # -log(1 - D(x, E(x)))
        loss = adversarial + terms["cyc"] + terms["mi"]
        if self.projection_loss:
            loss = loss + terms["proj"]
        return loss, {"cyc": terms["cyc"].detach(), "proj": terms["proj"].detach(), "mi": terms["mi"].detach()}

    def g_loss(self, x):
        terms = self.memory_losses(x, self.sample_alpha(len(x), x))
        adversarial = bce(self.d_xz(self.generator(terms["z"]), terms["z"])[0], 1.0)  # -log D(G(z), z)
        return adversarial + terms["cyc"] + terms["mi"], {}

    def m_loss(self, x):
        terms = self.memory_losses(x, self.sample_alpha(len(x), x, advance=True))
        loss = terms["cyc"] + terms["mi"]
        if self.projection_loss:
            loss = loss + terms["proj"]
        return loss, {}

    def phases(self):
        return [("e", ("encoder",), self.e_loss), ("g", ("generator",), self.g_loss),
                ("m", ("memory",), self.m_loss)]

    # ------------------------------------------------------------------------------------- scores
    def calibrate(self, x_train, batch_size):
        """E's and G's BatchNorm statistics from the scoring path over the training rows (module docstring)."""
        if self.batchnorm_stats == "scoring_path":
            blocks.reestimate_batchnorm((self.encoder, self.generator), self.reconstruct, x_train, batch_size)

    def reconstruct(self, x):
        return self.generator(self.project(self.encoder(x)))

    def score(self, x):
        return flat_norm(x - self.reconstruct(x), 2)  # Eq. 8

    @torch.no_grad()
    def decode_memory(self) -> torch.Tensor:
        """G(m_i) for every memory row m_i (MEMGAN Fig. 1): (n_memory, *input_shape)."""
        return self.generator(self.memory)


@register("memgan")
class MEMGAN(DeepDetector):
    """MEMGAN (module docstring). Parameters: `n_memory` (n), `memory_dim` (d; None: the architecture's
    latent size), `arch`, `width`, `spectral_norm`, `image_dropout` as ALAD; `projection_loss` (l_proj on /
    off: Sec. 7's ablation); `batchnorm_stats` (`scoring_path` or `training`: module docstring);
    `encoder_loss` (`min_max`, Algorithm 1 as printed, or `non_saturating`: `ENCODER_LOSSES`); `memory_init`
    (`normal` or `glorot_uniform`: `MEMORY_INITS`); `contrast_norm` (null, l1 or l2; images only: module
    docstring)."""

    def __init__(self, seed: int = 0, trainer: dict | None = None, checkpoint_dir=None, callbacks=(), *,
                 n_memory: int = 50, memory_dim: int | None = None, arch: str = "auto", width: int = 128,
                 spectral_norm: bool = True, image_dropout: float = 0.2, projection_loss: bool = True,
                 batchnorm_stats: str = "scoring_path", encoder_loss: str = "min_max", memory_init: str = "normal",
                 contrast_norm: str | None = None):
        super().__init__(seed, trainer, checkpoint_dir, callbacks)
        require(int(n_memory) >= 2, "n_memory", ">= 2", n_memory)
        require(batchnorm_stats in BATCHNORM_STATS, "batchnorm_stats", f"one of {', '.join(BATCHNORM_STATS)}",
                batchnorm_stats)
        require(encoder_loss in ENCODER_LOSSES, "encoder_loss", f"one of {', '.join(ENCODER_LOSSES)}", encoder_loss)
        require(memory_init in MEMORY_INITS, "memory_init", f"one of {', '.join(MEMORY_INITS)}", memory_init)

    def build(self, input_shape):
        dim = int(self.params["memory_dim"] or blocks.default_latent_dim(input_shape, self.params["arch"]))
        return MEMGANModule(input_shape, dim, **self.module_params("memory_dim", "contrast_norm"))

    def memory_images(self) -> torch.Tensor:
        """The decoded memory units of the scoring network, (n_memory, *input_shape) on the CPU."""
        module = self.scoring_module
        module.eval()
        return module.decode_memory().float().cpu()

    def write_artifacts(self, folder) -> dict[str, str]:
        """`memory.png` in the run folder: the decoded memory units as an image grid (images only)."""
        if self.input_shape is None or len(self.input_shape) != 3:
            return {}
        path = write_png(Path(folder) / "memory.png", image_grid(self.memory_images().numpy()))
        return {"memory_grid": str(path)}
