"""Packs (`training.pack`): K runs trained as one stacked model give each run's own result.

Every deep model, on tiny problems: a member of a pack scores as the same run trained alone (same random
streams, float rounding apart), with members of unequal data sizes (masked steps); a member poisoned with
NaN is recorded as diverged and leaves the others unchanged; an interrupted pack resumes from its members'
checkpoints (which a run alone resumes too); early stopping is per member; models that cannot be stacked
say so and train one by one; the pack launcher groups a multirun's jobs and writes the same rows as the
basic launcher."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from ganad_bench import create_detector
from ganad_bench.errors import TrainingDiverged
from ganad_bench.models.kit.catalog import deep_detectors
from ganad_bench.training.pack import run_together
from tests.checks import Interrupt, cpu_trainer, stop_after

DEEP = deep_detectors()
# tiny settings that keep each model's step cheap (and AnoGAN's latent search short)
TINY = {"anogan": {"search_steps": 5}, "memgan": {"n_memory": 4}}


def member_data(k: int, d: int = 8, n: int = 64):
    """Member k's rows: a different shift and size per member, so members have unequal epochs."""
    rng = np.random.default_rng(100 + k)
    x = (rng.normal(size=(n + 16 * k, d)) * 0.5 + 0.2 * k).astype(np.float32)
    return x, (rng.normal(size=(24, d)) * 0.5 + 0.2 * k).astype(np.float32)


TEST_ROWS = np.random.default_rng(7).normal(size=(40, 8)).astype(np.float32)


def make(name: str, seed: int, lipschitz: str | None = None, **trainer):
    """One epoch (4-7 steps a member) unless `trainer` says otherwise: equal within rounding, as chaotic
    training magnifies rounding differences with every step."""
    settings = {"epochs": 1, "batch_size": 16, **trainer}
    params = {**TINY.get(name, {}), **({"lipschitz": lipschitz} if lipschitz else {})}
    return create_detector(name, seed=seed, trainer=cpu_trainer(**settings), **params)


def fit_alone(name: str, seeds, **trainer) -> list[np.ndarray]:
    scores = []
    for k, seed in enumerate(seeds):
        det = make(name, seed, **trainer)
        det.fit(*member_data(k))
        scores.append(det.score_samples(TEST_ROWS))
    return scores


def fit_packed(detectors, datas) -> list:
    return run_together([lambda d=d, data=data: d.fit(*data) for d, data in zip(detectors, datas, strict=True)])


@pytest.mark.parametrize("name", DEEP)
def test_a_member_of_a_pack_scores_as_its_run_alone(name, one_torch_thread):
    seeds = [0, 1, 2]
    alone = fit_alone(name, seeds)
    detectors = [make(name, seed) for seed in seeds]
    outcomes = fit_packed(detectors, [member_data(k) for k in range(3)])
    assert all(out is det for out, det in zip(outcomes, detectors, strict=True)), outcomes
    for det, expected in zip(detectors, alone, strict=True):
        got = det.score_samples(TEST_ROWS)
        # AnoGAN's score is a latent search of its own, which magnifies rounding differences of the weights
        tolerance = 2e-2 if name == "anogan" else 2e-3
        np.testing.assert_allclose(got, expected, rtol=tolerance, atol=tolerance * np.abs(expected).max())
    assert not np.allclose(alone[0], alone[1])  # the members are different runs


