"""Checkpoints inside an epoch: a run (or a pack) killed between two epoch ends goes on from the batch of its
last checkpoint and ends exactly as if it had never stopped.

The engine's clock is replaced by one that the test moves by one second a training step, so that with
`checkpoint_seconds=2.5` the checkpoints fall on known batches; a kill is an exception raised by the Nth
step, as a killed process stops between two steps."""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch

from ganad_bench import create_detector
from ganad_bench.training import engine as engine_module
from ganad_bench.training import pack
from ganad_bench.training.engine import CHECKPOINT_FILE, Engine
from tests.checks import Interrupt, cpu_trainer
from tests.test_packs import TEST_ROWS, TINY, fit_packed, member_data

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def clock(monkeypatch):
    """The engine's clock, in seconds: one more per training step (of a run alone or of a pack)."""
    now = [0.0]
    monkeypatch.setattr(engine_module, "time", types.SimpleNamespace(monotonic=lambda: now[0]))
    return now


def ticking(monkeypatch, clock, owner, method: str, kill_at: int | None = None, seconds: float = 1.0) -> None:
    """`owner.method` (a training step) moves the clock by `seconds` and raises `Interrupt` on call `kill_at`."""
    original, calls = getattr(owner, method), [0]

    def step(*args, **kwargs):
        calls[0] += 1
        if calls[0] == kill_at:
            raise Interrupt(f"killed before step {calls[0]}")
        result = original(*args, **kwargs)
        clock[0] += seconds
        return result

    monkeypatch.setattr(owner, method, step)


# Deep SVDD with the soft boundary, its radius set by its epoch hook from the second epoch on, no pretraining
PARAMS = {**TINY, "deep_svdd": {"objective": "soft_boundary", "warmup_epochs": 1, "pretrain_epochs": 0}}


def detector(name: str, seed: int, folder=None, **trainer):
    """Two epochs of 4-5 batches (`member_data`, batch 16), a checkpoint once 2.5 s have passed."""
    settings = cpu_trainer(**{"epochs": 2, "batch_size": 16, "checkpoint_seconds": 2.5, **trainer})
    return create_detector(name, seed=seed, trainer=settings, checkpoint_dir=str(folder) if folder else None,
                           **PARAMS.get(name, {}))


def saved(folder) -> dict:
    """The run's checkpoint (in a stage's own subfolder for Deep SVDD)."""
    (path,) = folder.rglob(CHECKPOINT_FILE)
    return torch.load(path, weights_only=True)


@pytest.mark.parametrize("name", ["alad", "rcgan", "memgan", "deep_svdd", "ama"])
def test_a_run_killed_inside_an_epoch_resumes_from_its_batch_to_the_same_scores(name, tmp_path, clock, monkeypatch):
    """ALAD draws a second permutation an epoch (`generator_batch: reshuffled`), MEMGAN has BatchNorm and three
    phases: every stream goes on exactly. Deep SVDD's epoch hook sets its radius from the weights of the
    epoch's start, AMA's its epoch counter: resumed inside epoch 2, the radius stays the checkpoint's and the
    counter is set again. Member 0's 4 batches an epoch, a second each: checkpoints after batch 3
    of epoch 1 and after batch 3 of epoch 2 (the end of epoch 1 is a second after the last); the kill comes
    before step 8, the last of epoch 2."""
    reference = detector(name, 0)
    reference.fit(*member_data(0))
    expected = reference.score_samples(TEST_ROWS)

    ticking(monkeypatch, clock, Engine, "train_step", kill_at=8)
    with pytest.raises(Interrupt):
        detector(name, 0, tmp_path).fit(*member_data(0))
    state = saved(tmp_path)
    assert state["epoch"] == 1 and state["within_epoch"]["batches_done"] == 3 and state["step"] == 7

    monkeypatch.undo()  # the real clock: no more checkpoints inside an epoch of milliseconds
    resumed = detector(name, 0, tmp_path)
    resumed.fit(*member_data(0))
    assert resumed.resumed_from["epoch"] == 1 and resumed.resumed_from["batches_done"] == 3
    assert [h["epoch"] for h in resumed.history] == [1, 2]
    untimed = [[{k: v for k, v in record.items() if k not in ("samples_per_s", "seconds")} for record in det.history]
               for det in (resumed, reference)]
    assert untimed[0] == untimed[1]  # the resumed epoch's mean losses count the batches before the kill too
    np.testing.assert_array_equal(resumed.score_samples(TEST_ROWS), expected)
    assert saved(tmp_path)["within_epoch"] is None  # the last checkpoint is the last epoch's end


