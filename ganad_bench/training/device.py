"""Device selection and seeding shared by every model."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

from ganad_bench.config import seed_host_generators
from ganad_bench.errors import ConfigError
from ganad_bench.training.settings import as_given, check_device_name


def resolve_device(name: str = "auto", setting: str = "trainer.device") -> torch.device:
    """`auto` picks CUDA, then Apple MPS, then the CPU; an explicit device must exist. `setting` is how the
    user chose it, as the error names it (`trainer.device`, or a command's `--device`)."""
    name = str(name or "auto")
    base, index = check_device_name(name, setting)
    chosen = as_given(setting, name)
    if base == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    fix = f"use {as_given(setting, 'auto')} or cpu"
    if base == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{chosen} but no CUDA device is visible: {fix}")
    if base == "cuda" and index and int(index) >= torch.cuda.device_count():
        count = torch.cuda.device_count()
        raise ConfigError(f"{chosen} but this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}: choose "
                          f"one of them, or {as_given(setting, 'auto')}")
    if base == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError(f"{chosen} but Apple MPS is not available: {fix}")
    return torch.device(name)


@contextmanager
def float32_precision(device: torch.device, tf32: bool) -> Iterator[None]:
    """On CUDA, float32 convolutions and matrix products in TF32 (`tf32`) or in full float32 within the block,
    the previous modes restored after it; nothing elsewhere. PyTorch's defaults differ by operation (cuDNN
    convolutions in TF32, 10-bit mantissa: ~1e-3 relative rounding; matrix products in float32), so without
    this an image network on an Ampere-or-newer GPU mixes the two. A pack's members share the setting (they
    differ only in seed and class)."""
    if device.type != "cuda":
        yield
        return
    if hasattr(torch.backends.cudnn, "conv"):  # torch >= 2.9 (mixing it with the older flags is an error)
        flags, values = (torch.backends.cudnn.conv, torch.backends.cuda.matmul), ("tf32" if tf32 else "ieee",) * 2
        name = "fp32_precision"
    else:
        flags, values, name = (torch.backends.cudnn, torch.backends.cuda.matmul), (tf32, tf32), "allow_tf32"
    saved = [getattr(flag, name) for flag in flags]
    for flag, value in zip(flags, values, strict=True):
        setattr(flag, name, value)
    try:
        yield
    finally:
        for flag, value in zip(flags, saved, strict=True):
            setattr(flag, name, value)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) from the run seed."""
    seed_host_generators(seed)
    torch.manual_seed(seed)


def save_global_rng():
    """The global generators' states (torch's CPU one, NumPy's, Python's), for `restore_global_rng`."""
    return torch.get_rng_state(), np.random.get_state(), random.getstate()


def restore_global_rng(state) -> None:
    torch.set_rng_state(state[0])
    np.random.set_state(state[1])
    random.setstate(state[2])


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA; nothing elsewhere): what a timing must do before reading a clock."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory so far: CUDA `max_memory_allocated`, elsewhere the process's maximum resident set size."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
