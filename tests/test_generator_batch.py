"""`trainer.generator_batch`: the real rows of a step's generator-side update, the discriminators' own batch
(`same`) or a batch of a second permutation drawn each epoch (`reshuffled`, the `trainx_copy` of ALAD's and
EGBAD's reference code). The batches each update sees, resume and packs with the second permutation, the
config error, and the rows from before the setting (their folder and their reading in the tables)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from ganad_bench.config import check_run_config, compose_config, to_container
from ganad_bench.errors import ConfigError
from ganad_bench.models.kit.registry import create_detector
from ganad_bench.results import paper
from ganad_bench.results.store import config_hash
from ganad_bench.results.tables import flatten_config, with_added_defaults
from ganad_bench.training.engine import DetectorModule, Engine
from ganad_bench.training.pack import run_together
from ganad_bench.training.settings import TrainerConfig
from tests.checks import Interrupt, cpu_trainer, stop_after

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def rows(n: int = 10) -> torch.Tensor:
    return torch.arange(n, dtype=torch.float32)[:, None]


def test_reshuffled_batches_come_from_a_second_permutation_of_each_epoch():
    from ganad_bench.data.tensors import RandpermBatches

    batches = RandpermBatches(rows(), batch_size=4, seed=0, reshuffled=True)
    for _ in range(3):
        epoch = list(batches)
        assert [(len(x_d), len(x_g)) for x_d, x_g in epoch] == [(4, 4), (4, 4)]
        d_rows = torch.cat([x_d for x_d, _ in epoch])[:, 0].tolist()
        g_rows = torch.cat([x_g for _, x_g in epoch])[:, 0].tolist()
        assert len(set(d_rows)) == len(set(g_rows)) == 8  # each stream: no row twice in an epoch
        assert d_rows != g_rows
    # the discriminators' stream is the first permutation of each epoch, the generator's the second
    generator = torch.Generator().manual_seed(0)
    first, second = torch.randperm(10, generator=generator), torch.randperm(10, generator=generator)
    x_d, x_g = next(iter(RandpermBatches(rows(), batch_size=4, seed=0, reshuffled=True)))
    assert x_d[:, 0].tolist() == first[:4].tolist() and x_g[:, 0].tolist() == second[:4].tolist()
    # `same` draws one permutation an epoch, as every run before the setting
    x_d, x_g = next(iter(RandpermBatches(rows(), batch_size=4, seed=0)))
    assert x_g is x_d and x_d[:, 0].tolist() == first[:4].tolist()


class Recorder(DetectorModule):
    """Records the rows each update is given."""

    discriminator_names = ("d",)
    generator_names = ("g",)

    def __init__(self):
        super().__init__()
        self.d, self.g = nn.Linear(1, 1), nn.Linear(1, 1)
        self.seen = {"d": [], "g": []}

    def d_loss(self, x):
        self.seen["d"].append(x[:, 0].tolist())
        return self.d(x).pow(2).mean(), {}

    def g_loss(self, x):
        self.seen["g"].append(x[:, 0].tolist())
        return self.g(x).pow(2).mean(), {}

    def score(self, x):
        return self.g(x).squeeze(1)


@pytest.mark.parametrize("generator_batch", ["same", "reshuffled"])
def test_the_generator_side_update_gets_the_batch_the_setting_names(generator_batch):
    module = Recorder()
    config = TrainerConfig.from_dict({"device": "cpu", "epochs": 2, "batch_size": 4, "ema_decay": None,
                                      "progress": False, "generator_batch": generator_batch})
    Engine(module, config).fit(rows().numpy())
    d_seen, g_seen = module.seen["d"], module.seen["g"]
    assert len(d_seen) == len(g_seen) == 4  # 2 epochs x 2 batches, one update of each side a step
    if generator_batch == "same":
        assert g_seen == d_seen
    else:
        assert g_seen != d_seen
        for epoch in (g_seen[:2], g_seen[2:]):
            assert len({r for batch in epoch for r in batch}) == 8


def alad(generator_batch: str, **kw):
    trainer = cpu_trainer(epochs=3, batch_size=32, generator_batch=generator_batch)
    return create_detector("alad", seed=3, trainer=trainer, **kw)


def shifted(seed: int = 0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(160, 6)) * 0.5 + 0.5).astype(np.float32), rng.normal(size=(40, 6)).astype(np.float32)


def test_a_reshuffled_run_trains_differently_and_resumes_to_the_same_scores(tmp_path):
    x, test = shifted()
    reference = alad("reshuffled").fit(x).score_samples(test)
    assert not np.allclose(alad("same").fit(x).score_samples(test), reference)
    with pytest.raises(Interrupt):
        alad("reshuffled", checkpoint_dir=str(tmp_path), callbacks=[stop_after(1)]).fit(x)
    resumed = alad("reshuffled", checkpoint_dir=str(tmp_path))
    resumed.fit(x)
    assert resumed.resumed_from["epoch"] == 1
    np.testing.assert_array_equal(resumed.score_samples(test), reference)


def test_checkpoints_from_before_the_setting_resume_and_the_other_batch_starts_afresh(tmp_path, caplog):
    """At `same` the key stays out of the checkpoint fingerprint, as runs before it wrote theirs (an interrupted
    campaign pack resumes after the upgrade); a `reshuffled` run never resumes a `same` one's checkpoint."""
    import logging

    x, _ = shifted()
    with pytest.raises(Interrupt):
        alad("same", checkpoint_dir=str(tmp_path), callbacks=[stop_after(1)]).fit(x)
    state = torch.load(tmp_path / "last.pt", weights_only=False)
    assert "generator_batch" not in state["fingerprint"]["trainer"]
    with caplog.at_level(logging.WARNING, logger="ganad_bench"):
        other = alad("reshuffled", checkpoint_dir=str(tmp_path))
        other.fit(x)
    assert other.resumed_from is None and any("starting afresh" in r.getMessage() for r in caplog.records)
    assert "'generator_batch': 'reshuffled'" in torch.load(tmp_path / "last.pt", weights_only=False)[
        "fingerprint"]["trainer"]