def recorded_checkpoints(monkeypatch) -> list:
    """(epochs done, batches done inside the next epoch or None) of every checkpoint written from now on."""
    written = []
    original = Engine.save_checkpoint

    def record(self, batches, within_epoch=None):
        written.append((self.epoch, None if within_epoch is None else within_epoch["batches_done"]))
        return original(self, batches, within_epoch)

    monkeypatch.setattr(Engine, "save_checkpoint", record)
    return written


def test_an_epoch_shorter_than_checkpoint_seconds_is_checkpointed_at_its_end_only(tmp_path, clock, monkeypatch):
    """Epochs of 4 s with checkpoint_seconds=5: no checkpoint inside one (it never runs 5 s), and at the ends
    every 5 s as before."""
    ticking(monkeypatch, clock, Engine, "train_step")
    written = recorded_checkpoints(monkeypatch)
    detector("rcgan", 0, tmp_path, epochs=4, checkpoint_seconds=5).fit(*member_data(0))
    assert written == [(2, None), (4, None)]


def test_no_checkpoint_inside_an_epoch_without_checkpoint_seconds(tmp_path, clock, monkeypatch):
    """checkpoint_seconds=0 means a checkpoint at every epoch end, none inside one."""
    ticking(monkeypatch, clock, Engine, "train_step")
    written = recorded_checkpoints(monkeypatch)
    detector("rcgan", 0, tmp_path, checkpoint_seconds=0, epochs=3).fit(*member_data(0))
    assert written == [(1, None), (2, None), (3, None)]


def test_a_pack_killed_inside_an_epoch_resumes_bit_for_bit(tmp_path, clock, monkeypatch):
    """Members of 4 and 5 batches, a second a pack step: the pack's checkpoints after its step 3 of each epoch;
    killed before step 9 (epoch 2's 4th). The members resume from batch 3 and end as the uninterrupted
    pack's members, to the bit."""
    datas = [member_data(0), member_data(1)]
    whole = [detector("rcgan", k) for k in range(2)]
    assert fit_packed(whole, datas) == whole
    expected = [det.score_samples(TEST_ROWS) for det in whole]

    ticking(monkeypatch, clock, pack.StackedMembers, "step", kill_at=9)
    killed = [detector("rcgan", k, tmp_path / f"m{k}") for k in range(2)]
    assert all(isinstance(out, Interrupt) for out in fit_packed(killed, datas))
    for k in range(2):
        state = saved(tmp_path / f"m{k}")
        assert state["epoch"] == 1 and state["within_epoch"]["batches_done"] == 3

    monkeypatch.undo()
    again = [detector("rcgan", k, tmp_path / f"m{k}") for k in range(2)]
    assert fit_packed(again, datas) == again
    for det, scores in zip(again, expected, strict=True):
        assert det.resumed_from["batches_done"] == 3
        np.testing.assert_array_equal(det.score_samples(TEST_ROWS), scores)


