"""The bidirectional GAN module shared by ALAD, EGBAD and RCGAN: an encoder E: x -> z, a generator
G: z -> x and the joint discriminator D_xz(x, z) (BiGAN / ALI; ALAD Sec. IV-A, V(D_xz, E, G)), with the
optional cycle discriminators D_xx(x, x') (`cycle_x`, ALICE; V(D_xx, E, G)) and D_zz(z, z') (`cycle_z`,
ALAD; V(D_zz, E, G)): BiGAN / EGBAD uses neither, RCGAN D_xx, ALAD both. Layer shapes: `kit.blocks`
(ALAD Table IX images, Tables XI / XIII tabular).

Losses (the logits cross-entropies of ALAD's code for the value functions above):
* discriminators: BCE(D_xz(x, E(x)), 1) + BCE(D_xz(G(z), z), 0) [+ BCE(D_xx(x, x), 1) + BCE(D_xx(x, G(E(x))), 0)]
  [+ BCE(D_zz(z, z), 1) + BCE(D_zz(z, E(G(z))), 0)];
* generator + encoder: BCE(D_xz(G(z), z), 1) + BCE(D_xz(x, E(x)), 0) + the cycle terms with swapped labels
  (D_xx(x, x) -> 0, D_xx(x, G(E(x))) -> 1 [, the same for D_zz]). G's gradient comes from the first and the
  cycle terms, E's from the second and the cycle terms (one backward for both).
A method file subclasses it for its score (and extra loss terms: RCGAN's penalty distribution).
"""

from __future__ import annotations

import torch

from ganad_bench.models.kit import blocks
from ganad_bench.models.kit.losses import bce
from ganad_bench.training.engine import DetectorModule


class BiGANModule(DetectorModule):
    """E, G and D_xz, with D_xx when `cycle_x` and D_zz when `cycle_z` (module docstring)."""

    def __init__(self, shape, latent_dim: int, *, arch: str, width: int, spectral_norm: bool, cycle_x: bool,
                 cycle_z: bool, image_dropout: float):
        super().__init__()
        self.latent_dim = latent_dim
        self.cycle_x, self.cycle_z = cycle_x, cycle_z
        sn = spectral_norm
        self.encoder = blocks.make_encoder(shape, latent_dim, arch, width, sn=sn)
        self.generator = blocks.make_generator(shape, latent_dim, arch, width)
        self.d_xz = blocks.make_xz_discriminator(shape, latent_dim, arch, width, sn=sn, image_dropout=image_dropout)
        names = ["d_xz"]
        if cycle_x:
            self.d_xx = blocks.make_xx_discriminator(shape, arch, width, sn=sn, image_dropout=image_dropout)
            names.append("d_xx")
        if cycle_z:
            self.d_zz = blocks.make_zz_discriminator(latent_dim, shape, arch, sn=sn)
            names.append("d_zz")
        self.discriminator_names = tuple(names)
        self.generator_names = ("encoder", "generator")

    def sample_z(self, n: int, like: torch.Tensor) -> torch.Tensor:
        return self.noise.normal((n, self.latent_dim), like)

    def d_loss(self, x):
        z = self.sample_z(len(x), x)
        with torch.no_grad():
            z_enc = self.encoder(x)
            x_gen = self.generator(z)
            x_rec = self.generator(z_enc) if self.cycle_x else None
            z_rec = self.encoder(x_gen) if self.cycle_z else None
        loss_xz = bce(self.d_xz(x, z_enc)[0], 1.0) + bce(self.d_xz(x_gen, z)[0], 0.0)
        loss = loss_xz
        stats = {"d_xz": loss_xz.detach()}
        if self.cycle_x:
            loss_xx = bce(self.d_xx(x, x)[0], 1.0) + bce(self.d_xx(x, x_rec)[0], 0.0)
            loss = loss + loss_xx
            stats["d_xx"] = loss_xx.detach()
        if self.cycle_z:
            loss_zz = bce(self.d_zz(z, z)[0], 1.0) + bce(self.d_zz(z, z_rec)[0], 0.0)
            loss = loss + loss_zz
            stats["d_zz"] = loss_zz.detach()
        return loss, stats

    def g_loss(self, x):
        z = self.sample_z(len(x), x)
        z_enc = self.encoder(x)
        x_gen = self.generator(z)
        loss = bce(self.d_xz(x_gen, z)[0], 1.0) + bce(self.d_xz(x, z_enc)[0], 0.0)
        stats = {"g_xz": loss.detach()}
        if self.cycle_x:
            x_rec = self.generator(z_enc)
            cost_x = bce(self.d_xx(x, x)[0], 0.0) + bce(self.d_xx(x, x_rec)[0], 1.0)
            loss = loss + cost_x
            stats["g_xx"] = cost_x.detach()
        if self.cycle_z:
            z_rec = self.encoder(x_gen)
            cost_z = bce(self.d_zz(z, z)[0], 0.0) + bce(self.d_zz(z, z_rec)[0], 1.0)
            loss = loss + cost_z
            stats["g_zz"] = cost_z.detach()
        return loss, stats

    def reconstruct(self, x):
        return self.generator(self.encoder(x))
