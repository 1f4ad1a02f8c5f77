"""Device-resident tensors and random-permutation batching (DESIGN.md, "Speed rules").

A whole (preprocessed) dataset is copied to the device ONCE; a training epoch slices a fresh random
permutation into batches, and scoring slices the data in order into large chunks. No DataLoader, no
worker processes, no per-batch host -> device copy: the pattern of KellerJordan/cifar10-airbench's
`CifarLoader`. Shared by tabular rows (N, D) and images (N, C, H, W).

    x = to_device(x_train, device)                          # float32 tensor on the device
    for x_d, x_g in RandpermBatches(x, batch_size=64, seed=seed):   # one epoch
        ...                                                 # x_g is x_d unless reshuffled=True
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
    """Iterate over equal batches of rows of a device tensor, one epoch per `iter()`.

    Each epoch draws a new permutation of the rows from a generator seeded once with `seed`, so a run
    is reproducible and different epochs see different batches. The last incomplete batch is skipped (the
    GAN training loops want equal batch sizes for BatchNorm, as ALAD's code); the permutation is drawn on
    the tensor's device, so batching never syncs with the host.

    A step gets a pair `(x_d, x_g)`: the real rows of the discriminators' update and of the generator-side
    update. They are one batch (`x_g is x_d`) unless `reshuffled`, where each epoch draws a second
    permutation right after the first and `x_g` is its batch: the training loops of ALAD's, EGBAD's and
    AnoGAN's reference code feed the generator / encoder step from a second, separately shuffled copy of
    the training rows (`trainx_copy`)."""

    def __init__(self, x: torch.Tensor, batch_size: int, seed: int = 0, reshuffled: bool = False):
        if int(batch_size) < 1:
            raise ConfigError(f"batch size must be a positive integer, got {batch_size!r}")
        self.x = x
        self.batch_size = int(batch_size)
        self.reshuffled = bool(reshuffled)
        self.generator = torch.Generator(device=x.device)
        self.generator.manual_seed(int(seed))

    def reseed(self, seed: int, epoch: int) -> None:
        """Seed the generator from (seed, epoch): the batch orders of a run resumed at `epoch` on another kind of
        device than the one that wrote its checkpoint (`training.engine.set_rng_states`), reproducible there."""
        self.generator.manual_seed(int(np.random.SeedSequence([int(seed), int(epoch)]).generate_state(1)[0]))

    def __len__(self) -> int:
        """Batches per epoch."""
        return len(self.x) // self.batch_size

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self.iterate()

    def iterate(self, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The epoch's batches from batch `start` on: the permutations are drawn whole, as for a whole epoch,
        so an epoch resumed at `start` from the generator's state at the epoch's start (a checkpoint inside
        the epoch) gets exactly the batches the uninterrupted epoch had left."""
        order = self._permutation()
        second = self._permutation() if self.reshuffled else order
        for i in range(int(start), len(self)):
            rows = slice(i * self.batch_size, (i + 1) * self.batch_size)
            x_d = self.x[order[rows]]
            yield x_d, (self.x[second[rows]] if self.reshuffled else x_d)

    def _permutation(self) -> torch.Tensor:
        return torch.randperm(len(self.x), device=self.x.device, generator=self.generator)


def in_chunks(x: torch.Tensor, chunk_size: int) -> Iterator[torch.Tensor]:
    """Consecutive slices (views, no copies) of at most `chunk_size` rows, in order: for scoring."""
    chunk_size = max(1, int(chunk_size))
    for start in range(0, len(x), chunk_size):
        yield x[start:start + chunk_size]
