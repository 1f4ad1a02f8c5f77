"""ALAD — Adversarially Learned Anomaly Detection (Zenati, Romain, Foo, Lecouat, Chandrasekhar, ICDM 2018).

Networks (ALAD Sec. IV-A/B, Fig. 1): an encoder E: x -> z, a generator G: z -> x, and three
discriminators on pairs: D_xz(x, z) (the BiGAN/ALI joint discriminator, value V(D_xz, E, G)),
D_xx(x, x') (the ALICE cycle-consistency discriminator on x, V(D_xx, E, G)) and D_zz(z, z') (ALAD's
latent cycle discriminator, V(D_zz, E, G)); ALAD solves min_{G,E} max_{D_xz,D_xx,D_zz} of their sum.
Layer shapes: `kit.blocks` (Table IX images, Tables XI / XIII tabular).

Losses: the logits cross-entropies of the authors' code for the value functions above, written once for
ALAD, EGBAD and RCGAN in `kit.bigan.BiGANModule` (with D_xx and D_zz).

Anomaly scores (Sec. V-F, Table VII), x' = G(E(x)), f_xx = the layer before D_xx's logit:
* `features` (default, Sec. IV-C, Algorithm 1): ||f_xx(x, x) - f_xx(x, x')||_1
* `logits`: -log D_xx(x, x') = BCE(D_xx(x, x'), "real"), as the authors' code computes it (and so Table VII).
  Sec. V-F prints log D_xx(x, x'), the negation, which ranks backwards on a trained model: D_xx learns to
  call reconstructions fake, and the worse the reconstruction (an anomaly) the lower D_xx(x, x'). Measured
  with the printed sign on KDD99 (seed 0): AUROC 0.82 / 0.87 after 1 / 3 epochs, then 0.35 / 0.07 / 0.015
  after 5 / 10 / 20, i.e. the sign settles where the code puts it once D_xx has learnt (docs/measured.md).
* `l1`: ||x - x'||_1, `l2`: ||x - x'||_2.

Ablation switches (Tables V-VI): `spectral_norm` (SN: on the discriminators and the encoder, Sec. IV-B)
and `latent_discriminator` (DL: D_zz). "Baseline" (ALICE) is both off; the full ALAD is both on.

Training (appendix): Adam beta1 = 0.5; images lr 2e-4, batch 32, latent 100, at most 100 epochs with
patience 10 on a normal validation set; KDD99 lr 1e-5, batch 50, latent 32, 100 epochs; Arrhythmia
lr 1e-5, batch 32, latent 64, 1000 epochs (conf/dataset_model/*_alad.yaml); inference with an
exponential moving average of the weights, decay 0.999. The validation loss for early stopping is
the mean Features score of the normal validation rows, whichever score is reported, and the test scores come
from the weights training stopped with, not the best epoch's, which run.py saves to disk but never reloads
(the authors' code; `trainer.early_stopping_restore_best`).
"""

from __future__ import annotations

import torch.nn.functional as F

from ganad_bench.models.kit.bigan import BiGANModule
from ganad_bench.models.kit.contract import check_choice
from ganad_bench.models.kit.deep import DeepDetector
from ganad_bench.models.kit.losses import flat_norm
from ganad_bench.models.kit.registry import register

SCORES = ("features", "logits", "l1", "l2")


class ALADModule(BiGANModule):
    """E, G, D_xz, D_xx and (with DL) D_zz, and the four scores of Table VII."""

    # the scores one trained module can report (`score_name` picks one; scripts/gan_measure.py --all-scores)
    score_names = SCORES

    def __init__(self, shape, latent_dim: int, *, score: str, latent_discriminator: bool, arch: str, width: int,
                 spectral_norm: bool, image_dropout: float):
        super().__init__(shape, latent_dim, arch=arch, width=width, spectral_norm=spectral_norm, cycle_x=True,
                         cycle_z=latent_discriminator, image_dropout=image_dropout)
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
class ALAD(DeepDetector):
    """ALAD (module docstring). Parameters: `latent_dim` (None: by architecture, `blocks.default_latent_dim`),
    `arch` (`auto` | `conv` | `kdd99` | `arrhythmia` | `mlp`), `width` (image base channels, Table IX: 128),
    `score` (`features` | `logits` | `l1` | `l2`), `spectral_norm` (SN), `latent_discriminator` (DL),
    `image_dropout` (the daggered image layers' dropout, unspecified in Table IX)."""

    scoring_params = ("score",)  # early stopping watches the Features score whichever is reported

    def __init__(self, seed: int = 0, trainer: dict | None = None, checkpoint_dir=None, callbacks=(), *,
                 latent_dim: int | None = None, arch: str = "auto", width: int = 128, score: str = "features",
                 spectral_norm: bool = True, latent_discriminator: bool = True, image_dropout: float = 0.2):
        super().__init__(seed, trainer, checkpoint_dir, callbacks)
        check_choice("score", score, SCORES)

    def build(self, input_shape):
        return ALADModule(input_shape, self.latent_dim(input_shape), **self.module_params("latent_dim"))