@pytest.mark.parametrize("name", ["alad", "dcae", "dagmm"])
def test_a_stack_kept_across_epochs_gives_each_run_its_own_result(name, one_torch_thread, monkeypatch):
    """Between epochs that read nothing of the members (no validation, checkpoint or callback), the pack keeps
    its stacked state instead of writing the members back and stacking them again: one stacking for four
    epochs, with a learning-rate step after epoch 2, EMA, masked tails; each member still ends as its run."""
    from ganad_bench.training import pack

    trainer = {"epochs": 4, "lr_milestones": [2], "lr_gamma": 0.5, "early_stopping_patience": None}
    alone = fit_alone(name, [0, 1, 2], **trainer)
    stackings = []
    original = pack.StackedMembers.__init__
    monkeypatch.setattr(pack.StackedMembers, "__init__", lambda self, engines: stackings.append(len(engines))
                        or original(self, engines))
    detectors = [make(name, seed, **trainer) for seed in (0, 1, 2)]
    fit_packed(detectors, [member_data(k) for k in range(3)])
    assert stackings == [3]
    for det, expected in zip(detectors, alone, strict=True):
        np.testing.assert_allclose(det.score_samples(TEST_ROWS), expected, rtol=2e-3,
                                   atol=2e-3 * np.abs(expected).max())
    # a callback after every epoch may read the members: they are written back, and stacked afresh each epoch
    stackings.clear()
    checkpointed = [create_detector(name, seed=s, trainer=cpu_trainer(batch_size=16, **trainer),
                                    checkpoint_dir=None, **TINY.get(name, {})) for s in (0, 1)]
    for det in checkpointed:
        det.callbacks.append(lambda engine, epoch: None)
    fit_packed(checkpointed, [member_data(k) for k in range(2)])
    assert stackings == [2, 2, 2, 2]


@pytest.mark.parametrize("name", ["dcae", "deep_svdd"])
def test_a_member_with_fewer_rows_than_a_batch_trains_as_its_run_alone(name, one_torch_thread):
    """A seeded split can leave one member fewer normal rows than the batch size (Deep SVDD on Arrhythmia:
    193 rows, batch 200): its single batch has another shape than the others', so it cannot share their
    stacked steps; it trains beside them and still ends as its run alone."""
    datas = [member_data(0), (member_data(1)[0][:11], member_data(1)[1]), member_data(2)]
    alone = []
    for seed, data in enumerate(datas):
        det = make(name, seed, epochs=2)
        det.fit(*data)
        alone.append(det.score_samples(TEST_ROWS))
    detectors = [make(name, seed, epochs=2) for seed in range(3)]
    outcomes = fit_packed(detectors, datas)
    assert all(out is det for out, det in zip(outcomes, detectors, strict=True)), outcomes
    for det, expected in zip(detectors, alone, strict=True):
        np.testing.assert_allclose(det.score_samples(TEST_ROWS), expected, rtol=2e-3,
                                   atol=2e-3 * np.abs(expected).max())


