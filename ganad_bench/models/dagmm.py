"""DAGMM — Deep Autoencoding Gaussian Mixture Model (Zong, Song, Min, Cheng, Lumezanu, Cho, Chen, ICLR 2018).

A baseline of ALAD Table II and RCGAN Table 1 (whose DAGMM rows are copied from Zong et al. Table 2).

Networks (Zong et al. Sec. 3.1-3.3, Fig. 2; layer sizes of Sec. 4.3, "DAGMM configuration"):

* compression network: a dense autoencoder with tanh hidden layers and linear code / output layers;
  z_c = encoder(x), x' = decoder(z_c);
* reconstruction features (Sec. 3.2, Eqs. 1-3): z_r = [relative Euclidean distance ||x - x'|| / ||x||,
  cosine similarity x.x' / (||x|| ||x'||)]; z = [z_c, z_r] (latent_dim + 2 numbers);
* estimation network (Sec. 3.3, Eq. 4): FC(len(z), 10, tanh) -> Dropout(0.5) -> FC(10, K) -> softmax,
  the memberships gamma_hat (n, K).

| `arch` (auto: by input width) | compression network | K |
|---|---|---|
| `kdd99` (121 inputs; the paper's KDDCUP has 120) | d-60-30-10-1 tanh, mirrored decoder | 4 |
| `thyroid` (6 inputs) | 6-12-4-1 tanh, mirrored decoder | 2 (see below) |
| `arrhythmia` (274 inputs) | 274-10-2 tanh, mirrored decoder | 2 |
| `mlp` (any other width, images flattened) | the KDDCUP layout d-60-30-10-1 (our choice) | 4 |

`latent_dim`, `hidden` and `n_components` override the table. Thyroid's K: our reading of Sec. 4.3 is
FC(3, 10, tanh)-Drop(0.5)-FC(10, 2, softmax) for Thyroid; set `model.params.n_components=4` for 4.

GMM (Sec. 3.3, Eqs. 5-6): from a batch of memberships gamma_hat, Eq. 5 gives phi_k = mean_i gamma_ik,
mu_k = sum_i gamma_ik z_i / sum_i gamma_ik and Sigma_k = sum_i gamma_ik (z_i - mu_k)(z_i - mu_k)^T /
sum_i gamma_ik; the sample energy (Eq. 6) is E(z) = -log sum_k phi_k N(z; mu_k, Sigma_k), computed with a
Cholesky factor and log-sum-exp (never the determinant or the inverse), in float64 (z has 3-4 numbers).

Loss (Sec. 3.4, Eq. 7): J = 1/n sum_i ||x_i - x_i'||^2 + lambda1 1/n sum_i E(z_i) + lambda2 sum_k sum_j 1/Sigma_k,jj,
lambda1 = 0.1, lambda2 = 0.005 (Sec. 4.3). The reconstruction term is the squared L2 norm per sample
(summed over features, averaged over the batch), as Eq. 7 writes it.

Singularity (Sec. 3.4 counters it with the penalty P(Sigma) only): every covariance is used as
Sigma_k + eps I with `cov_eps` = 1e-6 (our choice; ALAD's TensorFlow reimplementation, dagmm/gmm_utils.py,
adds about 1e-3), in the energy, in the penalty and in the stored buffers. With the norms guarded
(||x|| >= `norm_eps` = 1e-6 in the relative distance; cosine similarity with an eps) the energy stays
finite on constant features, constant rows and all-zero rows (tested).

Scoring (Sec. 3.3, the testing phase "with the learned GMM parameters"): the GMM parameters are fitted
once on the whole training set after training (`after_fit`: memberships and z of every training row in
eval mode, i.e. without dropout, then Eq. 5 over all rows, two passes) and stored as module buffers
(`phi`, `mu`, `sigma` = Sigma + eps I), so they are checkpointed, pickled and independent of the test
batch; the score is the sample energy E(z), higher = more anomalous.

Training (Sec. 4.3): Adam, lr 1e-4; KDDCUP batch 1024 and 200 epochs, Thyroid batch 1024 and 20,000
epochs, Arrhythmia batch 128 and 10,000 epochs (conf/dataset_model/*_dagmm.yaml). Adam's betas are not
given: (0.9, 0.999), Adam's defaults. No EMA of the weights (a reimplementation choice: the paper
scores with the trained network). The validation loss (early stopping, off by default) is J on the
validation rows with the GMM estimated from them. Initialisation: Xavier-uniform, zero bias (as the
TensorFlow reimplementation in ALAD's code, dagmm/kdd_utilities.py).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganad_bench.data.tensors import in_chunks
from ganad_bench.models.kit import blocks
from ganad_bench.models.kit.contract import check_choice, require
from ganad_bench.models.kit.deep import DeepDetector
from ganad_bench.models.kit.losses import squared_error
from ganad_bench.models.kit.registry import register
from ganad_bench.training.engine import DetectorModule
from ganad_bench.training.noise import Dropout

# the layouts of Sec. 4.3 picked by the input width under arch=auto (anything else, images too: mlp)
DAGMM_BY_WIDTH = {121: "kdd99", 6: "thyroid", 274: "arrhythmia"}


@dataclasses.dataclass(frozen=True)
class DAGMMSpec:
    hidden: tuple[int, ...]
    latent_dim: int
    n_components: int


# Zong et al. Sec. 4.3
DAGMM_SPECS = {
    "kdd99": DAGMMSpec(hidden=(60, 30, 10), latent_dim=1, n_components=4),
    "thyroid": DAGMMSpec(hidden=(12, 4), latent_dim=1, n_components=2),
    "arrhythmia": DAGMMSpec(hidden=(10,), latent_dim=2, n_components=2),
}
DAGMM_SPECS["mlp"] = DAGMM_SPECS["kdd99"]


def gmm_parameters(z: torch.Tensor, gamma: torch.Tensor, eps: float):
    """Eq. 5 from memberships gamma (n, K) and z (n, D): phi (K,), mu (K, D), Sigma + eps I (K, D, D)."""
    nk = gamma.sum(0).clamp_min(1e-12)
    phi = gamma.mean(0)
    mu = gamma.t() @ z / nk[:, None]
    diff = z[:, None, :] - mu[None]
    sigma = torch.einsum("nk,nkd,nke->kde", gamma, diff, diff) / nk[:, None, None]
    eye = torch.eye(z.shape[1], dtype=z.dtype, device=z.device)
    return phi, mu, sigma + eps * eye


def sample_energy(z: torch.Tensor, phi: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Eq. 6: E(z) = -log sum_k phi_k N(z; mu_k, Sigma_k), by Cholesky factors and log-sum-exp.

    `cholesky_ex` does not raise on a non-finite matrix: a NaN turns into a NaN loss, which the
    engine's guard reports as `TrainingDiverged`."""
    chol, _ = torch.linalg.cholesky_ex(sigma)
    diff = (z[:, None, :] - mu[None])[..., None]                      # (n, K, D, 1)
    y = torch.linalg.solve_triangular(chol[None], diff, upper=False)  # L^-1 (z - mu)
    maha = y.squeeze(-1).pow(2).sum(-1)                               # (n, K)
    logdet = 2.0 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
    log_gauss = -0.5 * (maha + logdet + z.shape[1] * math.log(2.0 * math.pi))
    return -torch.logsumexp(torch.log(phi.clamp_min(1e-30)) + log_gauss, dim=1)


