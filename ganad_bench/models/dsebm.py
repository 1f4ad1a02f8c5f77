"""DSEBM — Deep Structured Energy Based Models (Zhai, Cheng, Lu, Zhang, ICML 2016), as DSEBM-e and DSEBM-r.

A baseline of ALAD (Sec. V-B; Table II, Table III) and RCGAN Table 1. One implementation, registered twice:
`dsebm_e` scores with the energy, `dsebm_r` with the reconstruction error (the two decision criteria of
Zhai et al., energy score and reconstruction error; ALAD Sec. V-B). Both train identically (same seed ->
same weights; tested).

Energy (Zhai et al., the fully connected and the convolutional DSEBMs): a deterministic network
h(x) whose last layer is a softplus, plus a quadratic term,

    E(x) = 0.5 ||x - b'||^2 - sum_j h_j(x),   h(x) = softplus(W_L h_{L-1}(x) + b_L), h_0(x) = x,

i.e. the Gaussian-Bernoulli RBM free energy 0.5||x - b'||^2 - sum_j softplus(W_j^T x + b_j) with x
replaced by the deep features h_{L-1}(x) (every hidden layer softplus). b' is a learned vector of the
input's shape.

Networks (ALAD appendix A1 and ALAD's code, dsebm/*_utilities.py, whose encoder half we use):

| input | h(x) |
|---|---|
| 121 features (KDD99) | dense 128 -> dense 512, softplus (ALAD code, dsebm/kdd_utilities.py) |
| 274 features (Arrhythmia) | dense 10 -> dense 2, softplus (ALAD code, dsebm/arrhythmia_utilities.py) |
| any other width (Thyroid, Musk) | the KDD99 layout, dense 128 -> dense 512 (our choice, as `models.blocks`) |
| images (C, H, W) | conv 3x3 stride 2, 64 filters, "same", softplus -> 2x2 max-pool -> dense 128, softplus |

The image network is ALAD appendix A1 ("the architecture suggested in [23]", Zong et al.): one 3x3
stride-2 convolution with 64 filters and "same" padding, one (2x2, "same") max-pooling layer and one
dense layer of 128 units; softplus activations as Zhai et al. and ALAD's code (dsebm/cifar10_utilities.py).

ALAD's code sums a mirrored, tied-weight decoder's softplus outputs instead of h(x); we keep the energy
form of Zhai et al. on the same layer sizes. Initialisation: Xavier-uniform,
zero bias, b' = 0.

Training (Zhai et al., learning by (denoising) score matching; ALAD code dsebm/run.py): x~ = x + sigma eps,
eps ~ N(0, I), sigma = `noise_std` = 1 (ALAD's code); the reconstruction is one gradient step on the
energy, x_rec(x~) = x~ - dE/dx(x~), and the loss is the batch mean of ||x - x_rec(x~)||^2 (summed over
features; ALAD's code averages over features for tabular data, a constant factor). Adam lr 1e-4,
betas (0.9, 0.999) (TensorFlow's defaults, as ALAD's code), batch 100 on KDD99 and 26 on Arrhythmia
(ALAD's code); 1e-4 / 100 elsewhere; images lr 3e-3, batch 32 (ALAD's code, dsebm/cifar10_utilities.py).
Epochs are not in the papers or the code's defaults: conf/dataset_model/*_dsebm_*.yaml. No EMA.

Scores (in eval mode; DSEBM-r needs dE/dx, so it enables gradients w.r.t. the input only):
* `energy` (DSEBM-e): E(x);
* `reconstruction` (DSEBM-r): ||x - x_rec(x)||^2 = ||dE/dx(x)||^2 (ALAD's code uses the norm, the same
  ranking).
The validation loss (early stopping, off by default) is the denoising loss on the validation rows.
"""

from __future__ import annotations

import torch
from torch import nn

from ganad_bench.models.kit import blocks
from ganad_bench.models.kit.contract import check_choice, require
from ganad_bench.models.kit.deep import DeepDetector
from ganad_bench.models.kit.losses import squared_error
from ganad_bench.models.kit.registry import register
from ganad_bench.training.engine import DetectorModule

SCORES = ("energy", "reconstruction")
TABULAR_HIDDEN = {"kdd99": (128, 512), "arrhythmia": (10, 2), "mlp": (128, 512)}