def test_members_keep_their_own_random_streams_and_checkpoints(tmp_path, one_torch_thread):
    """Two members with the same seed and data are the same run; a member's checkpoint is its run's."""
    detectors = [create_detector("alad", seed=3, trainer=cpu_trainer(epochs=2, batch_size=16),
                                 checkpoint_dir=str(tmp_path / f"m{k}")) for k in range(2)]
    fit_packed(detectors, [member_data(0), member_data(0)])
    a, b = (d.score_samples(TEST_ROWS) for d in detectors)
    np.testing.assert_array_equal(a, b)
    state = torch.load(tmp_path / "m0" / "last.pt", weights_only=True)
    assert state["epoch"] == 2 and set(state["optimizers"]) == {"d", "g"}
    adam = state["optimizers"]["g"]["state"]
    assert adam and float(next(iter(adam.values()))["step"]) == 2 * (len(member_data(0)[0]) // 16)


def test_a_diverging_member_leaves_the_others_unchanged(one_torch_thread):
    alone = fit_alone("dcae", [0, 1, 2])
    datas = [member_data(k) for k in range(3)]
    datas[1] = (datas[1][0].copy(), datas[1][1])
    datas[1][0][5, 2] = 3e38  # a finite value whose square overflows: the member's loss becomes inf
    detectors = [make("dcae", seed) for seed in (0, 1, 2)]
    outcomes = fit_packed(detectors, datas)
    assert isinstance(outcomes[1], TrainingDiverged) and "NaN" in str(outcomes[1])
    for k in (0, 2):
        assert outcomes[k] is detectors[k]
        np.testing.assert_allclose(detectors[k].score_samples(TEST_ROWS), alone[k], rtol=1e-5, atol=1e-6)


def test_an_interrupted_pack_resumes_from_its_members_checkpoints(tmp_path, one_torch_thread):
    trainer = cpu_trainer(epochs=3, batch_size=16)
    alone = []
    for k in range(2):
        det = create_detector("rcgan", seed=k, trainer=trainer)
        det.fit(*member_data(k))
        alone.append(det.score_samples(TEST_ROWS))
    killed = [create_detector("rcgan", seed=k, trainer=trainer, checkpoint_dir=str(tmp_path / f"m{k}"),
                              callbacks=[stop_after(1)] if k == 1 else []) for k in range(2)]
    outcomes = fit_packed(killed, [member_data(k) for k in range(2)])
    assert all(isinstance(out, Interrupt) for out in outcomes)  # the whole pack stops, as a killed process
    # member 0 resumes alone, member 1 in a new pack with a run that starts from scratch
    resumed = create_detector("rcgan", seed=0, trainer=trainer, checkpoint_dir=str(tmp_path / "m0"))
    resumed.fit(*member_data(0))
    assert resumed.resumed_from["epoch"] == 1
    again = [create_detector("rcgan", seed=k, trainer=trainer, checkpoint_dir=str(tmp_path / f"n{k}" if k == 0 else
                                                                                    tmp_path / "m1")) for k in (0, 1)]
    outcomes = fit_packed(again, [member_data(0), member_data(1)])
    assert outcomes == again, outcomes
    assert again[1].resumed_from["epoch"] == 1 and again[0].resumed_from is None
    for det, expected in ((resumed, alone[0]), (again[0], alone[0]), (again[1], alone[1])):
        np.testing.assert_allclose(det.score_samples(TEST_ROWS), expected, rtol=1e-4, atol=1e-5)


def test_early_stopping_is_per_member(one_torch_thread):
    trainer = {"epochs": 6, "early_stopping_patience": 1, "lr": 3e-2}
    alone = []
    for k in range(3):
        det = make("dcae", k, **trainer)
        det.fit(*member_data(k))
        alone.append((len(det.history), det.score_samples(TEST_ROWS)))
    detectors = [make("dcae", k, **trainer) for k in range(3)]
    fit_packed(detectors, [member_data(k) for k in range(3)])
    for det, (epochs, scores) in zip(detectors, alone, strict=True):
        assert len(det.history) == epochs
        np.testing.assert_allclose(det.score_samples(TEST_ROWS), scores, rtol=1e-5, atol=1e-6)


def test_a_model_that_cannot_be_stacked_says_so_and_trains_its_runs_one_by_one(caplog, one_torch_thread):
    """AMA with the gradient penalty differentiates its critic in the inputs, which vmap cannot batch."""
    alone = fit_alone("ama", [0, 1], lipschitz="gp")
    detectors = [make("ama", k, lipschitz="gp") for k in range(2)]
    with caplog.at_level(logging.INFO, logger="ganad_bench"):
        fit_packed(detectors, [member_data(k) for k in range(2)])
    assert any("AMAModule cannot be trained as a pack" in r.getMessage() for r in caplog.records)
    for det, expected in zip(detectors, alone, strict=True):
        np.testing.assert_array_equal(det.score_samples(TEST_ROWS), expected)


# ------------------------------------------------------------------------------------------ launcher
def compose(*overrides):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module

    with initialize_config_module(config_module="ganad_bench.conf", version_base=None):
        return hydra_compose(config_name="config", overrides=list(overrides), return_hydra_config=True)


def test_the_launcher_packs_jobs_that_differ_only_in_seed_and_class():
    from hydra_plugins.ganad_pack_launcher.pack_launcher import packs

    configs = [compose("model=alad", f"seed={s}") for s in range(3)]
    configs += [compose("model=alad", "seed=0", "trainer.lr=0.1"), compose("model=iforest", "seed=0"),
                compose("model=iforest", "seed=1"), compose("model=alad", "seed=5")]
    assert packs(configs, 10) == [[0, 1, 2, 6], [3], [4], [5]]
    assert packs(configs, 2) == [[0, 1], [2, 6], [3], [4], [5]]
    assert packs(configs, 1) == [[i] for i in range(7)]
    images = [compose("model=dcae", "dataset=mnist", f"dataset.normal_class={c}", f"seed={s}")
              for c in (0, 1) for s in (0, 1)]
    assert packs(images, 10) == [[0, 1, 2, 3]]
    left_out = [compose("model=dcae", "dataset=mnist", "protocol=leave_one_class_out", f"protocol.anomaly_class={c}",
                        f"seed={s}") for c in (0, 1) for s in (0, 1)]
    assert packs(left_out, 10) == [[0, 1, 2, 3]]


def run_cli(*args) -> int:
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-c", "from ganad_bench.cli import main; main()", *args],
                          capture_output=True, text=True, timeout=300)