class DAGMMModule(DetectorModule):
    """The compression and estimation networks, the loss of Eq. 7 and the GMM energy used as the score."""

    generator_names = ("encoder", "decoder", "estimator")

    def __init__(self, in_features: int, hidden: tuple[int, ...], latent_dim: int, n_components: int, *,
                 lambda_energy: float, lambda_cov: float, cov_eps: float, dropout: float, norm_eps: float = 1e-6,
                 estimator_hidden: int = 10):
        super().__init__()
        self.lambda_energy, self.lambda_cov = float(lambda_energy), float(lambda_cov)
        self.cov_eps, self.norm_eps = float(cov_eps), float(norm_eps)
        d, hidden = int(in_features), [int(h) for h in hidden]
        # d -> hidden (tanh) -> latent (linear); latent -> reversed hidden (tanh) -> d (linear)
        self.encoder = nn.Sequential(blocks.mlp([d, *hidden], nn.Tanh), nn.Linear(([d, *hidden])[-1], latent_dim))
        back = [latent_dim, *hidden[::-1]]
        self.decoder = nn.Sequential(blocks.mlp(back, nn.Tanh), nn.Linear(back[-1], d))
        self.estimator = nn.Sequential(nn.Linear(latent_dim + 2, estimator_hidden), nn.Tanh(), Dropout(dropout),
                                       nn.Linear(estimator_hidden, n_components), nn.Softmax(dim=1))
        blocks.init_weights(self, image=False)
        d = latent_dim + 2
        # the GMM of the whole training set (after_fit), used for scoring
        self.register_buffer("phi", torch.full((n_components,), 1.0 / n_components, dtype=torch.float64))
        self.register_buffer("mu", torch.zeros(n_components, d, dtype=torch.float64))
        self.register_buffer("sigma", torch.eye(d, dtype=torch.float64).repeat(n_components, 1, 1))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    @property
    def gmm_dtype(self) -> torch.dtype:
        return torch.float32 if self.phi.device.type == "mps" else torch.float64

    def forward(self, x: torch.Tensor):
        """x -> (x', z = [z_c, relative distance, cosine similarity], memberships gamma)."""
        flat = x.flatten(1)
        z_c = self.encoder(flat)
        rec = self.decoder(z_c)
        x_norm = torch.linalg.vector_norm(flat, dim=1).clamp_min(self.norm_eps)
        rel_dist = torch.linalg.vector_norm(flat - rec, dim=1) / x_norm
        cosine = F.cosine_similarity(flat, rec, dim=1, eps=1e-8)
        z = torch.cat([z_c, rel_dist[:, None], cosine[:, None]], dim=1)
        return rec, z, self.estimator(z)

    def losses(self, x: torch.Tensor):
        rec, z, gamma = self(x)
        dtype = self.gmm_dtype
        z64, gamma64 = z.to(dtype), gamma.to(dtype)
        phi, mu, sigma = gmm_parameters(z64, gamma64, self.cov_eps)
        energy = sample_energy(z64, phi, mu, sigma).mean()
        penalty = (1.0 / torch.diagonal(sigma, dim1=-2, dim2=-1)).sum()
        recon = squared_error(x.flatten(1), rec).mean()
        loss = recon + (self.lambda_energy * energy + self.lambda_cov * penalty).to(recon.dtype)
        return loss, {"recon": recon.detach(), "energy": energy.detach(), "penalty": penalty.detach()}

    def g_loss(self, x):
        return self.losses(x)

    def val_loss(self, x):
        return self.losses(x)[0]

    @torch.no_grad()
    def fit_gmm(self, x: torch.Tensor, chunk: int = 8192) -> None:
        """Eq. 5 over every row of `x` (eval mode), in chunks: sum gamma, sum gamma z, then the centred
        second moments; the result (with Sigma + eps I) goes into the buffers used by `score`."""
        was_training = self.training
        self.eval()
        dtype = self.gmm_dtype
        parts = [(z.to(dtype), gamma.to(dtype)) for z, gamma in (self(c)[1:] for c in in_chunks(x, chunk))]
        nk = sum(g.sum(0) for _, g in parts)
        n = sum(len(g) for _, g in parts)
        mu = sum(g.t() @ z for z, g in parts) / nk.clamp_min(1e-12)[:, None]
        cov = sum(torch.einsum("nk,nkd,nke->kde", g, z[:, None] - mu[None], z[:, None] - mu[None]) for z, g in parts)
        cov = cov / nk.clamp_min(1e-12)[:, None, None]
        eye = torch.eye(mu.shape[1], dtype=dtype, device=mu.device)
        self.phi.copy_(nk / n)
        self.mu.copy_(mu)
        self.sigma.copy_(cov + self.cov_eps * eye)
        self.fitted.fill_(True)
        self.train(was_training)

    def score(self, x):
        _, z, _ = self(x)
        return sample_energy(z.to(self.phi.dtype), self.phi, self.mu, self.sigma)