def test_a_packed_reshuffled_run_scores_as_its_run_alone():
    datas = [shifted(k) for k in range(2)]
    alone = [alad("reshuffled").fit(x).score_samples(datas[0][1]) for x, _ in datas]
    # a pack may hold runs of both settings: each member takes its own pair of batches
    detectors = [alad("reshuffled"), alad("reshuffled"), alad("same")]
    members = [*datas, datas[0]]
    outcomes = run_together([lambda d=d, x=x: d.fit(x) for d, (x, _) in zip(detectors, members, strict=True)])
    assert outcomes == detectors, outcomes
    for det, expected in zip(detectors, alone, strict=False):
        got = det.score_samples(datas[0][1])
        np.testing.assert_allclose(got, expected, rtol=2e-3, atol=2e-3 * np.abs(expected).max())
    same = alad("same").fit(datas[0][0]).score_samples(datas[0][1])
    np.testing.assert_allclose(detectors[2].score_samples(datas[0][1]), same, rtol=2e-3,
                               atol=2e-3 * np.abs(same).max())


def test_an_unknown_value_is_a_one_line_error():
    with pytest.raises(ConfigError, match="^trainer.generator_batch must be one of same, reshuffled, got copy$"):
        TrainerConfig.from_dict({"generator_batch": "copy"})


def test_runs_from_before_the_setting_keep_their_folder_and_read_as_the_same_batch():
    before = {"model": {"name": "alad", "params": {}}, "trainer": {"epochs": 100}, "seed": 0}
    same = {**before, "trainer": {"epochs": 100, "generator_batch": "same"}}
    reshuffled = {**before, "trainer": {"epochs": 100, "generator_batch": "reshuffled"}}
    assert config_hash(before) == config_hash(same) != config_hash(reshuffled)
    assert with_added_defaults({"model.name": "alad", "trainer.epochs": "100"})["trainer.generator_batch"] == "same"
    assert "trainer.generator_batch" not in with_added_defaults({"model.name": "iforest"})


def test_the_reproduction_report_names_a_run_on_the_other_batch_as_off_the_paper_settings():
    with paper.hydra_initialised():
        config = check_run_config({**to_container(compose_config(["experiment=alad_table2", "model=alad",
                                                                  "dataset=arrhythmia"])), "seed": 0})
    settings = flatten_config(config)
    assert paper.settings_difference(settings, "alad", "arrhythmia", ["alad_table2"]) == ""
    other = {**settings, "trainer.generator_batch": "reshuffled"}
    assert paper.settings_difference(other, "alad", "arrhythmia", ["alad_table2"]) == \
        "trainer.generator_batch=reshuffled (paper settings: same)"