def rows(folder: Path) -> dict:
    return {json.loads(p.read_text())["seed"]: json.loads(p.read_text()) for p in folder.rglob("result.json")}


def test_a_packed_multirun_writes_the_rows_of_one_by_one_runs(tmp_path):
    common = ["-m", "model=dcae", "dataset=thyroid", "seed=0,1,2", "trainer.epochs=2", "plots=false"]
    packed = run_cli(*common, f"paths.output_dir={tmp_path / 'packed'}")
    single = run_cli(*common, f"paths.output_dir={tmp_path / 'single'}", "hydra/launcher=basic")
    assert packed.returncode == 0 and single.returncode == 0, packed.stderr[-2000:] + single.stderr[-2000:]
    a, b = rows(tmp_path / "packed"), rows(tmp_path / "single")
    assert sorted(a) == sorted(b) == [0, 1, 2]
    assert packed.stderr.count("s (a pack of 3) →") == 3 and "(a pack of" not in single.stderr
    for seed in a:
        assert a[seed]["config_hash"] == b[seed]["config_hash"]
        # each row says how many runs shared its wall time, and its summary line says it is a pack's time
        assert (a[seed]["pack_members"], b[seed]["pack_members"]) == (3, 1)
        for metric in ("auroc", "f1"):
            assert a[seed]["metrics"][metric] == pytest.approx(b[seed]["metrics"][metric], abs=1e-6)
    # every job's own log holds its own epoch lines, though the pack trains in the launching thread
    for seed in (0, 1, 2):
        (log,) = [p for p in (tmp_path / "packed").rglob("*.log") if p.parent.name.endswith(f"_s{seed}")]
        text = log.read_text()
        assert f"(seed {seed}): epoch 2/2" in text, (seed, text[-1000:])
        assert not any(f"(seed {other}): epoch" in text for other in {0, 1, 2} - {seed}), (seed, text[-1000:])
    # rerunning the packed command skips every finished run
    again = run_cli(*common, f"paths.output_dir={tmp_path / 'packed'}")
    assert again.returncode == 0 and again.stderr.count("already finished") == 3
    # the wall-time report reads both sweeps' rows
    import subprocess
    import sys

    subprocess.run([sys.executable, "scripts/pack_walltime.py", "--packed", str(tmp_path / "packed" / "results"),
                    "--single", str(tmp_path / "single" / "results"), "--out", str(tmp_path / "walltime.md")],
                   check=True, capture_output=True, cwd=Path(__file__).parents[1])
    line = next(x for x in (tmp_path / "walltime.md").read_text().splitlines() if x.startswith("| dcae | thyroid"))
    aurocs = ", ".join(f"{a[seed]['metrics']['auroc']:.4f}" for seed in (0, 1, 2))
    assert "| dcae | thyroid | 3 |" in line and line.count(aurocs) == 2


