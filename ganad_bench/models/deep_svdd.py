"""Deep SVDD — Deep Support Vector Data Description (Ruff, Vandermeulen, Goernitz, Deecke, Siddiqui, Binder,
Mueller, Kloft, ICML 2018); the DSVDD rows / columns of MEMGAN Tables 1-2 and RCGAN Table 1.

Objectives (Ruff Sec. 3.1-3.2), phi = the network, c = the hypersphere centre, d(x) = ||phi(x) - c||^2:
* `one_class` (Eq. 4): min mean_i d(x_i) (+ weight decay, Adam's L2 term, lambda = 1e-6 as Sec. 4.1);
  score s(x) = d(x) (Eq. 5).
* `soft_boundary` (Eq. 3): min R^2 + 1/nu mean_i max(0, d(x_i) - R^2); score d(x) - R^2. As the reference
  code, R is not learned by gradient: after `warmup_epochs` epochs on the fixed R = 0, R is set at the
  start of every epoch to the (1 - nu)-quantile of ||phi(x) - c|| over all training rows (network in
  eval mode), and once more on the final network (`after_fit`); the reference PyTorch code updates it
  per mini-batch, Ruff's paper by line search every k epochs. `nu` = 0.1 by default.

The centre c (Sec. 3.3 "Proposition 1" and Sec. 4.1): the mean of phi over the training rows from an
initial forward pass of the pretrained network (eval mode: BatchNorm running statistics), with the
reference code's eps rule: coordinates with |c_j| < 0.1 are pushed to +-0.1 (keeping their sign, 0 ->
+0.1) so that no coordinate sits near the origin, where a bias-free network can reach it trivially. c is
a registered buffer, never a parameter, so no optimiser sees it and it never changes after the pass.

Against hypersphere collapse (Sec. 3.3, Propositions 2-3): every Linear / Conv layer has no bias and
BatchNorm has no affine parameters; unbounded activations (LeakyReLU). Networks (`kit.lenet`):
MNIST-type LeNet (conv 8 5x5 -> BN -> LeakyReLU -> maxpool 2, conv 4 5x5 -> BN -> LeakyReLU -> maxpool 2,
dense 32) for grey images, the CIFAR-10 variant (32 / 64 / 128 filters -> dense 128) for colour images,
and, our choice for tabular rows, the bias-free MLP of the authors' Deep SAD code (hidden (128, 64) ->
32 for d >= 100, (32, 16) -> 8 otherwise, -> 4 for d <= 6, as its arrhythmia / thyroid networks).

Pretraining (Sec. 4.1): the encoder is first trained as the encoder of a deep convolutional autoencoder
(the mirrored decoder of `kit.lenet`, MSE; `pretrain_epochs`, 0 = none) and its weights start
Deep SVDD. Both stages use Adam with batch 200, lr 1e-4 and weight decay 1e-6 and 150 epochs with the
learning rate x 0.1 after epoch 50 (the PyTorch reference code's MNIST settings; `pretrain_lr`,
`pretrain_weight_decay`, `pretrain_lr_milestones` where the stages should differ). On MNIST and CIFAR-10
the pretraining follows the authors' Theano code, which produced the published image numbers
(conf/dataset_model/mnist_deep_svdd.yaml: 150 epochs with no drop, every training image;
cifar10_deep_svdd.yaml: the DCAE's 250 + 100, on four fifths of the class's images as the code's default
validation share leaves them). Each stage is its own
`Engine` with its own checkpoint folder (`<checkpoint_dir>/pretrain`, `<checkpoint_dir>/svdd`), so an
interrupted run resumes inside whichever stage it was in.

Preprocessing (Sec. 4.1): images are globally contrast normalised with the l1 norm and min-max scaled
with the training (normal-class) images' extremes (`contrast_norm`, `kit.deep`); the reference
code hard-codes per-class extremes computed the same way on each class's training images.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch import nn

from ganad_bench.data.tensors import in_chunks, to_device
from ganad_bench.models.kit.contract import check_choice, require
from ganad_bench.models.kit.deep import DeepDetector
from ganad_bench.models.kit.lenet import INITS, AutoEncoderModule, autoencoder_module
from ganad_bench.models.kit.registry import register
from ganad_bench.training.engine import DetectorModule, Engine

OBJECTIVES = ("one_class", "soft_boundary")
CENTER_EPS = 0.1


class SVDDModule(DetectorModule):
    """phi (`encoder`), the centre `c` and the radius `radius` (buffers), and the two objectives."""

    generator_names = ("encoder",)

    def __init__(self, encoder: nn.Module, rep_dim: int, *, objective: str, nu: float, warmup_epochs: int):
        super().__init__()
        self.encoder = encoder
        self.objective, self.nu, self.warmup_epochs = objective, float(nu), int(warmup_epochs)
        self.register_buffer("c", torch.zeros(rep_dim))
        self.register_buffer("radius", torch.zeros(()))

    def distances(self, x: torch.Tensor) -> torch.Tensor:
        return (self.encoder(x) - self.c).pow(2).sum(1)

    @torch.no_grad()
    def set_center(self, x: torch.Tensor, chunk: int = 8192, eps: float = CENTER_EPS) -> None:
        """c = mean phi(x) over the rows (eval mode), |c_j| < eps pushed to +-eps (module docstring)."""
        was_training = self.training
        self.eval()
        total = sum(self.encoder(part).sum(0) for part in in_chunks(x, chunk))
        c = total / len(x)
        small = c.abs() < eps
        c = torch.where(small & (c < 0), torch.full_like(c, -eps), c)
        c = torch.where(small & (c >= 0), torch.full_like(c, eps), c)
        self.c.copy_(c)
        self.train(was_training)

    @torch.no_grad()
    def set_radius(self, x: torch.Tensor, chunk: int = 8192) -> None:
        """R = the (1 - nu)-quantile of ||phi(x) - c|| over the rows (eval mode)."""
        was_training = self.training
        self.eval()
        dist = torch.cat([self.distances(part) for part in in_chunks(x, chunk)])
        self.radius.copy_(torch.quantile(dist.sqrt(), 1.0 - self.nu))
        self.train(was_training)

    def on_epoch_start(self, epoch: int, x_train: torch.Tensor) -> None:
        """Soft boundary: R is reset from all training rows at the start of every epoch after the warm-up."""
        if self.objective == "soft_boundary" and epoch >= self.warmup_epochs:
            self.set_radius(x_train)

    def g_loss(self, x):
        dist = self.distances(x)
        if self.objective == "soft_boundary":
            r2 = self.radius.pow(2)
            loss = r2 + torch.relu(dist - r2).mean() / self.nu
        else:
            loss = dist.mean()
        return loss, {"dist": dist.mean().detach()}

    def score(self, x):
        dist = self.distances(x)
        return dist - self.radius.pow(2) if self.objective == "soft_boundary" else dist


@register("deep_svdd")
class DeepSVDD(DeepDetector):
    """Deep SVDD (module docstring). Parameters: `objective` (one_class | soft_boundary), `nu`,
    `warmup_epochs` (soft boundary: epochs before R is first set), `rep_dim` (null: MNIST 32,
    CIFAR-10 128, tabular by width), `hidden` (tabular hidden sizes, null: by width), `pretrain_epochs`
    (autoencoder pretraining; 0: none), `pretrain_lr` / `pretrain_weight_decay` / `pretrain_lr_milestones`
    (null: the trainer's), `contrast_norm` (l1 | l2 | null; images only), `init` (pytorch | theano: the
    autoencoder's initialisation, `kit.lenet`; images only)."""

    def __init__(self, seed: int = 0, trainer: dict | None = None, checkpoint_dir=None, callbacks=(), *,
                 objective: str = "one_class", nu: float = 0.1, warmup_epochs: int = 10,
                 rep_dim: int | None = None, hidden=None, pretrain_epochs: int = 150,
                 pretrain_lr: float | None = None, pretrain_weight_decay: float | None = None,
                 pretrain_lr_milestones=None, contrast_norm: str | None = "l1", init: str = "pytorch"):
        super().__init__(seed, trainer, checkpoint_dir, callbacks)
        check_choice("objective", objective, OBJECTIVES)
        check_choice("init", init, INITS)
        require(0.0 < float(nu) <= 1.0, "nu", "in (0, 1]", nu)
        self.center_init: np.ndarray | None = None

    def build_autoencoder(self, input_shape) -> AutoEncoderModule:
        p = self.params
        return autoencoder_module(input_shape, p["rep_dim"], p["hidden"], bias=False,
                                  sigmoid=self.contrast_normalised(input_shape), init=p["init"], seed=self.seed)

    def build(self, input_shape, encoder: nn.Module | None = None) -> SVDDModule:
        p = self.params
        encoder = encoder if encoder is not None else self.build_autoencoder(input_shape).encoder
        rep_dim = encoder.rep_dim if hasattr(encoder, "rep_dim") else encoder[-1].out_features
        return SVDDModule(encoder, rep_dim, objective=p["objective"], nu=float(p["nu"]),
                          warmup_epochs=int(p["warmup_epochs"]))

    def pretrain_config(self):
        p = self.params
        changes = {"epochs": int(p["pretrain_epochs"])}
        for key, name in (("lr", "pretrain_lr"), ("weight_decay", "pretrain_weight_decay"),
                          ("lr_milestones", "pretrain_lr_milestones")):
            if p[name] is not None:
                changes[key] = tuple(int(m) for m in p[name]) if key == "lr_milestones" else p[name]
        return dataclasses.replace(self.trainer, **changes)

    def train(self, x, x_val) -> Engine:
        """Stage 1: the autoencoder (`pretrain`); the centre from the pretrained encoder; stage 2: `svdd`."""
        autoencoder = self.build_autoencoder(self.input_shape)
        if int(self.params["pretrain_epochs"]) > 0:
            self.pretrain_engine = self.train_stage("pretrain", autoencoder, self.pretrain_config(), x, x_val)
            self.pretrain_history = self.pretrain_engine.history
        else:  # no pretraining stage to start it: the encoder as initialised
            autoencoder.initialise_from_data(x)
        module = self.build(self.input_shape, encoder=autoencoder.encoder)
        device = next(autoencoder.parameters()).device
        module.to(device).set_center(to_device(x, device), self.trainer.score_batch_size)
        self.center_init = module.c.detach().cpu().numpy().copy()
        return self.train_stage("svdd", module, self.trainer, x, x_val)

    def after_fit(self, x):
        if self.params["objective"] == "soft_boundary":
            self.scoring_module.set_radius(to_device(x, self.scoring_module.c.device), self.trainer.score_batch_size)
