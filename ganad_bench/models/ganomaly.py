"""GANomaly (Akcay, Atapour-Abarghouei, Breckon, ACCV 2018): an encoder-decoder-encoder generator and a
discriminator (the survey's Sec. 3.3, gan_ad_survey.txt, Eqs. 8-13).

Networks: G_E (encoder) x -> z, G_D (decoder) z -> x_hat, E (second encoder, same architecture as G_E)
x_hat -> z_hat, and a discriminator D with a feature layer f. GANomaly's own DCGAN networks are
replaced by ALAD's (`kit.blocks`: encoder, generator and the plain GAN discriminator of Tables
IX-XIII), as DESIGN.md asks where the papers differ.

Generator loss (Eq. 11): w_adv * L_adv + w_con * L_con + w_enc * L_enc with
* L_adv = ||f(x) - f(x_hat)||_2^2 (Eq. 8, feature matching; mean over elements as GANomaly's code),
* L_con = ||x - x_hat||_1 (Eq. 9, mean over elements),
* L_enc = ||G_E(x) - E(x_hat)||_2^2 (Eq. 10, mean over elements),
and GANomaly's weights w_adv = 1, w_con = 50, w_enc = 1. Discriminator: BCE(D(x), 1) + BCE(D(x_hat), 0).
Anomaly score (Eq. 12): A(x) = ||G_E(x) - E(G_D(G_E(x)))||_2. The min-max rescaling of Eq. 13 uses the
whole test set (it would make a score depend on the other test rows) and does not change the ranking,
so it is not applied. Defaults where GANomaly is silent on tabular data: ALAD's latent sizes; Adam
(lr 2e-4, beta1 0.5, GANomaly's setting); EMA of weights (decay 0.999) as the other models.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ganad_bench.models.kit import blocks
from ganad_bench.models.kit.deep import DeepDetector
from ganad_bench.models.kit.losses import bce
from ganad_bench.models.kit.registry import register
from ganad_bench.training.engine import DetectorModule


class GANomalyModule(DetectorModule):
    """G_E, G_D, E and D, the losses of Eqs. 8-11 and the score of Eq. 12."""

    discriminator_names = ("discriminator",)
    generator_names = ("encoder", "decoder", "encoder2")

    def __init__(self, shape, latent_dim: int, *, arch: str, width: int, spectral_norm: bool, w_adv: float,
                 w_con: float, w_enc: float):
        super().__init__()
        self.w_adv, self.w_con, self.w_enc = float(w_adv), float(w_con), float(w_enc)
        self.encoder = blocks.make_encoder(shape, latent_dim, arch, width)
        self.decoder = blocks.make_generator(shape, latent_dim, arch, width)
        self.encoder2 = blocks.make_encoder(shape, latent_dim, arch, width)
        self.discriminator = blocks.make_x_discriminator(shape, arch, width, sn=spectral_norm)

    def d_loss(self, x):
        with torch.no_grad():
            x_hat = self.decoder(self.encoder(x))
        loss = bce(self.discriminator(x)[0], 1.0) + bce(self.discriminator(x_hat)[0], 0.0)
        return loss, {"d": loss.detach()}

    def g_loss(self, x):
        z = self.encoder(x)
        x_hat = self.decoder(z)
        z_hat = self.encoder2(x_hat)
        _, f_real = self.discriminator(x)
        _, f_fake = self.discriminator(x_hat)
        l_adv = F.mse_loss(f_fake, f_real.detach())
        l_con = F.l1_loss(x_hat, x)
        l_enc = F.mse_loss(z_hat, z)
        loss = self.w_adv * l_adv + self.w_con * l_con + self.w_enc * l_enc
        return loss, {"adv": l_adv.detach(), "con": l_con.detach(), "enc": l_enc.detach()}

    def score(self, x):
        z = self.encoder(x)
        return (z - self.encoder2(self.decoder(z))).pow(2).sum(1).sqrt()


@register("ganomaly")
class GANomaly(DeepDetector):
    """GANomaly (module docstring). Parameters: `latent_dim`, `arch`, `width` as ALAD; `w_adv`, `w_con`,
    `w_enc` (Eq. 11), `spectral_norm` (off)."""

    def __init__(self, seed: int = 0, trainer: dict | None = None, checkpoint_dir=None, callbacks=(), *,
                 latent_dim: int | None = None, arch: str = "auto", width: int = 128, w_adv: float = 1.0,
                 w_con: float = 50.0, w_enc: float = 1.0, spectral_norm: bool = False):
        super().__init__(seed, trainer, checkpoint_dir, callbacks)

    def build(self, input_shape):
        return GANomalyModule(input_shape, self.latent_dim(input_shape), **self.module_params("latent_dim"))