def test_pack_walltime_names_a_missing_or_empty_results_folder_in_one_line(tmp_path):
    """scripts/pack_walltime.py: a folder that is missing or holds no finished runs is a one-line error naming
    its flag, and no report is written."""
    import subprocess
    import sys

    (tmp_path / "empty").mkdir()
    for packed, single, says, status in (
            (tmp_path / "nope", tmp_path / "empty", "no such folder: {} (give --packed the results folder", 2),
            (tmp_path / "empty", tmp_path / "empty", "--packed {} holds no finished runs", 1)):
        proc = subprocess.run([sys.executable, "scripts/pack_walltime.py", "--packed", str(packed), "--single",
                               str(single), "--out", str(tmp_path / "walltime.md")],
                              capture_output=True, text=True, cwd=Path(__file__).parents[1])
        assert proc.returncode == status and proc.stderr.count("\n") == 1, proc.stderr
        assert proc.stderr.startswith("error: " + says.format(packed))
        assert not (tmp_path / "walltime.md").exists()


# ------------------------------------------------------------------------------------------- GPU check
def test_the_gpu_check_report_runs_end_to_end_on_the_cpu(tmp_path):
    """`make gpu-check`'s benchmark with tiny settings on the CPU: every code path but the device (variants,
    packs, unpackable models, the report) is exercised here, so the GPU run cannot fail for a CPU reason."""
    import subprocess
    import sys

    command = [sys.executable, "scripts/pack_benchmark.py", "--device", "cpu", "--in-process", "--out", str(tmp_path),
               "--name", "gpu-check", "--models", "alad", "memgan", "ama", "--shapes", "tab121", "img1x28x28",
               "--packs", "1", "2", "--variants", "plain", "bf16", "compile", "--image-width", "8", "--steps", "1",
               "--warmup", "1", "--threads", "1"]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=Path(__file__).parents[1])
    assert proc.returncode == 0, proc.stderr[-3000:]
    cases = json.loads((tmp_path / "gpu-check.json").read_text())
    assert len(cases) == 3 * 2 * 2 * 3
    measured = [c for c in cases if "samples_per_s" in c]
    assert {(c["model"], c["k"]) for c in measured if c["variant"] == "plain"} == {
        (m, k) for m in ("alad", "memgan", "ama") for k in (1, 2)}
    assert all(c["equivalence_error"] < 1e-3 for c in measured if c["k"] == 2)
    report = (tmp_path / "gpu-check.md").read_text()
    assert "| alad | img1x28x28 (w 8) | bf16 | 2 |" in report
    assert report.count("not packable (a compiled loss is compiled for one run)") == 3 * 2
    # a run stopped at its time limit leaves the JSON only: --report writes the same table from it, in the
    # benchmark's order whatever order the cases were measured in; a case that failed says so
    (tmp_path / "gpu-check.md").unlink()
    failed = {**cases[0], "k": 5, "why": "failed: OutOfMemoryError: CUDA out of memory"}
    (tmp_path / "gpu-check.json").write_text(json.dumps([failed] + cases[::-1]))
    proc = subprocess.run([sys.executable, "scripts/pack_benchmark.py", "--report", "--out", str(tmp_path),
                           "--name", "gpu-check"], capture_output=True, text=True, cwd=Path(__file__).parents[1])
    assert proc.returncode == 0, proc.stderr
    rewritten = (tmp_path / "gpu-check.md").read_text().splitlines()
    assert [line for line in rewritten if "| 5 |" not in line] == report.splitlines()
    assert "| alad | tab121 | plain | 5 | failed: OutOfMemoryError: CUDA out of memory | | | | | |" in rewritten
    proc = subprocess.run([sys.executable, "scripts/pack_benchmark.py", "--report", "--out", str(tmp_path / "none"),
                           "--name", "gpu-check"], capture_output=True, text=True, cwd=Path(__file__).parents[1])
    assert proc.returncode == 1 and proc.stderr.strip().startswith("error: no ") and "Traceback" not in proc.stderr


