"""scripts/memgan_batchnorm_check.py's re-estimation of MEMGAN's BatchNorm statistics: on a copy (the trained
network is left as it was), deterministic, and, along the scoring path only, the plain mean of what each
layer saw over the pass."""

from __future__ import annotations

import copy
import importlib.util

import numpy as np
import pytest
import torch

from ganad_bench.models.memgan import MEMGANModule
from tests.conftest import REPO


@pytest.fixture(scope="module")
def check_script():
    path = REPO / "scripts" / "memgan_batchnorm_check.py"
    spec = importlib.util.spec_from_file_location("memgan_batchnorm_check", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def first_batchnorm(module, script):
    return next(m for m in module.encoder.modules() if isinstance(m, script.BATCH_NORMS))


def test_reestimated_statistics_are_the_scoring_path_mean_on_a_copy(check_script):
    torch.manual_seed(0)
    module = MEMGANModule((1, 16, 16), 8, n_memory=5, arch="conv", width=8, spectral_norm=True, image_dropout=0.0,
                          projection_loss=True).eval()
    x = np.random.default_rng(0).uniform(-1, 1, (3 * check_script.BATCH + 5, 1, 16, 16)).astype(np.float32)
    before = first_batchnorm(module, check_script).running_mean.clone()
    probe = copy.deepcopy(module).train()  # what its first layer sees on the scoring path, batch by batch
    seen = []
    first_batchnorm(probe, check_script).register_forward_hook(
        lambda _m, inputs, _o: seen.append(inputs[0].mean(dim=(0, 2, 3))))
    with torch.no_grad():
        for start in range(0, 3 * check_script.BATCH, check_script.BATCH):  # the tail is dropped
            probe.reconstruct(torch.as_tensor(x[start:start + check_script.BATCH]))

    scoring = check_script.reestimated(module, x, with_memory_batches=False)
    scoring_mean = first_batchnorm(scoring, check_script).running_mean
    assert torch.equal(first_batchnorm(module, check_script).running_mean, before)  # the original is untouched
    assert torch.allclose(scoring_mean, torch.stack(seen).mean(0), atol=1e-5)
    again = check_script.reestimated(module, x, with_memory_batches=False)
    assert np.array_equal(check_script.scores(scoring, x), check_script.scores(again, x))
    mixed = check_script.reestimated(module, x, with_memory_batches=True)
    assert not torch.allclose(first_batchnorm(mixed, check_script).running_mean, scoring_mean)
