"""RCGAN — Regularized Cycle Consistent GAN (Yang, Bozchalooi, Darve, ECAI 2020; rcgan.txt).

Networks (Sec. 4): ALICE's E, G, the joint discriminator D_xz and the cycle discriminator D_xx — ALAD's
networks without D_zz ("the hyper-parameters and neural structures of RCGAN closely follow ALAD",
Sec. 5.4), built by `kit.blocks` from the input shape (ALAD Tables IX / XI / XIII, the generic MLP
for other tabular widths).

Objective (Eq. 10) = V_ano (Eq. 4) + V_cycle (Eq. 9):

    V_ano   = E_q[log D_xz(x, E(x))] + E_p(z)[log(1 - D_xz(G(z), z))] + E_t[log(1 - D_xz(x~, E(x~)))]
    V_cycle = E_q[log D_xx(x, x)] + E_q[log(1 - D_xx(x, G(E(x))))]

with x~ drawn from the penalty distribution t(x) (`penalty`: `normal` N(0, I) — the paper's default —,
`normal2` N(0, 2I), `uniform` U(-1, 1) of Table 4, or `none`: Table 3's "w/o t(x)", which removes the
third term of Eq. 4 and nothing else). The discriminators maximise V with logits cross-entropies; G and E
minimise it in the non-saturating form ALAD's code uses (each term's label swapped), so the penalty term
adds BCE(D_xz(x~, E(x~)), 0) to the discriminator loss and BCE(D_xz(x~, E(x~)), 1) to the encoder's.

Anomaly score (`score`):
* `discriminator` — Eq. 11, A(x) = 1 - D_xx(x, G(E(x))). We return its log-odds, -logit D_xx(x, G(E(x))):
  a monotone map of Eq. 11 (same AUROC, same top-k flags) that does not saturate to ties at 1.0 in float32.
* `features` — Eq. 12, ||f_xx(x, x) - f_xx(x, G(E(x)))||_2 with f_xx the layer before D_xx's logit
  (the paper's image score, Sec. 5.4).
* `auto` (default) — `discriminator` on tabular rows (Table 1), `features` on images (Table 2).

Training follows ALAD's appendix (Adam beta1 0.5, EMA of the weights for scoring, spectral normalisation
of the discriminators and the encoder as ALAD's best model: `spectral_norm`); per-dataset settings in
conf/dataset_model/*_rcgan.yaml. The paper's protocol splits 80% / 20% for KDD99 and Arrhythmia and
50% / 50% for Thyroid (Sec. 5.3), set there as `dataset.train_fraction`.
"""

from __future__ import annotations

import math

import torch

from ganad_bench.models.kit.bigan import BiGANModule
from ganad_bench.models.kit.blocks import is_image
from ganad_bench.models.kit.contract import check_choice
from ganad_bench.models.kit.deep import DeepDetector
from ganad_bench.models.kit.losses import bce, flat_norm
from ganad_bench.models.kit.registry import register
from ganad_bench.training.noise import RandomStream

PENALTIES = ("normal", "normal2", "uniform", "none")
SCORES = ("auto", "discriminator", "features")


def sample_penalty(kind: str, like: torch.Tensor, stream: RandomStream) -> torch.Tensor:
    """A batch from t(x) shaped like `like` (RCGAN Table 4's three distributions), drawn from `stream`."""
    if kind == "normal":
        return stream.normal(like.shape, like)
    if kind == "normal2":
        return stream.normal(like.shape, like) * math.sqrt(2.0)  # N(0, 2I): variance 2
    if kind == "uniform":
        return stream.uniform(like.shape, like) * 2.0 - 1.0
    raise ValueError(f"no samples for penalty '{kind}'")


class RCGANModule(BiGANModule):
    """ALICE's E, G, D_xz, D_xx, the penalty term of Eq. 4 and the scores of Eqs. 11-12."""

    # the scores one trained module can report (`score_name` picks one; scripts/gan_measure.py --all-scores)
    score_names = ("discriminator", "features")

    def __init__(self, shape, latent_dim: int, *, penalty: str, score: str, arch: str, width: int,
                 spectral_norm: bool, image_dropout: float):
        super().__init__(shape, latent_dim, arch=arch, width=width, spectral_norm=spectral_norm, cycle_x=True,
                         cycle_z=False, image_dropout=image_dropout)
        self.penalty = penalty
        self.score_name = ("features" if is_image(tuple(shape)) else "discriminator") if score == "auto" else score

    def penalty_terms(self, x: torch.Tensor, discriminator: bool) -> torch.Tensor | None:
        """The third term of Eq. 4 for one player (None without t(x))."""
        if self.penalty == "none":
            return None
        x_pen = sample_penalty(self.penalty, x, self.noise)
        if discriminator:
            with torch.no_grad():
                z_pen = self.encoder(x_pen)
            return bce(self.d_xz(x_pen, z_pen)[0], 0.0)
        return bce(self.d_xz(x_pen, self.encoder(x_pen))[0], 1.0)

    def add_penalty(self, loss, stats, x, discriminator: bool):
        term = self.penalty_terms(x, discriminator)
        if term is not None:
            loss = loss + term
            stats["d_penalty" if discriminator else "g_penalty"] = term.detach()
        return loss, stats

    def d_loss(self, x):
        return self.add_penalty(*super().d_loss(x), x, discriminator=True)

    def g_loss(self, x):
        return self.add_penalty(*super().g_loss(x), x, discriminator=False)

    def score(self, x):
        return self.named_score(x, self.score_name)

    def val_loss(self, x):
        """Early stopping watches the mean Eq. 12 score of the normal validation rows, whichever score is
        reported (as ALAD's code, which RCGAN follows), so that the score never changes the training."""
        return self.named_score(x, "features").mean()

    def named_score(self, x, name: str):
        x_rec = self.reconstruct(x)
        logit_rec, f_rec = self.d_xx(x, x_rec)
        if name == "discriminator":
            return -logit_rec  # log-odds of A(x) = 1 - D_xx(x, G(E(x))) (Eq. 11)
        _, f_real = self.d_xx(x, x)
        return flat_norm(f_real - f_rec, 2)  # Eq. 12


@register("rcgan")
class RCGAN(DeepDetector):
    """RCGAN (module docstring). Parameters: `latent_dim`, `arch`, `width`, `spectral_norm`, `image_dropout`
    as ALAD; `penalty` (`normal` | `normal2` | `uniform` | `none`), `score` (`auto` | `discriminator` |
    `features`)."""

    scoring_params = ("score",)

    def __init__(self, seed: int = 0, trainer: dict | None = None, checkpoint_dir=None, callbacks=(), *,
                 latent_dim: int | None = None, arch: str = "auto", width: int = 128, penalty: str = "normal",
                 score: str = "auto", spectral_norm: bool = True, image_dropout: float = 0.2):
        super().__init__(seed, trainer, checkpoint_dir, callbacks)
        check_choice("penalty", penalty, PENALTIES)
        check_choice("score", score, SCORES)

    def build(self, input_shape):
        return RCGANModule(input_shape, self.latent_dim(input_shape), **self.module_params("latent_dim"))
