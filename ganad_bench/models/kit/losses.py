"""Losses and score distances shared by several method files (each cites where it uses them)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    """Binary cross-entropy of raw discriminator logits against a constant label (1 = real, 0 = fake):
    the logits form of the GAN value functions, as the authors' TensorFlow code computes them."""
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def flat_norm(d: torch.Tensor, p: int) -> torch.Tensor:
    """The L1 (`p=1`) or L2 (`p=2`) norm of each sample of `d` over all its features: (n, ...) -> (n,)."""
    d = d.flatten(1)
    return d.abs().sum(1) if p == 1 else d.pow(2).sum(1).sqrt()


def squared_error(x: torch.Tensor, x_rec: torch.Tensor) -> torch.Tensor:
    """||x - x_rec||_2^2 per sample."""
    return (x - x_rec).flatten(1).pow(2).sum(1)