def test_the_op_count_names_the_callers_of_a_steps_operations():
    """`--op-count`: one step's ATen operations by calling function, which is what a GPU step of these small
    networks costs (docs/benchmarks/README.md); the groups add up to the total."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "scripts/pack_benchmark.py", "--op-count", "alad",  # no --out: no file
                           "tab121", "--warmup", "1"], capture_output=True, text=True, cwd=Path(__file__).parents[1],
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    head, *groups = proc.stdout.strip().splitlines()
    total = int(head.split(": ")[1].split()[0])
    assert total > 100 and sum(int(line.split()[0]) for line in groups) == total
    assert any("noise.py:mix32" in line for line in groups) and any("_power_method" in line for line in groups)
    proc = subprocess.run([sys.executable, "scripts/pack_benchmark.py", "--models", "alad"], capture_output=True,
                          text=True, cwd=Path(__file__).parents[1])
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].endswith(
        "error: --out is required: the folder of the report (and of the finished cases a rerun keeps)")


def test_the_speed_benchmark_covers_every_deep_detector(tmp_path):
    """scripts/benchmark.py (the single-run speeds that run_costs.yaml cites): by default every deep detector of
    the registry, Skip-GANomaly and FGAN included, trains and scores on each input shape."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "scripts/benchmark.py", "--out", str(tmp_path), "--quick", "--threads", "1",
                           "--shapes", "tab6", "img1x28x28", "--train-steps", "1", "--warmup", "0",
                           "--score-repeats", "1", "--batch-size", "4", "--anogan-steps", "1"],
                          capture_output=True, text=True, timeout=600, cwd=Path(__file__).parents[1],
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads((tmp_path / "benchmark.json").read_text())["rows"]
    deep = set(deep_detectors())
    assert {"skip_ganomaly", "fgan", "dsebm_r"} <= deep
    for shape in ("tab6", "img1x28x28"):
        measured = [r for r in rows if r["shape"] == shape]
        assert {r["model"] for r in measured} == deep
        assert all(r["train_samples_per_s"] > 0 and r["score_ms_per_batch"] > 0 and r["finite"] for r in measured)


