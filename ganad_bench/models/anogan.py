"""AnoGAN (Schlegl et al. 2017; "ADGAN" in some tables): a DCGAN trained on normal data, and at test time
a per-sample search for the latent code of each query (the survey's Sec. 3.1, gan_ad_survey.txt).

Training: the plain GAN value function (ALAD Sec. III), logits cross-entropy, non-saturating generator
loss BCE(D(G(z)), 1). Networks: ALAD's GAN of Tables X (KDD99) and XII (Arrhythmia) for tabular data,
and for images the DCGAN generator / discriminator of the Table IX family (`kit.blocks`; ALAD's
appendix: "the official DCGAN architecture"); EMA of weights for inference, decay 0.999 (ALAD appendix).

Latent search (Eqs. 4-7): for Gamma = `search_steps` steps, Adam(`search_lr`) minimises
    L(z) = (1 - lambda) * ||x - G(z)||_1 + lambda * ||f(x) - f(G(z))||_1        (Eq. 6, lambda = 0.1)
with f the discriminator's last hidden layer (Eq. 5), and A(x) = L(z_Gamma) (Eq. 7). The search is
batched: every row of a chunk has its own z and the loss is summed over rows, so each row's update is
its own (Adam is element-wise) and the scores do not depend on the chunking. Choices where AnoGAN is
silent or would break that independence: every query starts from the same z_0 ~ N(0, I), drawn once
from the model seed (not a fresh random start per query, which would make a score depend on its
position in the test set); Gamma = 500 (AnoGAN's setting), search lr 0.01.
The validation loss (early stopping) is the feature-matching distance between the mean features of
the validation rows and of G on a fixed latent sample.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ganad_bench.models.kit import blocks
from ganad_bench.models.kit.contract import require
from ganad_bench.models.kit.deep import DeepDetector
from ganad_bench.models.kit.losses import bce, flat_norm
from ganad_bench.models.kit.registry import register
from ganad_bench.training.engine import DetectorModule


class AnoGANModule(DetectorModule):
    """The DCGAN (G, D) and the latent search of Eqs. 4-7."""

    discriminator_names = ("discriminator",)
    generator_names = ("generator",)

    def __init__(self, shape, latent_dim: int, *, arch: str, width: int, spectral_norm: bool, weight: float,
                 search_steps: int, search_lr: float):
        super().__init__()
        self.latent_dim = latent_dim
        self.weight, self.search_steps, self.search_lr = float(weight), int(search_steps), float(search_lr)
        self.generator = blocks.make_generator(shape, latent_dim, arch, width)
        self.discriminator = blocks.make_x_discriminator(shape, arch, width, sn=spectral_norm)
        self.register_buffer("z_init", torch.randn(latent_dim))
        self.register_buffer("z_val", torch.randn(256, latent_dim))

    def d_loss(self, x):
        z = self.noise.normal((len(x), self.latent_dim), x)
        with torch.no_grad():
            x_gen = self.generator(z)
        loss = bce(self.discriminator(x)[0], 1.0) + bce(self.discriminator(x_gen)[0], 0.0)
        return loss, {"d": loss.detach()}

    def g_loss(self, x):
        z = self.noise.normal((len(x), self.latent_dim), x)
        loss = bce(self.discriminator(self.generator(z))[0], 1.0)
        return loss, {"g": loss.detach()}

    def search_loss(self, x, f_x, z):
        x_gen = self.generator(z)
        _, f_gen = self.discriminator(x_gen)
        return (1.0 - self.weight) * flat_norm(x - x_gen, 1) + self.weight * flat_norm(f_x - f_gen, 1)

    def score(self, x):
        with torch.no_grad():
            f_x = self.discriminator(x)[1]
        z = self.z_init.expand(len(x), -1).clone().requires_grad_(True)
        with torch.enable_grad():
            opt = torch.optim.Adam([z], lr=self.search_lr)
            for _ in range(self.search_steps):
                opt.zero_grad(set_to_none=True)
                self.search_loss(x, f_x, z).sum().backward()
                opt.step()
        with torch.no_grad():
            return self.search_loss(x, f_x, z.detach())

    def val_loss(self, x):
        _, f_x = self.discriminator(x)
        _, f_gen = self.discriminator(self.generator(self.z_val.to(x.dtype)))
        return F.mse_loss(f_x.mean(0), f_gen.mean(0), reduction="sum")


@register("anogan")
class AnoGAN(DeepDetector):
    """AnoGAN / ADGAN (module docstring). Parameters: `latent_dim`, `arch`, `width` as ALAD; `weight` (lambda),
    `search_steps` (Gamma), `search_lr`, `spectral_norm` (off)."""

    # every score costs a latent search: calibrate `threshold_` on fewer training rows than the others
    calibration_rows = 1_000
    # and on a CPU the test rows are scored 256 at a time (MNIST: about 8 min of search on a core), each
    # chunk's scores kept, so that an interrupted run's scoring goes on from its last chunk
    score_chunk_rows = 256

    def __init__(self, seed: int = 0, trainer: dict | None = None, checkpoint_dir=None, callbacks=(), *,
                 latent_dim: int | None = None, arch: str = "auto", width: int = 128, weight: float = 0.1,
                 search_steps: int = 500, search_lr: float = 0.01, spectral_norm: bool = False):
        super().__init__(seed, trainer, checkpoint_dir, callbacks)
        require(0.0 <= float(weight) <= 1.0, "weight", "in [0, 1]", weight)

    def build(self, input_shape):
        return AnoGANModule(input_shape, self.latent_dim(input_shape), **self.module_params("latent_dim"))
