"""AMA — Adversarial Mirrored AutoEncoder (Somepalli, Wu, Balaji, Vinzamuri, Feizi, UAI 2021).

Networks (Sec. 3, Fig. 1): an encoder E: x -> z, a generator (decoder) G: z -> x and a critic D on stacked
pairs D(a, b) (channel-concatenated images, or concatenated rows) returning (logit, f), f = the
penultimate layer. The paper borrows SN-GAN's residual generator and critic and a 4-layer BatchNorm /
LeakyReLU encoder, with exact shapes in an appendix that is not part of the paper text we have; we use the
shared ALAD Table IX family instead (`blocks.make_encoder`, `blocks.make_generator`,
`blocks.make_xx_discriminator`; tabular: ALAD Tables XI / XIII or the generic MLP), so that every model of
the benchmark runs on one family of networks and differences between detectors come from their losses and
scores, not from their architectures. The critic's dropout on images is off by default (`image_dropout`
0.0: an SN-GAN / WGAN critic has none); the tabular pair critic keeps the blocks' fixed dropout 0.2.

Losses. With x̂ = G(E(x)), x̂_inter (below), x_n = G(z_neg) (synthetic negatives, detached) and
x̂_n = G(E(x_n)), Eq. 3 and Eq. 4 are

    L_normal = E_x[ D(x, x) - D(x, x̂) + λ_inter (D(x, x) - D(x, x̂_inter)) + λ_reg ||E(x)||_2 ]
    L_neg    = E_xn[ D(x_n, x_n) - D(x_n, x̂_n) ]

and Eq. 2 is min_{E,G} max_{D in Lip-1} L_normal - λ_neg L_neg, taken literally for both players:

    critic  (minimised): -(D(x,x) - D(x,x̂)) - λ_inter (D(x,x) - D(x,x̂_inter)) + λ_neg L_neg  [+ 10 GP]
    E and G (minimised):  (D(x,x) - D(x,x̂)) + λ_inter (D(x,x) - D(x,x̂_inter)) + λ_reg ||E(x)||_2 - λ_neg L_neg

(means over the batch; the λ_reg term has no critic gradient, so it only appears in the E/G loss). E and G
thus make reconstructions of normal rows and of interpolated latents look like (x, x) pairs, and make the
reconstructions of synthetic negatives look unlike their inputs ("anomalies are not reconstructed well").
The negatives are images decoded from atypical latents and their reconstructions are pushed away, as the
authors' code applies Eq. 4; x_n is detached, so the negative term reaches E and G only through x̂_n.
`neg_in_critic: false` drops the critic's +λ_neg L_neg (a non-literal reading in which the critic only
estimates the mirrored Wasserstein distance of normal rows and the negatives act on E and G alone; measured
on MNIST, docs/measured.md). The negative term is switched on after `neg_start_epoch` epochs (the authors: epoch 10
of 100) and uses `neg_fraction` of the batch size as negatives (the authors: 10%).

Lipschitz constraint (`lipschitz`: `sn` | `gp` | `sn+gp`). Default `sn`: the paper takes its critic from
SN-GAN, whose 1-Lipschitz constraint is spectral normalisation, and SN costs no double backward (the
gradient penalty triples the critic's cost on a CPU). `gp` adds WGAN-GP's penalty (weight 10,
`gp_weight`) on random interpolates between the (x, x) and (x, x̂) pairs, i.e. at (x, εx + (1 - ε)x̂),
ε ~ U(0, 1) per row, on the gradient w.r.t. both halves of the pair. `critic_steps` = 5 critic updates per
E/G update (WGAN practice and the authors' `update_ratio` default). The engine gives all critic updates
of a step the same batch and E, G do not change between them, so x̂, x̂_inter and the negatives are decoded
once per step and reused by its critic updates (`critic_reuse`, default on: the same reconstructions, one
draw of simplex weights and negatives per step instead of one per critic update, about 1.5x faster;
`critic_reuse: false` redraws and re-decodes for every critic update).

Simplex interpolation (Sec. 3.2, k = `simplex_k` = 3): for every row, latent = Σ_i a_i e_i / Σ_i a_i with
a_i ~ U(0, 0.5), e_1 = E(x) and e_2..e_k the encodings of k - 1 random permutations of the batch;
x̂_inter = G(latent) and the critic compares (x, x̂_inter) with (x, x).

Atypical selection (Sec. 3.2, Fig. 3): z_neg = u r with u uniform on the unit sphere of R^d and r drawn
uniformly in the volume of the annulus between √d - δ and √d (`atypical: inward`) or √d and √d + δ
(`outward`): r = (r0^d + U (r1^d - r0^d))^(1/d), computed in log space. Defaults `outward`, δ = 2: the
norm of a standard Gaussian in R^d has standard deviation ≈ 1/√2 whatever d, so √d ± 2 is its typical
shell at about 3 standard deviations; the outward annulus starts at that shell and ends just outside it
("just outside and closer to the typical set"). Outward rather than inward because the latent-norm
regulariser pulls the encodings of normal rows towards the origin, so inward negatives would risk lying
among them, while outward ones never do; the paper picks direction and δ on validation anomalies, which
this benchmark's protocols do not provide.

Anomaly scores. R(x) = ||f(x, x) - f(x, G(E(x)))||_1 (Eq. 5). After training (`after_fit`), the mean μ and
standard deviation σ (ddof 0) of R over the TRAINING rows are stored as buffers of the scoring network
(saved with it); the A-score (Eq. 6) is the Gaussian likelihood N(R; μ, σ²), lower = more anomalous. Our
contract is higher = more anomalous, so `score: a` (default) reports -log A = (R - μ)² / 2σ² + log σ +
log √(2π) (the same ranking as -A); `score: r` reports R itself (Table 1's "w/o new anomaly scoring").
`val_loss` (early stopping) is the mean R of the normal validation rows.

Ablation switches (Table 1): `mirrored: false` ("w/o Mirrored Wass. loss") — the critic sees one input, x̂
vs x (plain Wasserstein loss); we keep the same network and feed it (a, a), so D'(a) = D(a, a) is a
single-input critic and R becomes ||f'(x) - f'(x̂)||_1; `simplex: false` or `simplex_k` 0 / 1 ("w/o
Simplex Interpolation") — no interpolation term; `atypical: off` ("w/o Atypical selection") — no negative
term; `score: r` ("w/o new anomaly scoring").

Training defaults (the authors' public run command; conf/model/ama.yaml): λ_neg = 5 (anom_recon_lambda),
λ_reg = 1 (regularizer_lambda), λ_inter = 0.2 (ip_lambda), Adam lr 3e-4, betas (0, 0.9) for all three
networks (the engine has one betas), batch 256, latent 128 on images (tabular rows: the blocks' default),
100 epochs, lr x 0.1 at epochs 30 / 60 / 90, negatives from epoch 10 on in 10% of the batch. No weight EMA
(the paper does not use one): scoring uses the trained weights. BatchNorm statistics: the encoder sees
normal rows and negatives in one call and the generator sees x̂, x̂_inter and x̂_n latents in one call, and
decoding z_neg does not move G's running statistics, so the eval-mode statistics stay those of training
batches dominated by normal rows.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
import torch
from torch import nn

from ganad_bench.models.kit import blocks
from ganad_bench.models.kit.contract import check_choice, require
from ganad_bench.models.kit.deep import DeepDetector
from ganad_bench.models.kit.losses import flat_norm
from ganad_bench.models.kit.registry import register
from ganad_bench.training.engine import DetectorModule
from ganad_bench.training.noise import RandomStream

LIPSCHITZ = ("sn", "gp", "sn+gp")
ATYPICAL = ("inward", "outward", "off")
SCORES = ("a", "r")
IMAGE_LATENT_DIM = 128  # the authors' run command
LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def atypical_radii(n: int, dim: int, delta: float, direction: str, generator: torch.Generator | None = None,
                   device=None) -> torch.Tensor:
    """Radii drawn uniformly in the volume of the annulus between √d - δ and √d (`inward`, clipped at 0)
    or √d and √d + δ (`outward`): `annulus_radii` of n uniforms from `generator`."""
    return annulus_radii(torch.rand(n, generator=generator, device=device), dim, delta, direction)


def annulus_radii(u: torch.Tensor, dim: int, delta: float, direction: str) -> torch.Tensor:
    """r = r1 (t + U (1 - t))^(1/d), t = (r0 / r1)^d, for uniforms U (`atypical_radii`)."""
    root = math.sqrt(dim)
    r0, r1 = (max(root - delta, 0.0), root) if direction == "inward" else (root, root + delta)
    t = math.exp(dim * (math.log(r0) - math.log(r1))) if r0 > 0 else 0.0
    return r1 * (t + u * (1.0 - t)) ** (1.0 / dim)


def atypical_latents(n: int, dim: int, delta: float, direction: str, generator: torch.Generator | None = None,
                     device=None) -> torch.Tensor:
    """z_neg = (uniform direction on the sphere) x (radius uniform in the annulus volume), (n, dim): from
    `generator` (`annulus_latents`)."""
    normals = torch.randn(n, dim, generator=generator, device=device)
    return annulus_latents(normals, torch.rand(n, generator=generator, device=device), delta, direction)


def annulus_latents(normals: torch.Tensor, u: torch.Tensor, delta: float, direction: str) -> torch.Tensor:
    """The directions of `normals` (n, d) times the annulus radii of the uniforms `u` (n,)."""
    directions = normals / normals.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return directions * annulus_radii(u, normals.shape[1], delta, direction).unsqueeze(1)


def simplex_mix(e: torch.Tensor, perms: torch.Tensor, alphas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Σ_i a_i e_i / Σ_i a_i with e_1 = e and e_i = e[perms[i - 2]] (perms: (k - 1, n), alphas: (n, k)).
    Returns the mixed latents and the normalised coefficients (rows sum to 1)."""
    weights = alphas / alphas.sum(1, keepdim=True).clamp_min(1e-12)
    mixed = weights[:, :1] * e
    for i in range(perms.shape[0]):
        mixed = mixed + weights[:, i + 1:i + 2] * e[perms[i]]
    return mixed, weights


