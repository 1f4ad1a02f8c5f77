"""Whether a trained MEMGAN's BatchNorm running statistics hurt its scores: re-estimate them two ways on the
run's own normal training rows and print the normal-only validation loss (mean Eq. 8 score of the held-out
normal rows) and the test AUROC of each, beside the saved network's.

MEMGAN's encoder and generator see two kinds of batches in training: real encodings (x -> E -> P -> G, the
scoring path) and decoded memory samples (G(z) and E(G(z)) for the adversarial and mutual-information
terms). PyTorch's running statistics average over both, with momentum 0.1, but scoring only runs the first.
The rows: the saved network; the statistics averaged over the whole training set through the scoring path
only (what `model.params.batchnorm_stats=scoring_path`, the default, does after training); the same average
over training's mix of real and memory batches (which separates the mix from the short momentum). On a run
trained with `batchnorm_stats=training` the first row is PyTorch's statistics; on a default run the first
two rows agree. No test label is used to choose anything: the AUROC is printed afterwards.

    GANAD_DATA_DIR=../shared/data python scripts/memgan_batchnorm_check.py RUN_FOLDER [RUN_FOLDER ...]

A run folder is one MEMGAN run with a validation split (`protocol.val_fraction=0.1`), e.g.
`outputs/results/mnist/one_class/memgan/class4/seed0-<hash>`.
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from ganad_bench.models.kit.blocks import reestimate_batchnorm
from ganad_bench.models.kit.contract import Detector
from ganad_bench.run import prepare_data

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


def check(folder: Path) -> None:
    if not (folder / "detector.pt").is_file():  # rows copied by --copy-rows carry result.json only
        raise SystemExit(f"error: {folder} has no detector.pt: give the run's own folder, under its output_dir")
    result = json.loads((folder / "result.json").read_text())
    if result["model"] != "memgan":
        raise SystemExit(f"error: {folder} is a {result['model']} run: give a MEMGAN run's folder")
    data = prepare_data(result["config"])
    if data.x_val is None:
        raise SystemExit(f"error: {folder} has no validation rows: rerun it with protocol.val_fraction=0.1")
    detector = Detector.load(folder / "detector.pt")
    x_train, x_val, x_test = (detector.preprocess(x) for x in (data.x_train, data.x_val, data.x_test))
    labels = np.asarray(data.split.test_labels)
    saved = detector.scoring_module
    print(folder)
    for name, module in (("saved", saved),
                         ("scoring path", reestimated(saved, x_train, with_memory_batches=False)),
                         ("real + memory", reestimated(saved, x_train, with_memory_batches=True))):
        print(f"  {name:14s} validation loss {scores(module, x_val).mean():7.3f}   "
              f"test AUROC {100 * roc_auc_score(labels, scores(module, x_test)):6.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="MEMGAN run folders (result.json and detector.pt)")
    for folder in parser.parse_args().runs:
        check(folder)


if __name__ == "__main__":
    main()