@register("dagmm")
class DAGMM(DeepDetector):
    """DAGMM (module docstring). Parameters: `arch` (auto | kdd99 | thyroid | arrhythmia | mlp), `latent_dim`,
    `hidden` (encoder widths), `n_components` (K) — null: from `arch` —, `lambda_energy` (lambda1 = 0.1),
    `lambda_cov` (lambda2 = 0.005), `cov_eps` (1e-6), `dropout` (0.5)."""

    def __init__(self, seed: int = 0, trainer: dict | None = None, checkpoint_dir=None, callbacks=(), *,
                 arch: str = "auto", latent_dim: int | None = None, hidden: list[int] | None = None,
                 n_components: int | None = None, lambda_energy: float = 0.1, lambda_cov: float = 0.005,
                 cov_eps: float = 1e-6, dropout: float = 0.5):
        super().__init__(seed, trainer, checkpoint_dir, callbacks)
        check_choice("arch", arch, blocks.arch_names(DAGMM_BY_WIDTH, conv=False))
        require(float(cov_eps) > 0, "cov_eps", "> 0", cov_eps)

    def arch_of(self, input_shape) -> str:
        """Sec. 4.3's layout for these inputs: by the width of tabular rows, `mlp` for flattened images."""
        width = int(np.prod(input_shape))
        arch = blocks.resolve_arch((width,), self.params["arch"], by_width=DAGMM_BY_WIDTH)
        return "mlp" if len(input_shape) != 1 and self.params["arch"] == "auto" else arch

    def spec(self, input_shape) -> DAGMMSpec:
        p = self.params
        base = DAGMM_SPECS[self.arch_of(tuple(input_shape))]
        return DAGMMSpec(hidden=tuple(p["hidden"]) if p["hidden"] is not None else base.hidden,
                         latent_dim=int(p["latent_dim"] or base.latent_dim),
                         n_components=int(p["n_components"] or base.n_components))

    def build(self, input_shape):
        spec = self.spec(input_shape)
        return DAGMMModule(int(np.prod(input_shape)), spec.hidden, spec.latent_dim, spec.n_components,
                           **self.module_params("arch", "latent_dim", "hidden", "n_components"))

    def after_fit(self, x: np.ndarray) -> None:
        module = self.scoring_module
        module.fit_gmm(torch.as_tensor(np.asarray(x, dtype=np.float32)).to(module.phi.device),
                       chunk=int(self.trainer.score_batch_size))