@contextlib.contextmanager
def frozen_batch_norm(module: nn.Module):
    """Train-mode BatchNorm (batch statistics) without moving the running statistics: momentum 0 for the
    duration, and the batch counter put back."""
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.momentum, m.num_batches_tracked.clone() if m.num_batches_tracked is not None else None)
             for m in norms]
    for m in norms:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, (momentum, count) in zip(norms, saved, strict=True):
            m.momentum = momentum
            if count is not None:
                m.num_batches_tracked.copy_(count)


class AMAModule(DetectorModule):
    """E, G, the pair critic D, the losses of Eqs. 2-4 and the scores of Eqs. 5-6 (module docstring)."""

    discriminator_names = ("critic",)
    generator_names = ("encoder", "generator")

    def __init__(self, shape, latent_dim: int, *, arch: str, width: int, lipschitz: str, gp_weight: float,
                 critic_steps: int, mirrored: bool, simplex: bool, simplex_k: int, alpha_max: float, atypical: str,
                 delta: float, neg_fraction: float, neg_start_epoch: int, lambda_inter: float, lambda_reg: float,
                 lambda_neg: float, score: str, image_dropout: float, critic_reuse: bool, neg_in_critic: bool):
        super().__init__()
        self.latent_dim = int(latent_dim)
        self.encoder = blocks.make_encoder(shape, latent_dim, arch, width, sn=False)
        self.generator = blocks.make_generator(shape, latent_dim, arch, width)
        self.critic = blocks.make_xx_discriminator(shape, arch, width, sn="sn" in lipschitz,
                                                   image_dropout=image_dropout)
        self.gp_weight = float(gp_weight) if "gp" in lipschitz else 0.0
        # the gradient penalty differentiates the critic in its inputs (requires_grad_ on them), which vmap cannot
        # batch: with it, the runs of a pack train one after another (`training.pack`)
        self.packable = not self.gp_weight
        # the critic steps' random draws (the same numbers for every critic step of an engine step, see d_loss)
        self.critic_stream = RandomStream()
        self.critic_steps = int(critic_steps)
        self.mirrored = bool(mirrored)
        self.simplex_k = int(simplex_k) if simplex and int(simplex_k) > 1 else 0
        self.alpha_max = float(alpha_max)
        self.atypical = atypical
        self.delta = float(delta)
        self.neg_fraction = float(neg_fraction)
        self.neg_start_epoch = int(neg_start_epoch)
        self.lambda_inter, self.lambda_reg, self.lambda_neg = float(lambda_inter), float(lambda_reg), float(lambda_neg)
        self.score_name = score
        # the critic updates of one engine step see the same batch and the same E, G: decode it once
        self.critic_reuse = bool(critic_reuse)
        self.neg_in_critic = bool(neg_in_critic)
        self._critic_cache: tuple | None = None
        self._g_calls = 0
        self._critic_calls = 0  # critic updates since the last E/G update
        # training epochs done, set by the engine before each epoch (gates the negative term)
        self.epoch = 0
        # the Gaussian fitted to the training R-scores (Eq. 6), set by `AMA.after_fit`
        self.register_buffer("r_mean", torch.zeros(()))
        self.register_buffer("r_std", torch.ones(()))

    # ---------------------------------------------------------------------------------- helpers
    def n_negatives(self, n: int) -> int:
        if self.atypical == "off" or self.neg_fraction <= 0:
            return 0
        return max(1, int(round(self.neg_fraction * n)))

    def draw(self, x: torch.Tensor, stream: RandomStream, advance: bool = True) -> dict[str, torch.Tensor]:
        """All the randomness of one loss evaluation, from `stream`, drawn in a fixed order whatever the
        switches (so that an ablation switch changes only the term it names); `advance=False` leaves the
        stream where it was (the next draw gives the same numbers)."""
        start = None if advance else stream.state.clone()
        n = len(x)
        k = max(self.simplex_k, 3)
        perms = torch.argsort(stream.uniform((k - 1, n), x, advance=True).float(), dim=1)
        alphas = stream.uniform((n, k), x) * self.alpha_max
        n_neg = max(1, int(round(self.neg_fraction * n)))
        direction = self.atypical if self.atypical != "off" else "outward"
        z_neg = annulus_latents(stream.normal((n_neg, self.latent_dim), x), stream.uniform((n_neg,), x),
                                self.delta, direction)
        if start is not None:
            stream.state.copy_(start)
        return {"perms": perms[:max(self.simplex_k - 1, 0)], "alphas": alphas[:, :max(self.simplex_k, 1)],
                "z_neg": z_neg[:self.n_negatives(n)]}

    def pair(self, a: torch.Tensor, b: torch.Tensor):
        """D on the pair (a, b); without the mirrored loss the critic sees b alone, as D(b, b)."""
        return self.critic(a, b) if self.mirrored else self.critic(b, b)

    def decode(self, x: torch.Tensor, rnd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """E and G on one batch: the encodings e, the negatives x_n = G(z_neg) (no graph, G's running
        BatchNorm statistics untouched), x̂ = G(e), x̂_inter = G(simplex mix of e), x̂_n = G(E(x_n)). The
        encoder sees [x, x_n] and the generator [e, mix, E(x_n)] in one call each."""
        n, n_neg = len(x), len(rnd["z_neg"])
        if n_neg:
            with torch.no_grad(), frozen_batch_norm(self.generator):
                x_neg = self.generator(rnd["z_neg"])
            e_all = self.encoder(torch.cat([x, x_neg]))
        else:
            x_neg = x[:0]
            e_all = self.encoder(x)
        e = e_all[:n]
        latents = [e]
        if self.simplex_k:
            latents.append(simplex_mix(e, rnd["perms"], rnd["alphas"])[0])
        latents.append(e_all[n:])
        x_all = self.generator(torch.cat(latents))
        n_inter = n if self.simplex_k else 0
        return {"e": e, "x_neg": x_neg, "x_rec": x_all[:n], "x_inter": x_all[n:n + n_inter],
                "x_neg_rec": x_all[n + n_inter:]}

    def critic_terms(self, x: torch.Tensor, dec: dict[str, torch.Tensor], eg_grad: bool) -> dict[str, torch.Tensor]:
        """The batch means of D(x,x) - D(x,x̂) (`rec`), D(x,x) - D(x,x̂_inter) (`inter`) and
        D(x_n,x_n) - D(x_n,x̂_n) (`neg`), from two critic calls (real pairs, reconstructed pairs). With
        `eg_grad` (E/G phase) the real pairs, which do not depend on E or G, are evaluated without a graph."""
        n, x_neg, x_inter = len(x), dec["x_neg"], dec["x_inter"]
        n_inter, n_neg = len(x_inter), len(x_neg)
        reals = torch.cat([x, x_neg])
        with torch.no_grad() if eg_grad else contextlib.nullcontext():
            d_real = self.pair(reals, reals)[0]
        d_fake = self.pair(torch.cat([x, x[:n_inter], x_neg]), torch.cat([dec["x_rec"], x_inter, dec["x_neg_rec"]]))[0]
        zero = d_fake.new_zeros(())
        return {"rec": d_real[:n].mean() - d_fake[:n].mean(),
                "inter": d_real[:n].mean() - d_fake[n:n + n_inter].mean() if n_inter else zero,
                "neg": d_real[n:].mean() - d_fake[n + n_inter:].mean() if n_neg else zero}

    def forward_terms(self, x: torch.Tensor, rnd: dict[str, torch.Tensor], eg_grad: bool) -> dict:
        """Every term of Eq. 3-4 on one batch (`reg` = mean ||E(x)||_2); E and G without a graph unless
        `eg_grad`."""
        with contextlib.nullcontext() if eg_grad else torch.no_grad():
            dec = self.decode(x, rnd)
        terms = self.critic_terms(x, dec, eg_grad)
        terms["reg"] = dec["e"].flatten(1).norm(dim=1).mean()
        return {"terms": terms, "x_rec": dec["x_rec"]}

    def on_epoch_start(self, epoch: int, x_train: torch.Tensor) -> None:
        self.epoch = int(epoch)

    def neg_gate(self) -> float:
        return 1.0 if self.epoch >= self.neg_start_epoch else 0.0

    def gradient_penalty(self, x: torch.Tensor, x_rec: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        shape = (-1,) + (1,) * (x.dim() - 1)
        mix = (eps.reshape(shape) * x + (1.0 - eps.reshape(shape)) * x_rec).detach().requires_grad_(True)
        a = x.detach().clone().requires_grad_(True)
        logit = self.critic(a, mix)[0] if self.mirrored else self.critic(mix, mix)[0]
        grads = torch.autograd.grad(logit.sum(), [a, mix] if self.mirrored else [mix], create_graph=True)
        norm = torch.cat([g.flatten(1) for g in grads], dim=1).norm(dim=1)
        return ((norm - 1.0) ** 2).mean()

    # ----------------------------------------------------------------------------------- losses
    def d_loss(self, x):
        """The critic's loss. With `critic_reuse`, the critic updates of one engine step see one decoded batch:
        every one of them draws the same numbers (the critic stream is moved on by the E/G update) and only the
        first moves G's and E's BatchNorm statistics, so decoding again gives that batch; a run alone keeps it
        between the calls and decodes once, a pack (where nothing outlives a call) decodes it again."""
        cache = self._critic_cache
        if self.critic_reuse and cache is not None and cache[0] is x and cache[1] == self._g_calls:
            dec = cache[2]
        else:
            first = not (self.critic_reuse and self._critic_calls)
            with torch.no_grad(), contextlib.ExitStack() as frozen:
                if not first:
                    frozen.enter_context(frozen_batch_norm(self.encoder))
                    frozen.enter_context(frozen_batch_norm(self.generator))
                dec = self.decode(x, self.draw(x, self.critic_stream, advance=not self.critic_reuse))
            self._critic_cache = (x, self._g_calls, dec) if self.critic_reuse else None
        self._critic_calls += 1
        t = self.critic_terms(x, dec, eg_grad=False)
        loss = -(t["rec"] + self.lambda_inter * t["inter"])
        if self.neg_in_critic:
            loss = loss + self.lambda_neg * self.neg_gate() * t["neg"]
        stats = {k: v.detach() for k, v in t.items()}
        if self.gp_weight:
            gp = self.gradient_penalty(x, dec["x_rec"], self.noise.uniform((len(x),), x))
            loss = loss + self.gp_weight * gp
            stats["gp"] = gp.detach()
        return loss, stats

    def g_loss(self, x):
        self._critic_cache = None
        if self.critic_reuse and self._critic_calls:  # the critic steps' numbers are used: move the stream on
            self.draw(x, self.critic_stream)
        self._critic_calls = 0
        t = self.forward_terms(x, self.draw(x, self.noise), eg_grad=True)["terms"]
        loss = (t["rec"] + self.lambda_inter * t["inter"] + self.lambda_reg * t["reg"]
                - self.lambda_neg * self.neg_gate() * t["neg"])
        self._g_calls += 1
        return loss, {k: v.detach() for k, v in t.items()}

    # ----------------------------------------------------------------------------------- scores
    def reconstruct(self, x):
        return self.generator(self.encoder(x))

    def r_score(self, x):
        """R(x) = ||f(x, x) - f(x, G(E(x)))||_1 (Eq. 5)."""
        x_rec = self.reconstruct(x)
        return flat_norm(self.pair(x, x)[1] - self.pair(x, x_rec)[1], 1)

    def a_score(self, r: torch.Tensor) -> torch.Tensor:
        """-log A(x) = -log N(R; μ, σ²) (Eq. 6, sign flipped: higher = more anomalous)."""
        r = r.float()
        std = self.r_std.clamp_min(1e-12)
        return 0.5 * ((r - self.r_mean) / std) ** 2 + torch.log(std) + LOG_SQRT_2PI

    def score(self, x):
        r = self.r_score(x)
        return r if self.score_name == "r" else self.a_score(r)

    def val_loss(self, x):
        return self.r_score(x).mean()


@register("ama")
class AMA(DeepDetector):
    """AMA (module docstring). Parameters: `latent_dim` (None: 128 on images, the blocks' default on tabular
    rows), `arch`, `width` as ALAD; `lipschitz` (`sn` | `gp` | `sn+gp`), `gp_weight`, `critic_steps`;
    `mirrored`, `simplex` / `simplex_k`, `alpha_max`, `atypical` (`inward` | `outward` | `off`), `delta`,
    `neg_fraction`, `neg_start_epoch`; `lambda_inter`, `lambda_reg`, `lambda_neg`; `score` (`a` | `r`);
    `image_dropout`; `critic_reuse` (decode each batch once for its `critic_steps` critic updates);
    `neg_in_critic` (false: the negative term only in the E/G loss)."""

    def __init__(self, seed: int = 0, trainer: dict | None = None, checkpoint_dir=None, callbacks=(), *,
                 latent_dim: int | None = None, arch: str = "auto", width: int = 128, lipschitz: str = "sn",
                 gp_weight: float = 10.0, critic_steps: int = 5, mirrored: bool = True, simplex: bool = True,
                 simplex_k: int = 3, alpha_max: float = 0.5, atypical: str = "outward", delta: float = 2.0,
                 neg_fraction: float = 0.1, neg_start_epoch: int = 10, lambda_inter: float = 0.2,
                 lambda_reg: float = 1.0, lambda_neg: float = 5.0, score: str = "a", image_dropout: float = 0.0,
                 critic_reuse: bool = True, neg_in_critic: bool = True):
        super().__init__(seed, trainer, checkpoint_dir, callbacks)
        check_choice("lipschitz", lipschitz, LIPSCHITZ)
        check_choice("atypical", atypical, ATYPICAL)
        check_choice("score", score, SCORES)
        require(int(critic_steps) >= 1, "critic_steps", ">= 1", critic_steps)
        require(float(delta) > 0, "delta", "> 0", delta)
        require(0.0 <= float(neg_fraction) <= 1.0, "neg_fraction", "in [0, 1]", neg_fraction)
        require(int(simplex_k) >= 0, "simplex_k", ">= 0", simplex_k)
        require(float(alpha_max) > 0, "alpha_max", "> 0", alpha_max)

    def latent_dim(self, input_shape):
        if self.params["latent_dim"] is None and blocks.is_image(tuple(input_shape)):
            blocks.resolve_arch(tuple(input_shape), self.params["arch"])  # validates the shape
            return IMAGE_LATENT_DIM
        return super().latent_dim(input_shape)

    def build(self, input_shape):
        return AMAModule(input_shape, self.latent_dim(input_shape), **self.module_params("latent_dim"))

    def training_r_scores(self, x: np.ndarray) -> np.ndarray:
        return self.engine.score(x, method="r_score")

    def after_fit(self, x):
        """Fit the Gaussian of Eq. 6 to the R-scores of the training rows (buffers of the scoring network)."""
        r = self.training_r_scores(x)
        mean, std = float(r.mean()), float(r.std())
        for module in {id(m): m for m in (self.engine.module, self.scoring_module)}.values():
            module.r_mean.fill_(mean)
            module.r_std.fill_(std)
        self.train_r_stats = {"mean": mean, "std": std}

    def write_artifacts(self, folder) -> dict:
        """Recorded in the result row (run.py): the Gaussian of Eq. 6 fitted to the training R-scores."""
        stats = getattr(self, "train_r_stats", None) or {}
        return {"train_r_mean": stats.get("mean"), "train_r_std": stats.get("std")}
