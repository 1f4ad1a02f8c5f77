"""Checks on a trained MEMGAN run, read from its own folder (result.json and detector.pt); no test label is
used to choose anything (a test AUROC is only printed).

    GANAD_DATA_DIR=../shared/data python scripts/memgan_check.py batchnorm RUN_FOLDER [RUN_FOLDER ...]
    GANAD_DATA_DIR=../shared/data python scripts/memgan_check.py memory RUN_FOLDER [RUN_FOLDER ...]

A run folder is one MEMGAN run's own folder, e.g. `outputs/results/mnist/one_class/memgan/class4/seed0-<hash>`.

`batchnorm`: whether the run's BatchNorm running statistics hurt its scores. MEMGAN's encoder and generator see
two kinds of batches in training: real encodings (x -> E -> P -> G, the scoring path) and decoded memory
samples (G(z) and E(G(z)) for the adversarial and mutual-information terms). PyTorch's running statistics
average over both, with momentum 0.1, but scoring only runs the first. Printed for each, the normal-only
validation loss (mean Eq. 8 score of the held-out normal rows: the run needs `protocol.val_fraction=0.1`) and the
test AUROC: the saved network; the statistics averaged over the whole training set through the scoring path
only (what `model.params.batchnorm_stats=scoring_path`, the default, does after training); the same average over
training's mix of real and memory batches (which separates the mix from the short momentum). On a run trained
with `batchnorm_stats=training` the first row is PyTorch's statistics; on a default run the first two agree.

`memory`: how far the memory M moved from where it started. M is trained with Adam like the networks
(Algorithm 1's M update), and Adam moves a parameter by about the learning rate a step at most: at MNIST's lr
1e-4 and 7 epochs (about 1,150 steps) an entry can move by about 0.1 in all, against the unit scale of an
N(0, 1) memory (`model.params.memory_init=normal`). Printed: the relative change ||M - M0|| / ||M0|| (M0 rebuilt
from the run's seed and settings, as its training drew it), the largest move of an entry, the mean row norm
before and after, and the addressing of the run's normal training rows, softmax(M E(x)) (Eq. 5): its mean
entropy against log n (uniform) and how many of the n units are some row's strongest.
"""

from __future__ import annotations

import argparse
import copy
import math
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from ganad_bench.errors import ConfigError, one_line_errors
from ganad_bench.models.kit.blocks import reestimate_batchnorm
from ganad_bench.models.kit.contract import Detector
from ganad_bench.results.store import finished
from ganad_bench.run import prepare_data
from ganad_bench.training.device import seed_everything

BATCH = 32  # the training batch of conf/model/memgan.yaml


def scores(module, x: np.ndarray, batch: int = 256) -> np.ndarray:
    module.eval()
    with torch.no_grad():
        return np.concatenate([module.score(torch.as_tensor(x[i:i + batch])).numpy() for i in range(0, len(x), batch)])


def reestimated(module, x: np.ndarray, with_memory_batches: bool):
    """A copy whose E and G BatchNorm statistics are the plain average over one pass of `x` in training
    batches, through the scoring path (`MEMGANModule.calibrate`) or, with `with_memory_batches`, through it and
    a batch of decoded memory samples after each batch, as in a training step."""
    module = copy.deepcopy(module)
    generator = torch.Generator().manual_seed(0)

    def real_and_memory(batch: torch.Tensor) -> None:
        module.reconstruct(batch)
        alpha = torch.softmax(torch.randn(len(batch), module.n_memory, generator=generator), dim=1)
        module.encoder(module.generator(module.combine(alpha)))

    forward = real_and_memory if with_memory_batches else module.reconstruct
    reestimate_batchnorm((module.encoder, module.generator), forward, torch.as_tensor(x), BATCH)
    return module


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


def load_run(folder: Path):
    """The run's saved detector and its prepared data (as its run split them)."""
    result = finished(folder)
    if result is None:  # none, unreadable, or a run that failed
        raise ConfigError(f"{folder} holds no finished run (no readable result.json with status ok): give a "
                          f"finished MEMGAN run's folder")
    if not (folder / "detector.pt").is_file():  # rows copied by --copy-rows carry result.json only
        raise ConfigError(f"{folder} has no detector.pt: give the run's own folder, under its output_dir")
    if result["model"] != "memgan":
        raise ConfigError(f"{folder} is a {result['model']} run: give a MEMGAN run's folder")
    return Detector.load(folder / "detector.pt"), prepare_data(result["config"])


def batchnorm_check(folder: Path) -> None:
    detector, data = load_run(folder)
    if data.x_val is None:
        raise ConfigError(f"{folder} has no validation rows: rerun it with protocol.val_fraction=0.1")
    x_train, x_val, x_test = (detector.preprocess(x) for x in (data.x_train, data.x_val, data.x_test))
    labels = np.asarray(data.split.test_labels)
    saved = detector.scoring_module
    print(folder)
    for name, module in (("saved", saved),
                         ("scoring path", reestimated(saved, x_train, with_memory_batches=False)),
                         ("real + memory", reestimated(saved, x_train, with_memory_batches=True))):
        print(f"  {name:14s} validation loss {scores(module, x_val).mean():7.3f}   "
              f"test AUROC {100 * roc_auc_score(labels, scores(module, x_test)):6.2f}")


def memory_check(folder: Path) -> dict[str, float]:
    detector, data = load_run(folder)
    change = memory_change(detector, detector.preprocess(data.x_train))
    print(f"{folder}\n  memory moved {100 * change['relative_change']:.2f}% (largest entry "
          f"{change['largest_entry_move']:.3f}; row norm {change['row_norm_start']:.2f} -> "
          f"{change['row_norm_end']:.2f}); training rows address it with entropy {change['address_entropy']:.2f} "
          f"(uniform {change['uniform_entropy']:.2f}), {change['units_used']} of {change['units']} units some "
          f"row's strongest")
    return change


CHECKS = {"batchnorm": batchnorm_check, "memory": memory_check}


@one_line_errors
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("check", choices=sorted(CHECKS), help="what to check (module docstring)")
    parser.add_argument("runs", nargs="+", type=Path, help="MEMGAN run folders (result.json and detector.pt)")
    args = parser.parse_args()
    for folder in args.runs:
        CHECKS[args.check](folder)


if __name__ == "__main__":
    main()