def test_the_pack_benchmark_covers_every_deep_detector(tmp_path):
    """scripts/pack_benchmark.py measures every deep detector of the registry by default (DSEBM-r included,
    which a hand-kept list had left out), and a pack of DSEBM-r members steps as its runs alone do."""
    import re
    import subprocess
    import sys

    root = Path(__file__).parents[1]
    usage = subprocess.run([sys.executable, "scripts/pack_benchmark.py", "--help"], capture_output=True, text=True,
                           timeout=120, cwd=root)
    assert usage.returncode == 0, usage.stderr[-2000:]
    choices = re.search(r"--models \{([a-z_,]+)\}", usage.stdout).group(1).split(",")
    assert choices == deep_detectors() and "dsebm_r" in choices
    proc = subprocess.run([sys.executable, "scripts/pack_benchmark.py", "--device", "cpu", "--in-process", "--out",
                           str(tmp_path), "--models", "dsebm_r", "--shapes", "tab121", "--packs", "1", "2",
                           "--steps", "1", "--warmup", "1", "--threads", "1"],
                          capture_output=True, text=True, timeout=600, cwd=root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    cases = json.loads((tmp_path / "packs.json").read_text())
    assert {c["k"] for c in cases if c["model"] == "dsebm_r" and c["samples_per_s"] > 0} == {1, 2}
    assert all(c["equivalence_error"] < 1e-3 for c in cases if c["k"] == 2)


def fake_python(tmp_path: Path, body: str) -> str:
    """An interpreter for scripts/gpu_check.sh: `body` (sh) decides what each call does, else this Python."""
    import sys

    path = tmp_path / "python"
    path.write_text(f"#!/bin/sh\n{body}\nexec {sys.executable} \"$@\"\n")
    path.chmod(0o755)
    return str(path)


@pytest.mark.parametrize("case", ["no torch", "benchmark crashes"])
def test_the_gpu_check_fails_loudly(case, tmp_path):
    """A Python without torch: one line, exit 2, no output folder left behind. A benchmark that crashes
    outright (not one stopped at its time limit): the check exits non-zero even when its other stages pass
    (here simulated: the command line and the tests stand in as passing)."""
    import subprocess
    import sys

    out = tmp_path / "out"
    if case == "no torch":
        body = f'[ "$1" = "-" ] && exec {sys.executable} -S "$@"'  # the probe, without site-packages
    else:
        body = '[ "$1" = scripts/pack_benchmark.py ] && [ "$2" != --report ] && exit 3\n[ "$1" = -m ] && exit 0'
    proc = subprocess.run(["bash", "scripts/gpu_check.sh", str(out)], capture_output=True, text=True,
                          cwd=Path(__file__).parents[1],
                          env={**os.environ, "PYTHON": fake_python(tmp_path, body), "GPU_CHECK_DEVICE": "cpu"})
    if case == "no torch":
        assert proc.returncode == 2 and not out.exists()
        assert proc.stderr.strip() == (f"error: {sys.executable} has no torch: PYTHON=<an interpreter with torch "
                                       "and CUDA>")
    else:
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "benchmark failed (exit 3)" in proc.stdout and "benchmark failed" in proc.stdout.splitlines()[-1]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", ["alad", "memgan", "dcae", "deep_svdd"])
def test_a_member_of_a_cuda_pack_scores_as_its_run_alone(name):
    def make_cuda(seed):
        return create_detector(name, seed=seed, trainer=cpu_trainer(device="cuda", epochs=1, batch_size=16),
                               **TINY.get(name, {}))

    alone = []
    for k in range(3):
        det = make_cuda(k)
        det.fit(*member_data(k))
        alone.append(det.score_samples(TEST_ROWS))
    detectors = [make_cuda(k) for k in range(3)]
    fit_packed(detectors, [member_data(k) for k in range(3)])
    for det, expected in zip(detectors, alone, strict=True):
        scale = np.abs(expected).max()
        np.testing.assert_allclose(det.score_samples(TEST_ROWS), expected, rtol=2e-3, atol=2e-3 * scale)


def two_packs_elsewhere(out: Path, launcher_setting: str) -> str:
    """Two packs (two learning rates x two seeds) run away from this process by `launcher_setting`: every run
    writes its row; returns the command's output."""
    proc = run_cli("-m", "model=dcae", "dataset=thyroid", "seed=0,1", "trainer.lr=1e-3,1e-4", "trainer.epochs=1",
                   "plots=false", launcher_setting, f"paths.output_dir={out}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = [json.loads(p.read_text()) for p in out.rglob("result.json")]
    assert len(results) == 4 and {r["status"] for r in results} == {"ok"}
    return proc.stdout + proc.stderr


def test_packs_are_handed_to_worker_processes(tmp_path):
    """`hydra.launcher.n_jobs=2`: two packs, each in a worker process."""
    out = tmp_path / "out"
    assert "Handing 2 packs to 2 worker processes" in two_packs_elsewhere(out, "hydra.launcher.n_jobs=2")
    logs = "".join(p.read_text() for p in out.rglob("*.log"))
    assert logs.count("run 1/2 of the pack") == 2  # one line per pack (one epoch each)


@pytest.mark.slow
def test_packs_are_submitted_as_cluster_jobs(tmp_path):
    """`hydra.launcher.executor=submitit_local`: each pack is one submitit job (a SLURM job with
    executor=slurm), run here as a local process; every run writes its row."""
    pytest.importorskip("submitit")
    output = two_packs_elsewhere(tmp_path / "out", "hydra.launcher.executor=submitit_local")
    assert "Submitted 2 packs as submitit_local jobs" in output


def test_a_detector_saved_before_the_random_streams_still_loads_and_scores(tmp_path):
    from ganad_bench.errors import DataError
    from ganad_bench.models.kit.contract import Detector

    det = make("alad", 0)
    det.fit(*member_data(0))
    path = det.save(tmp_path / "detector.pt")
    state = torch.load(path, weights_only=True)
    state["state"]["module"] = {k: v for k, v in state["state"]["module"].items() if not k.endswith(".state")}
    torch.save(state, tmp_path / "old.pt")
    np.testing.assert_array_equal(Detector.load(tmp_path / "old.pt").score_samples(TEST_ROWS),
                                  det.score_samples(TEST_ROWS))
    state["state"]["module"]["encoder.0.weight_extra"] = torch.zeros(1)
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(DataError, match='Unexpected key.* "encoder.0.weight_extra"'):
        Detector.load(tmp_path / "bad.pt")


def test_a_pack_that_runs_out_of_device_memory_trains_in_smaller_packs(monkeypatch, caplog, one_torch_thread):
    """Out of memory in a stacked epoch: the batch generators are rewound and the members train in packs of
    half the size, each still equal to its run alone (device memory is simulated: a pack of more than 2 fails)."""
    from ganad_bench.training import pack

    original = pack.StackedMembers.step

    def step(self, x, x_gen, stepping):
        if self.k > 2:
            raise torch.OutOfMemoryError("simulated")
        return original(self, x, x_gen, stepping)

    alone = fit_alone("dcae", [0, 1, 2, 3], epochs=2)
    monkeypatch.setattr(pack.StackedMembers, "step", step)
    detectors = [make("dcae", k, epochs=2) for k in range(4)]
    with caplog.at_level(logging.INFO, logger="ganad_bench"):
        outcomes = fit_packed(detectors, [member_data(k) for k in range(4)])
    assert outcomes == detectors
    assert any("does not fit in device memory: packs of at most 2" in r.getMessage() for r in caplog.records)
    for det, expected in zip(detectors, alone, strict=True):
        np.testing.assert_allclose(det.score_samples(TEST_ROWS), expected, rtol=1e-5, atol=1e-6)


def test_members_take_their_rows_in_the_order_of_the_functions_not_of_arrival(monkeypatch):
    """A member's row in the stack changes its numbers in the last bit: the threads may reach the rendezvous in
    any order, the pack always stacks them in run_together's order (so a rerun is bit for bit the same)."""
    import threading

    from ganad_bench.training import pack

    trained = []
    monkeypatch.setattr(pack, "train_pack", lambda engines, datas: trained.append(list(engines)) or list(engines))
    monkeypatch.setattr(pack, "stackable", lambda engine: True)
    rendezvous = pack.Rendezvous(3)

    class Fake:  # what train_waiting reads of an engine
        def __init__(self, k):
            self.k, self.fingerprint, self.config, self.module = k, {"stage": None}, "cfg", torch.nn.Identity()

    with rendezvous.turn:
        for k in (2, 0, 1):  # arrival order
            rendezvous.waiting.append({"engine": Fake(k), "data": None, "outcome": None, "rng": None, "index": k})
        rendezvous.train_waiting()
    assert [e.k for e in trained[0]] == [0, 1, 2]
    assert threading.current_thread() is threading.main_thread()


def test_a_pack_rerun_is_bit_for_bit_the_same(one_torch_thread):
    first, second = ([make("rcgan", seed) for seed in (0, 1, 2)] for _ in range(2))
    fit_packed(first, [member_data(k) for k in range(3)])
    fit_packed(second, [member_data(k) for k in range(3)])
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a.score_samples(TEST_ROWS), b.score_samples(TEST_ROWS))
