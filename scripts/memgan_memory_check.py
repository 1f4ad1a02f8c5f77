"""How far a trained MEMGAN's memory M moved from where it started, and how its training rows address it.

MEMGAN's memory is trained with Adam like the networks (Algorithm 1's M update), and Adam moves a parameter by
about the learning rate a step at most: at MNIST's lr 1e-4 and 7 epochs (about 1,150 steps) an entry can move
by about 0.1 in all, against the unit scale of an N(0, 1) memory (`model.params.memory_init=normal`). This
prints, per run: the relative change ||M - M0|| / ||M0|| (M0 rebuilt from the run's seed and settings, as its
training drew it), the largest move of an entry, the mean row norm before and after, and the addressing of the
run's normal training rows, softmax(M E(x)) (Eq. 5): its mean entropy against log n (uniform) and how many of
the n units are some row's strongest. No test label is read.

    GANAD_DATA_DIR=../shared/data python scripts/memgan_memory_check.py RUN_FOLDER [RUN_FOLDER ...]

A run folder is one MEMGAN run's own folder (result.json and detector.pt), e.g.
`outputs/results/mnist/one_class/memgan/class8/seed0-<hash>`.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import torch

from ganad_bench.models.kit.contract import Detector
from ganad_bench.run import prepare_data
from ganad_bench.training.device import seed_everything


def initial_memory(detector) -> torch.Tensor:
    """M as the run's training drew it: the seed set, then the module built (`DeepDetector.fit_model`)."""
    seed_everything(detector.seed)
    return detector.build(detector.input_shape).memory.detach().float()


def memory_change(detector, x_train: np.ndarray, batch: int = 256) -> dict[str, float]:
    """The memory's movement from its start and the addressing of `x_train` (preprocessed rows)."""
    module = detector.scoring_module.eval()
    start, memory = initial_memory(detector), module.memory.detach().float().cpu()
    with torch.no_grad():
        weights = torch.cat([module.address(module.encoder(torch.as_tensor(x_train[i:i + batch]))).float().cpu()
                             for i in range(0, len(x_train), batch)])
    entropy = -(weights * weights.clamp_min(1e-12).log()).sum(1).mean()
    return {"relative_change": float((memory - start).norm() / start.norm()),
            "largest_entry_move": float((memory - start).abs().max()),
            "row_norm_start": float(start.norm(dim=1).mean()), "row_norm_end": float(memory.norm(dim=1).mean()),
            "address_entropy": float(entropy), "uniform_entropy": math.log(len(memory)),
            "units_used": int(weights.argmax(1).unique().numel()), "units": len(memory)}


def check(folder: Path) -> dict[str, float]:
    if not (folder / "detector.pt").is_file():  # rows copied by --copy-rows carry result.json only
        raise SystemExit(f"error: {folder} has no detector.pt: give the run's own folder, under its output_dir")
    result = json.loads((folder / "result.json").read_text())
    if result["model"] != "memgan":
        raise SystemExit(f"error: {folder} is a {result['model']} run: give a MEMGAN run's folder")
    detector = Detector.load(folder / "detector.pt")
    change = memory_change(detector, detector.preprocess(prepare_data(result["config"]).x_train))
    print(f"{folder}\n  memory moved {100 * change['relative_change']:.2f}% (largest entry "
          f"{change['largest_entry_move']:.3f}; row norm {change['row_norm_start']:.2f} -> "
          f"{change['row_norm_end']:.2f}); training rows address it with entropy {change['address_entropy']:.2f} "
          f"(uniform {change['uniform_entropy']:.2f}), {change['units_used']} of {change['units']} units some "
          f"row's strongest")
    return change


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="MEMGAN run folders (result.json and detector.pt)")
    for folder in parser.parse_args().runs:
        check(folder)


if __name__ == "__main__":
    main()
