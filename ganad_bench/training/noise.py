"""Random numbers a network draws while it trains (latent codes, noise, dropout masks), as module state.

Why not `torch.randn`: a pack (`training.pack`) trains K runs as one stacked model under `torch.func.vmap`,
and each member must draw exactly the numbers its run draws alone, whatever K is and whichever members it
shares the pack with. The global generator cannot give that (vmap draws one (K, ...) tensor from it, so a
member's numbers depend on K). Here every stream is a counter-based generator: a buffer [key, counter]
on the module, and the i-th number of a stream is a hash of (key, counter + i). The buffer is stacked
with the rest of a member's state, so under vmap each member hashes its own key and advances its own
counter; it is saved in checkpoints with the weights, so a resumed run continues the same stream.

The hash is lowbias32 (Chris Wellons' integer hash, 32 bits, a dozen integer operations per number) of the
counter XOR a key mixed from the stream's key; 24 bits make a uniform in (0, 1), two uniforms a normal
by the Box-Muller transform.

`seed_streams(module, seed, salt)` gives every `RandomStream` of a module a key from the run's seed, the
stage (`salt`) and the stream's position in the module, and resets its counter: called by the engine on
the networks it trains.
"""

from __future__ import annotations

import hashlib
import math

import torch
from torch import nn

MASK32 = 0xFFFFFFFF


def mix32(x: torch.Tensor) -> torch.Tensor:
    """lowbias32 on int64 tensors holding 32-bit values (products wrap; only their low 32 bits are kept).
    After the first step every operation is in place on the new tensor: a dropout mask hashes a number per
    unit, and a fresh int64 tensor per operation made the hashing cost 4x as much on the CPU (allocation and
    first touch of the memory, not arithmetic)."""
    x = x ^ (x >> 16)
    x *= 0x7FEB352D
    x &= MASK32
    x ^= x >> 15
    x *= 0x846CA68B
    x &= MASK32
    x ^= x >> 16
    return x


class RandomStream(nn.Module):
    """One counter-based random stream (module docstring); `state` = [key, counter] (int64)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("state", torch.zeros(2, dtype=torch.int64))

    def bits(self, n: int, advance: bool = True) -> torch.Tensor:
        """n 32-bit hashes (int64), advancing the counter by n: the counter's low 32 bits, XOR-ed with a key
        mixed from the stream's key and the counter's high bits, through one lowbias32 (one hash per number;
        the numbers of a stream stay distinct for 2^32 draws per key block)."""
        base = self.state[1]
        key = mix32(mix32(self.state[0] & MASK32) ^ (base >> 32))
        counters = base + torch.arange(n, device=base.device)  # a new tensor (batched under vmap), then in place
        counters ^= key
        counters &= MASK32
        bits = mix32(counters)
        if advance:
            self.state[1] += n
        return bits

    def uniform(self, shape, like: torch.Tensor, advance: bool = True) -> torch.Tensor:
        """Uniform numbers in (0, 1) of `shape`, with `like`'s dtype (float32 arithmetic); `advance=False`
        leaves the counter where it was, so the next draw gives the same numbers again."""
        shape = tuple(int(s) for s in shape)
        bits = self.bits(math.prod(shape), advance)
        return (((bits >> 8).float() + 0.5) * 2.0**-24).reshape(shape).to(like.dtype)

    def normal(self, shape, like: torch.Tensor, advance: bool = True) -> torch.Tensor:
        """Standard normal numbers of `shape` (Box-Muller on pairs of uniforms; `advance` as `uniform`)."""
        shape = tuple(int(s) for s in shape)
        n = math.prod(shape)
        u = self.uniform((2, (n + 1) // 2), like.float(), advance)
        radius = torch.sqrt(-2.0 * torch.log(u[0]))
        angle = (2.0 * math.pi) * u[1]
        z = torch.cat([radius * torch.cos(angle), radius * torch.sin(angle)])[:n]
        return z.reshape(shape).to(like.dtype)

    def permutation(self, n: int, like: torch.Tensor) -> torch.Tensor:
        """A random permutation of 0..n-1 (the order of n uniforms)."""
        return torch.argsort(self.uniform((n,), like.float()))


class Dropout(nn.Module):
    """`nn.Dropout` drawing its masks from its own `RandomStream` (module docstring): inverted dropout, the
    kept units scaled by 1 / (1 - p) in training, the identity in eval mode."""

    def __init__(self, p: float):
        super().__init__()
        self.p = float(p)
        self.stream = RandomStream()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        shape = tuple(x.shape)
        keep = self.stream.bits(math.prod(shape)).reshape(shape) >= int(self.p * 2.0**32)  # P(keep) = 1 - p
        return (x * keep).div_(1.0 - self.p)  # the product is new: divided in place (its backward needs x, keep)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def stream_key(seed: int, salt: str, index: int) -> int:
    digest = hashlib.blake2b(f"{int(seed)}/{salt}/{index}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "little")


@torch.no_grad()
def seed_streams(module: nn.Module, seed: int, salt: str = "") -> None:
    """Key every `RandomStream` of `module` from (seed, salt, its position) and rewind its counter."""
    for index, stream in enumerate(m for m in module.modules() if isinstance(m, RandomStream)):
        stream.state.copy_(torch.tensor([stream_key(seed, salt, index), 0], dtype=torch.int64))
