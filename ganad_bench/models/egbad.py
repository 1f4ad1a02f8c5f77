"""EGBAD — Efficient GAN-Based Anomaly Detection (Zenati et al. 2018), a BiGAN (Donahue et al. 2017):
the survey's Sec. 3.2 (gan_ad_survey.txt) and ALAD Sec. IV-A's V(D_xz, E, G).

Networks: E, G and the joint discriminator D_xz of ALAD (`kit.blocks`, Tables IX / XI / XIII),
without ALAD's cycle discriminators D_xx and D_zz. Losses: ALAD's D_xz terms (`kit.bigan.BiGANModule`).
Anomaly score (EGBAD paper): A(x) = (1 - w) * ||x - G(E(x))||_1 + w * L_D(x) with w = 0.1 (EGBAD's
alpha = 0.9 on the residual term), where L_D is either the feature-matching loss
`fm`: ||f_xz(x, E(x)) - f_xz(G(E(x)), E(x))||_1 (default) or the cross-entropy `ce`: BCE(D_xz(x, E(x)), 1).
Silent in the paper and chosen as ALAD: spectral normalisation off by default (`spectral_norm`), the
EMA of weights for inference (decay 0.999), Adam(lr 2e-4 images / 1e-5 tabular, beta1 0.5).
"""

from __future__ import annotations

import torch.nn.functional as F

from ganad_bench.models.kit.bigan import BiGANModule
from ganad_bench.models.kit.contract import check_choice, require
from ganad_bench.models.kit.deep import DeepDetector
from ganad_bench.models.kit.losses import flat_norm
from ganad_bench.models.kit.registry import register

METHODS = ("fm", "ce")


class EGBADModule(BiGANModule):
    def __init__(self, shape, latent_dim: int, *, weight: float, method: str, arch: str, width: int,
                 spectral_norm: bool, image_dropout: float):
        super().__init__(shape, latent_dim, arch=arch, width=width, spectral_norm=spectral_norm, cycle_x=False,
                         cycle_z=False, image_dropout=image_dropout)
        self.weight, self.method = float(weight), method

    def score(self, x):
        z = self.encoder(x)
        x_rec = self.generator(z)
        residual = flat_norm(x - x_rec, 1)
        logit_real, f_real = self.d_xz(x, z)
        if self.method == "ce":
            disc = F.softplus(-logit_real)
        else:
            disc = flat_norm(f_real - self.d_xz(x_rec, z)[1], 1)
        return (1.0 - self.weight) * residual + self.weight * disc


@register("egbad")
class EGBAD(DeepDetector):
    """EGBAD / BiGAN (module docstring). Parameters: `latent_dim`, `arch`, `width`, `image_dropout` as ALAD;
    `weight` (w), `method` (`fm` | `ce`), `spectral_norm`."""

    def __init__(self, seed: int = 0, trainer: dict | None = None, checkpoint_dir=None, callbacks=(), *,
                 latent_dim: int | None = None, arch: str = "auto", width: int = 128, weight: float = 0.1,
                 method: str = "fm", spectral_norm: bool = False, image_dropout: float = 0.2):
        super().__init__(seed, trainer, checkpoint_dir, callbacks)
        check_choice("method", method, METHODS)
        require(0.0 <= float(weight) <= 1.0, "weight", "in [0, 1]", weight)

    def build(self, input_shape):
        return EGBADModule(input_shape, self.latent_dim(input_shape), **self.module_params("latent_dim"))
