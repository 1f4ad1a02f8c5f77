"""ALAD — Adversarially Learned Anomaly Detection (Zenati, Romain, Foo, Lecouat, Chandrasekhar, ICDM 2018).

Networks (ALAD Sec. IV-A/B, Fig. 1): an encoder E: x -> z, a generator G: z -> x, and three
discriminators on pairs: D_xz(x, z) (the BiGAN/ALI joint discriminator, value V(D_xz, E, G)),
D_xx(x, x') (the ALICE cycle-consistency discriminator on x, V(D_xx, E, G)) and D_zz(z, z') (ALAD's
latent cycle discriminator, V(D_zz, E, G)); ALAD solves min_{G,E} max_{D_xz,D_xx,D_zz} of their sum.
Layer shapes: `models.blocks` (Table IX images, Tables XI / XIII tabular).

Losses (the logits cross-entropies of the authors' code for the value functions above):
* discriminators: BCE(D_xz(x, E(x)), 1) + BCE(D_xz(G(z), z), 0) + BCE(D_xx(x, x), 1)
  + BCE(D_xx(x, G(E(x))), 0) [+ BCE(D_zz(z, z), 1) + BCE(D_zz(z, E(G(z))), 0)];
* generator + encoder: BCE(D_xz(G(z), z), 1) + BCE(D_xz(x, E(x)), 0) + the cycle terms with swapped
  labels (D_xx(x, x) -> 0, D_xx(x, G(E(x))) -> 1 [, the same for D_zz]). G's gradient comes from the
  first and the cycle terms, E's from the second and the cycle terms (one backward for both).

Anomaly scores (Sec. V-F, Table VII), x' = G(E(x)), f_xx = the layer before D_xx's logit:
* `features` (default, Sec. IV-C, Algorithm 1): ||f_xx(x, x) - f_xx(x, x')||_1
* `logits`: -log D_xx(x, x') = BCE(D_xx(x, x'), "real"), as the authors' code computes it (and so Table VII).
  Sec. V-F prints log D_xx(x, x'), the negation, which ranks backwards on a trained model: D_xx learns to
  call reconstructions fake, and the worse the reconstruction (an anomaly) the lower D_xx(x, x'). Measured
  with the printed sign on KDD99 (seed 0): AUROC 0.82 / 0.87 after 1 / 3 epochs, then 0.35 / 0.07 / 0.015
  after 5 / 10 / 20, i.e. the sign settles where the code puts it once D_xx has learnt (README).
* `l1`: ||x - x'||_1, `l2`: ||x - x'||_2.

Ablation switches (Tables V-VI): `spectral_norm` (SN: on the discriminators and the encoder, Sec. IV-B)
and `latent_discriminator` (DL: D_zz). "Baseline" (ALICE) is both off; the full ALAD is both on.

Training (appendix): Adam beta1 = 0.5; images lr 2e-4, batch 32, latent 100, at most 100 epochs with
patience 10 on a normal validation set; KDD99 lr 1e-5, batch 50, latent 32, 100 epochs; Arrhythmia
lr 1e-5, batch 32, latent 64, 1000 epochs (conf/dataset_model/*_alad.yaml); inference with an
exponential moving average of the weights, decay 0.999. The validation loss for early stopping is
the mean Features score of the normal validation rows, whichever score is reported (the authors' code).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ganad_bench.errors import ConfigError
from ganad_bench.models import blocks
from ganad_bench.models.registry import register
from ganad_bench.training.detector import AdversarialDetector
from ganad_bench.training.engine import AdversarialModule

SCORES = ("features", "logits", "l1", "l2")


def bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def flat_norm(d: torch.Tensor, p: int) -> torch.Tensor:
    d = d.flatten(1)
    return d.abs().sum(1) if p == 1 else d.pow(2).sum(1).sqrt()


class BiGANNets(AdversarialModule):
    """E, G and D_xz, with the optional cycle discriminators D_xx (`cycle_x`) and D_zz (`cycle_z`):
    BiGAN/EGBAD (neither), ALICE (D_xx), ALAD (both)."""

    def __init__(self, shape, latent_dim: int, arch: str = "auto", width: int = 128, spectral_norm: bool = True,
                 cycle_x: bool = True, cycle_z: bool = True, image_dropout: float = 0.2):
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
        return torch.randn(n, self.latent_dim, device=like.device, dtype=like.dtype)

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


class ALADNets(BiGANNets):
    score_names = SCORES

    def __init__(self, shape, latent_dim: int, score: str = "features", **kwargs):
        super().__init__(shape, latent_dim, cycle_x=True, **kwargs)
        self.score_name = score

    def score(self, x):
        return self.named_score(x, self.score_name)

    def val_loss(self, x):
        """Early stopping watches the mean Features score of the normal validation rows, whichever score is
        reported (the authors' code)."""
        return self.named_score(x, "features").mean()

    def named_score(self, x, name: str):
        x_rec = self.reconstruct(x)
        if name == "l1":
            return flat_norm(x - x_rec, 1)
        if name == "l2":
            return flat_norm(x - x_rec, 2)
        logit_rec, f_rec = self.d_xx(x, x_rec)
        if name == "logits":
            # -log D_xx(x, x'): the cross-entropy against label "real" of the authors' code, which produced
            # Table VII; Sec. V-F prints log D_xx(x, x'), the negation (module docstring)
            return F.softplus(-logit_rec)
        _, f_real = self.d_xx(x, x)
        return flat_norm(f_real - f_rec, 1)


@register("alad")
class ALAD(AdversarialDetector):
    """ALAD (module docstring). Parameters: `latent_dim` (None: by architecture, `blocks.default_latent_dim`),
    `arch` (`auto` | `conv` | `kdd99` | `arrhythmia` | `mlp`), `width` (image base channels, Table IX: 128),
    `score` (`features` | `logits` | `l1` | `l2`), `spectral_norm` (SN), `latent_discriminator` (DL)."""

    trainer_defaults = {"ema_decay": 0.999}

    def __init__(self, seed: int = 0, trainer: dict | None = None, checkpoint_dir=None, callbacks=(),
                 latent_dim: int | None = None, arch: str = "auto", width: int = 128, score: str = "features",
                 spectral_norm: bool = True, latent_discriminator: bool = True, image_dropout: float = 0.2):
        if score not in SCORES:
            raise ConfigError(f"unknown model.params.score '{score}': choose one of {', '.join(SCORES)}")
        super().__init__(seed, trainer, checkpoint_dir, callbacks, latent_dim=latent_dim, arch=arch, width=width,
                         score=score, spectral_norm=spectral_norm, latent_discriminator=latent_discriminator,
                         image_dropout=image_dropout)

    def build(self, input_shape):
        p = self.params
        latent = self.latent_dim(input_shape)
        return ALADNets(input_shape, latent, score=p["score"], arch=p["arch"], width=int(p["width"]),
                        spectral_norm=bool(p["spectral_norm"]), cycle_z=bool(p["latent_discriminator"]),
                        image_dropout=float(p["image_dropout"]))
