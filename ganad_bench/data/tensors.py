"""Device-resident tensors and random-permutation batching (DESIGN.md, "Speed rules").

A whole (preprocessed) dataset is copied to the device ONCE; a training epoch slices a fresh random
permutation into batches, and scoring slices the data in order into large chunks. No DataLoader, no
worker processes, no per-batch host -> device copy: the pattern of KellerJordan/cifar10-airbench's
`CifarLoader`. Shared by tabular rows (N, D) and images (N, C, H, W).

    x = to_device(x_train, device)                          # float32 tensor on the device
    for (batch,) in RandpermBatches(x, batch_size=64, seed=seed):   # one epoch
        ...
    scores = torch.cat([model(chunk) for chunk in in_chunks(x_test, 8192)])
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from ganad_bench.errors import ConfigError


def to_device(x: np.ndarray | torch.Tensor, device: torch.device | str = "cpu",
              dtype: torch.dtype | None = torch.float32) -> torch.Tensor:
    """`x` as one contiguous tensor on `device` (`dtype=None` keeps the array's own dtype, e.g. uint8
    labels or images to be scaled on the device)."""
    tensor = torch.as_tensor(np.ascontiguousarray(x)) if isinstance(x, np.ndarray) else x
    if dtype is not None:
        tensor = tensor.to(dtype)
    device = torch.device(device)
    if device.type == "cuda" and tensor.device.type == "cpu":
        tensor = tensor.pin_memory()  # one asynchronous copy instead of a staged one
    return tensor.to(device, non_blocking=True).contiguous()


class RandpermBatches:
    """Iterate over batches of rows of same-length device tensors, one epoch per `iter()`.

    Each epoch draws a new permutation of the rows from a generator seeded once with `seed`, so a run
    is reproducible and different epochs see different batches. With `drop_last` (the default, as the
    GAN training loops want equal batch sizes for BatchNorm) the last incomplete batch is skipped; the
    permutation is drawn on the tensors' device, so batching never syncs with the host."""

    def __init__(self, *tensors: torch.Tensor, batch_size: int, seed: int = 0, drop_last: bool = True):
        if not tensors:
            raise ValueError("RandpermBatches needs at least one tensor")
        n = len(tensors[0])
        if any(len(t) != n for t in tensors):
            raise ValueError(f"tensors of different lengths: {[len(t) for t in tensors]}")
        if any(t.device != tensors[0].device for t in tensors):
            raise ValueError("all tensors must live on the same device")
        if int(batch_size) < 1:
            raise ConfigError(f"batch size must be a positive integer, got {batch_size!r}")
        self.tensors = tensors
        self.batch_size = int(batch_size)
        self.drop_last = drop_last
        self.device = tensors[0].device
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(int(seed))

    @property
    def n(self) -> int:
        return len(self.tensors[0])

    def __len__(self) -> int:
        """Batches per epoch."""
        return self.n // self.batch_size if self.drop_last else -(-self.n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        order = torch.randperm(self.n, device=self.device, generator=self.generator)
        for i in range(len(self)):
            rows = order[i * self.batch_size:(i + 1) * self.batch_size]
            yield tuple(t[rows] for t in self.tensors)


def in_chunks(x: torch.Tensor, chunk_size: int) -> Iterator[torch.Tensor]:
    """Consecutive slices (views, no copies) of at most `chunk_size` rows, in order: for scoring."""
    chunk_size = max(1, int(chunk_size))
    for start in range(0, len(x), chunk_size):
        yield x[start:start + chunk_size]


def subset(x: torch.Tensor, rows: np.ndarray | torch.Tensor) -> torch.Tensor:
    """The rows of a device tensor selected by a boolean mask or an index array (e.g. a protocol's
    index set, or the normal rows of a labelled tensor)."""
    rows = torch.as_tensor(rows)
    if rows.dtype != torch.bool:
        rows = rows.long()
    return x[rows.to(x.device)]