def test_members_resumed_at_different_batches_train_together_and_each_ends_as_alone(tmp_path, clock,
                                                                                    monkeypatch):
    """Member 0 killed alone after 3 batches of epoch 2, member 1 after 1: packed, member 1 steps alone until
    member 0's batch, then both, then alone again (its fifth); each ends as its run alone, uninterrupted
    (float rounding apart, as any member of a pack)."""
    datas = [member_data(0), member_data(1)]
    alone = []
    for k in range(2):
        det = detector("rcgan", k)
        det.fit(*datas[k])
        alone.append(det.score_samples(TEST_ROWS))
    # member 0 (4 batches an epoch, 1 s a step): its last checkpoint before the kill after batch 3 of epoch 2;
    # member 1 (5 batches, 3 s a step): a checkpoint after every step, the last after batch 1 of epoch 2
    for k, kill_at, seconds in ((0, 8, 1.0), (1, 7, 3.0)):
        with monkeypatch.context() as patch:
            ticking(patch, clock, Engine, "train_step", kill_at=kill_at, seconds=seconds)
            with pytest.raises(Interrupt):
                detector("rcgan", k, tmp_path / f"m{k}").fit(*datas[k])
    starts = [saved(tmp_path / f"m{k}")["within_epoch"]["batches_done"] for k in range(2)]
    assert starts == [3, 1]
    monkeypatch.undo()
    again = [detector("rcgan", k, tmp_path / f"m{k}") for k in range(2)]
    assert fit_packed(again, datas) == again
    for det, scores in zip(again, alone, strict=True):
        assert [h["epoch"] for h in det.history] == [1, 2]
        np.testing.assert_allclose(det.score_samples(TEST_ROWS), scores, rtol=1e-4, atol=1e-5)


def test_a_checkpoint_whose_position_lies_outside_its_epoch_is_set_aside(tmp_path, clock, monkeypatch):
    """A damaged position (more batches done than the epoch has) is not trained from: the file is set aside,
    the run stops with a line that says to run again, and the next run starts over."""
    ticking(monkeypatch, clock, Engine, "train_step", kill_at=8)
    with pytest.raises(Interrupt):
        detector("rcgan", 0, tmp_path).fit(*member_data(0))
    state = saved(tmp_path)
    state["within_epoch"]["batches_done"] = 99
    torch.save(state, tmp_path / CHECKPOINT_FILE)
    monkeypatch.undo()
    with pytest.raises(RuntimeError, match="could not be restored and was set aside: run again"):
        detector("rcgan", 0, tmp_path).fit(*member_data(0))
    assert not (tmp_path / CHECKPOINT_FILE).exists() and list(tmp_path.glob(f"{CHECKPOINT_FILE}.bad-*"))
    again = detector("rcgan", 0, tmp_path)
    again.fit(*member_data(0))
    assert again.resumed_from is None


@pytest.mark.slow  # three processes, a minute or more on a shared 2-core machine
def test_the_command_killed_inside_an_epoch_goes_on_to_the_scores_of_a_run_never_stopped(tmp_path):
    """The real entry point, SIGKILLed (no handler runs) once a checkpoint inside an epoch is on disk: the same
    command again goes on from that batch, and its scores are those of the run never stopped, to the bit
    (the checkpoint cadence is not part of a run's identity, so both are the same run)."""
    import json
    import os
    import subprocess
    import sys
    import time

    entry = [sys.executable, "-c", "from ganad_bench.cli import main; main()"]
    # RCGAN on the embedded Thyroid, batches of 4: an epoch of about 460 steps, seconds long
    common = ["trainer.epochs=1", "trainer.batch_size=4", "trainer.progress=false", "plots=false",
              "paths.download=false"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GANAD_CACHE_DIR": str(tmp_path / "cache")}

    def command(out: str, *extra: str) -> list[str]:
        return [*entry, *common, f"paths.output_dir={tmp_path / out}", *extra]

    def scores(out: str) -> np.ndarray:
        (path,) = (tmp_path / out).rglob("scores.npz")
        with np.load(path) as saved:
            return saved["scores"]

    whole = subprocess.run(command("whole"), env=env, capture_output=True, text=True, timeout=300)
    assert whole.returncode == 0, whole.stderr
    killed = command("killed", "trainer.checkpoint_seconds=0.3")
    proc = subprocess.Popen(killed, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, inside = time.monotonic() + 240, None
    while inside is None and proc.poll() is None and time.monotonic() < deadline:
        for path in (tmp_path / "killed").rglob(CHECKPOINT_FILE):
            inside = torch.load(path, weights_only=True)["within_epoch"]  # written whole, or not yet there
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    assert inside is not None, "the run ended (or timed out) before a checkpoint inside an epoch was written"
    again = subprocess.run(killed, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    (row_path,) = (tmp_path / "killed").rglob("result.json")
    assert json.loads(row_path.read_text())["resumed_from"]["batches_done"] > 0
    np.testing.assert_array_equal(scores("killed"), scores("whole"))