def make_energy_features(shape, arch: str, hidden: tuple[int, ...] | None = None, filters: int = 64,
                         units: int = 128) -> nn.Module:
    """h(x) (module docstring): softplus layers; the energy subtracts the sum of the last one."""
    arch = blocks.resolve_arch(tuple(shape), arch, square_images=False)
    if arch == "conv":
        c, h, w = (int(s) for s in shape)
        side_h, side_w = (h + 1) // 2, (w + 1) // 2              # 3x3 stride-2 "same" convolution
        side_h, side_w = (side_h + 1) // 2, (side_w + 1) // 2    # 2x2 "same" max-pooling
        net = nn.Sequential(nn.Conv2d(c, filters, 3, stride=2, padding=1), nn.Softplus(),
                            nn.MaxPool2d(2, stride=2, ceil_mode=True), nn.Flatten(),
                            nn.Linear(filters * side_h * side_w, units), nn.Softplus())
    else:
        sizes = [int(shape[0]), *(hidden or TABULAR_HIDDEN[arch])]
        net = blocks.mlp(sizes, nn.Softplus)
    for m in net.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    return net


class DSEBMModule(DetectorModule):
    """h(x) and b', the energy, the denoising score matching loss and the two scores."""

    generator_names = ("features", "b_prime")

    def __init__(self, shape, *, arch: str, hidden: tuple[int, ...] | None, noise_std: float, score: str):
        super().__init__()
        self.features = make_energy_features(shape, arch, hidden)
        self.b_prime = nn.Parameter(torch.zeros(*shape))
        self.noise_std = float(noise_std)
        self.score_name = score

    def energy(self, x: torch.Tensor) -> torch.Tensor:
        """E(x) = 0.5 ||x - b'||^2 - sum_j h_j(x), one value per row."""
        return 0.5 * (x - self.b_prime).flatten(1).pow(2).sum(1) - self.features(x).flatten(1).sum(1)

    def reconstruct(self, x: torch.Tensor, create_graph: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """x_rec = x - dE/dx (one gradient step on the energy) and E(x); works under `no_grad` too. dE/dx comes from
        `torch.func.grad`, which composes with `vmap` (a pack: `training.pack`) and stays differentiable with
        respect to the weights, so the score-matching loss backpropagates through it; `create_graph=False`
        detaches it."""
        def total(rows):
            energy = self.energy(rows)
            return energy.sum(), energy

        x = x.detach()
        grad, energy = torch.func.grad(total, has_aux=True)(x)
        if not create_graph:
            grad, energy = grad.detach(), energy.detach()
        return x - grad, energy

    def denoising_loss(self, x: torch.Tensor, create_graph: bool) -> torch.Tensor:
        noisy = x + self.noise_std * self.noise.normal(x.shape, x)
        rec, _ = self.reconstruct(noisy, create_graph=create_graph)
        return squared_error(x, rec).mean()

    def g_loss(self, x):
        loss = self.denoising_loss(x, create_graph=True)
        return loss, {"score_matching": loss.detach()}

    def val_loss(self, x):
        return self.denoising_loss(x, create_graph=False).detach()

    def score(self, x):
        if self.score_name == "energy":
            return self.energy(x)
        rec, _ = self.reconstruct(x)
        return squared_error(x, rec).detach()


class DSEBM(DeepDetector):
    """DSEBM (module docstring). Parameters: `arch` (auto | kdd99 | arrhythmia | mlp | conv), `hidden` (tabular
    layer widths; null: by arch), `noise_std` (sigma of the denoising noise, 1.0). The score is fixed by the
    registered name (`dsebm_e`: energy, `dsebm_r`: reconstruction)."""

    score_name = "energy"

    def __init__(self, seed: int = 0, trainer: dict | None = None, checkpoint_dir=None, callbacks=(), *,
                 arch: str = "auto", hidden: list[int] | None = None, noise_std: float = 1.0):
        super().__init__(seed, trainer, checkpoint_dir, callbacks)
        check_choice("arch", arch, blocks.arch_names())
        require(float(noise_std) > 0, "noise_std", "> 0", noise_std)

    def build(self, input_shape):
        p = self.params
        hidden = None if p["hidden"] is None else tuple(int(h) for h in p["hidden"])
        return DSEBMModule(tuple(input_shape), arch=p["arch"], hidden=hidden, noise_std=float(p["noise_std"]),
                           score=self.score_name)


@register("dsebm_e")
class DSEBMEnergy(DSEBM):
    __doc__ = DSEBM.__doc__
    score_name = "energy"


@register("dsebm_r")
class DSEBMReconstruction(DSEBM):
    __doc__ = DSEBM.__doc__
    score_name = "reconstruction"

