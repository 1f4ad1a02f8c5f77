"""The adversarial training engine: exact resume from a per-epoch checkpoint, NaN guard, EMA, early
stopping, config plumbing (trainer dict, Hydra configs)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_module
from torch import nn

from ganad_bench.errors import ConfigError, InputError, TrainingDiverged
from ganad_bench.models.kit.deep import DeepDetector
from ganad_bench.models.kit.registry import create_detector
from ganad_bench.training.engine import CHECKPOINT_FILE, EMA, DetectorModule, Engine
from ganad_bench.training.settings import TrainerConfig
from tests.checks import Interrupt, poison_loss, stop_after

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def data(seed=0, n=200, d=6):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, d)) * 0.5 + 0.5).astype(np.float32), rng.normal(size=(60, d)).astype(np.float32)



def alad(checkpoint_dir=None, callbacks=(), epochs=4, name="alad", **kw):
    return create_detector(name, seed=3, checkpoint_dir=checkpoint_dir, callbacks=callbacks,
                           trainer={"device": "cpu", "epochs": epochs, "batch_size": 32, "lr": 1e-3,
                                    "progress": False, "checkpoint_seconds": 0, **kw})


@pytest.mark.parametrize("name", ["alad", "rcgan", "memgan"])
def test_killed_run_resumes_to_the_same_scores(tmp_path, name):
    x, test = data()
    reference = alad(tmp_path / "a", name=name).fit(x).score_samples(test)
    with pytest.raises(Interrupt):
        alad(tmp_path / "b", callbacks=[stop_after(2)], name=name).fit(x)
    assert (tmp_path / "b" / CHECKPOINT_FILE).exists()
    state = torch.load(tmp_path / "b" / CHECKPOINT_FILE, weights_only=False)
    assert state["epoch"] == 2 and {"module", "optimizers", "ema", "rng", "best_val"} <= set(state)
    resumed = alad(tmp_path / "b", name=name)
    resumed.fit(x)
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3, 4]
    np.testing.assert_array_equal(resumed.score_samples(test), reference)


def test_a_checkpoint_of_another_device_resumes_with_a_reseeded_batch_order(tmp_path, caplog):
    """A CUDA generator's state cannot go on as the CPU's: the run resumes everything else exactly, draws its
    batch orders from a generator seeded by (seed, epoch), reproducibly, and its row says so."""
    x, test = data()
    with pytest.raises(Interrupt):
        alad(tmp_path, callbacks=[stop_after(2)]).fit(x)
    path = tmp_path / CHECKPOINT_FILE
    state = torch.load(path, weights_only=True)
    state["rng"]["batches"] = torch.arange(16, dtype=torch.uint8)  # a CUDA (Philox) generator's seed and offset
    state["rng"]["batches_device"] = "cuda"
    torch.save(state, path)
    written_on_cuda = path.read_bytes()
    with caplog.at_level("WARNING", logger="ganad_bench"):
        resumed = alad(tmp_path).fit(x)
    assert "was written on cuda and resumes on cpu: from epoch 3 on" in caplog.text
    moved = [{"epoch": 2, "from": "cuda", "to": "cpu"}]
    assert resumed.resumed_from["epoch"] == 2 and resumed.resumed_from["device_moves"] == moved
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3, 4] and not list(tmp_path.glob("last.pt.bad-*"))
    scores = resumed.score_samples(test)
    path.write_bytes(written_on_cuda)  # the same checkpoint resumed again: the same run
    with pytest.raises(Interrupt):  # ... and stopped again, on the CPU: its next resume still tells the move
        alad(tmp_path, callbacks=[stop_after(3)]).fit(x)
    again = alad(tmp_path).fit(x)
    assert again.resumed_from == {"epoch": 3, "code_version": again.resumed_from["code_version"], "device_moves": moved}
    np.testing.assert_array_equal(again.score_samples(test), scores)
    del state["rng"]["batches_device"]  # written before the device was recorded: known by its state's size
    torch.save(state, path)
    older = alad(tmp_path).fit(x)
    assert older.resumed_from["device_moves"] == moved
    np.testing.assert_array_equal(older.score_samples(test), scores)
    state["rng"]["batches"] = torch.Generator().get_state()  # a CPU state resumes as before, not reseeded
    torch.save(state, path)
    assert "device_moves" not in alad(tmp_path).fit(x).resumed_from


def test_finished_run_is_not_trained_again(tmp_path):
    x, test = data()
    first = alad(tmp_path, epochs=2).fit(x).score_samples(test)
    calls = []
    again = alad(tmp_path, epochs=2, callbacks=[lambda engine, epoch: calls.append(epoch)])
    np.testing.assert_array_equal(again.fit(x).score_samples(test), first)
    assert calls == []


def test_checkpoint_of_another_setup_is_not_resumed(tmp_path):
    x, _ = data()
    alad(tmp_path, epochs=1).fit(x)
    other = alad(tmp_path, epochs=2, lr=5e-4).fit(x)
    assert [h["epoch"] for h in other.history] == [1, 2]


@pytest.mark.parametrize("name", ["alad", "rcgan", "memgan"])
def test_nan_in_the_data_is_refused_and_would_raise_training_diverged(name):
    x, _ = data()
    x[5, 2] = np.nan
    detector = alad(epochs=1, name=name)
    with pytest.raises(InputError, match="the first nan at sample 6, feature 3"):
        detector.fit(x)
    with pytest.raises(TrainingDiverged, match="NaN or inf"):  # the engine's own guard, below the contract
        detector.fit_model(x)


def test_nan_loss_is_caught_at_the_periodic_check(monkeypatch):
    x, _ = data()
    det = alad(epochs=3, nan_check_every=1000)
    from ganad_bench.models.kit import bigan as bigan_module

    poison_loss(monkeypatch, bigan_module.BiGANModule, "g_loss", at_call=8)
    with pytest.raises(TrainingDiverged, match="epoch 2"):
        det.fit(x)


class Toy(DetectorModule):
    """A one-parameter 'GAN' whose validation loss is constant (early stopping must kick in)."""

    discriminator_names = ("d",)
    generator_names = ("g",)

    def __init__(self):
        super().__init__()
        self.d, self.g = nn.Linear(2, 1), nn.Linear(2, 1)

    def d_loss(self, x):
        return self.d(x).pow(2).mean(), {}

    def g_loss(self, x):
        return self.g(x).pow(2).mean(), {}

    def score(self, x):
        return self.g(x).squeeze(1)

    def val_loss(self, x):
        return torch.ones(())


def test_early_stopping_on_a_flat_validation_loss():
    x = np.ones((64, 2), np.float32)
    config = TrainerConfig.from_dict({"device": "cpu", "epochs": 50, "batch_size": 16,
                                      "early_stopping_patience": 3, "progress": False})
    engine = Engine(Toy(), config).fit(x, x[:8])
    assert engine.stopped_early and engine.epoch == 4
    assert "val_loss" in engine.history[-1]


class Dipping(Toy):
    """A validation loss that is lowest after epoch 2 of 4 (patience 2 stops training at epoch 4)."""

    def __init__(self):
        super().__init__()
        self.losses = iter([3.0, 1.0, 2.0, 2.0])

    def val_loss(self, x):
        return torch.tensor(next(self.losses))


@pytest.mark.parametrize("restore_best", [False, True])
def test_an_early_stop_scores_with_the_weights_it_stopped_with_unless_asked_for_the_best(restore_best):
    """The reference code (ALAD's run.py) tests the weights training stopped with; `early_stopping_restore_best`
    restores the best epoch's instead."""
    x = np.random.default_rng(0).normal(size=(64, 2)).astype(np.float32)
    weights = {}
    config = TrainerConfig.from_dict({"device": "cpu", "epochs": 50, "batch_size": 16, "lr": 0.1,
                                      "early_stopping_patience": 2, "early_stopping_restore_best": restore_best,
                                      "progress": False})
    keep = lambda engine, epoch: weights.update({epoch: engine.scoring_module.g.weight.detach().clone()})  # noqa: E731
    engine = Engine(Dipping(), config, callbacks=[keep]).fit(x, x[:8])
    assert engine.stopped_early and engine.epoch == 4 and not torch.equal(weights[2], weights[4])
    torch.testing.assert_close(engine.scoring_module.g.weight, weights[2 if restore_best else 4])


def test_the_early_stopping_only_keys_stay_out_of_a_runs_identity_while_early_stopping_cannot_act():
    """Runs that never stop early (no patience, or no validation rows) keep the folder they had before
    `early_stopping_restore_best` existed; where early stopping acts, the choice is part of the run."""
    from ganad_bench.results.store import config_hash

    def config(patience, val_fraction, restore=None):
        trainer = {"epochs": 5, "early_stopping_patience": patience}
        if restore is not None:
            trainer["early_stopping_restore_best"] = restore
        return {"model": {"name": "alad"}, "dataset": {"name": "thyroid"}, "seed": 0, "trainer": trainer,
                "protocol": {"name": "tabular", "val_fraction": val_fraction}}

    for patience, val_fraction in ((None, 0.25), (10, 0.0)):
        assert len({config_hash(config(patience, val_fraction, restore)) for restore in (None, False, True)}) == 1
    assert len({config_hash(config(10, 0.25, restore)) for restore in (False, True)}) == 2


def test_no_validation_rows_means_the_full_budget():
    x = np.ones((64, 2), np.float32)
    config = TrainerConfig.from_dict({"device": "cpu", "epochs": 5, "batch_size": 16,
                                      "early_stopping_patience": 1, "progress": False})
    assert Engine(Toy(), config).fit(x, None).epoch == 5


def test_ema_warmup_and_decay():
    net = nn.Linear(1, 1, bias=False)
    nn.init.zeros_(net.weight)
    ema = EMA(net, decay=0.999)
    assert ema.rate() == pytest.approx(0.1)
    with torch.no_grad():
        net.weight.fill_(1.0)
    ema.update(net)
    assert ema.module.weight.item() == pytest.approx(0.9)
    plain = EMA(nn.Linear(1, 1), decay=0.5, warmup=False)
    assert plain.rate() == 0.5


def test_trainer_config_validation():
    assert TrainerConfig.from_dict({"betas": [0.5, 0.9]}).betas == (0.5, 0.9)
    with pytest.raises(ConfigError, match="trainer.learning_rate: not a setting of trainer"):
        TrainerConfig.from_dict({"learning_rate": 1.0})
    with pytest.raises(ConfigError, match=r"^trainer.epoch: not a setting of trainer \(did you mean epochs\? "):
        TrainerConfig.from_dict({"epoch": 3})  # create_detector(trainer=...) is told as the command line is
    with pytest.raises(ConfigError, match="ema_decay"):
        TrainerConfig.from_dict({"ema_decay": 1.5})
    with pytest.raises(ConfigError, match="batch_size"):
        TrainerConfig.from_dict({"batch_size": 0})


def test_fewer_training_rows_than_a_batch_train_with_a_warning(caplog):
    """A tiny protocol.train_fraction leaves a deep model a handful of rows: it trains, one step an epoch, and
    says so; a full batch says nothing."""
    config = TrainerConfig.from_dict({"device": "cpu", "epochs": 2, "batch_size": 16, "progress": False})
    with caplog.at_level("WARNING", logger="ganad_bench"):
        Engine(Toy(), config).fit(np.ones((16, 2), np.float32), None)
        assert not caplog.records
        engine = Engine(Toy(), config).fit(np.ones((5, 2), np.float32), None)
    assert engine.epoch == 2
    assert [r.getMessage() for r in caplog.records] == [
        "5 training rows, fewer than trainer.batch_size=16: each epoch is one step on all of them"]


def test_bf16_and_compile_are_ignored_on_cpu_with_a_warning(caplog):
    """Said on the terminal, not only in the log file: the run's row keeps the settings it was asked for."""
    config = TrainerConfig.from_dict({"device": "cpu", "bf16": True, "compile": True, "epochs": 1,
                                      "batch_size": 16, "progress": False})
    with caplog.at_level("WARNING", logger="ganad_bench"):
        engine = Engine(Toy(), config)
    assert not engine.use_bf16 and not engine.use_compile
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        "trainer.bf16=true and trainer.compile=true: CUDA only, so this run on cpu trains in float32, uncompiled "
        "(its row records device cpu)"]
    engine.fit(np.ones((32, 2), np.float32))


def test_epoch_lines_are_logged_at_most_every_few_seconds_and_for_the_last_epoch(caplog, monkeypatch):
    """Many short epochs (DAGMM: 20,000) write a few log lines, not one an epoch; the last epoch's always."""
    from ganad_bench.training import engine as engine_module

    clock = iter(float(i) for i in range(10_000))  # one second passes each time the engine reads the clock
    monkeypatch.setattr(engine_module.time, "monotonic", lambda: next(clock))
    config = TrainerConfig.from_dict({"device": "cpu", "epochs": 30, "batch_size": 32, "progress": False})
    with caplog.at_level("INFO", logger="ganad_bench"):
        engine = Engine(Toy(), config).fit(np.ones((32, 2), np.float32))
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch ")]
    assert len(engine.history) == 30 and lines[0].startswith("epoch 1/30") and lines[-1].startswith("epoch 30/30")
    assert 2 < len(lines) < 15, lines


def test_a_cuda_device_number_the_machine_lacks_is_refused_before_training(monkeypatch):
    """cuda:5 on a machine of 2 GPUs failed the run at its first tensor (CUDA's invalid device ordinal)."""
    from ganad_bench.training.device import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda:1") == torch.device("cuda:1")
    with pytest.raises(ConfigError, match=r"^trainer.device=cuda:5 but this machine has 2 CUDA device\(s\), cuda:0 "
                                          r"to cuda:1: choose one of them, or trainer.device=auto$"):
        resolve_device("cuda:5")


def test_cuda_computes_in_float32_unless_tf32_and_restores_the_modes_after():
    """PyTorch's default on CUDA is TF32 convolutions but float32 matrix products: `trainer.tf32` sets both, for
    the block only (the flags are only read on a GPU, so a CPU build shows what a GPU would get)."""
    from ganad_bench.training.device import float32_precision

    conv, matmul = torch.backends.cudnn.conv, torch.backends.cuda.matmul
    before = conv.fp32_precision, matmul.fp32_precision
    for tf32, mode in ((False, "ieee"), (True, "tf32")):
        with float32_precision(torch.device("cuda"), tf32):
            assert (conv.fp32_precision, matmul.fp32_precision) == (mode, mode)
        assert (conv.fp32_precision, matmul.fp32_precision) == before
    with float32_precision(torch.device("cpu"), True):
        assert (conv.fp32_precision, matmul.fp32_precision) == before


@pytest.mark.parametrize("tf32", [False, True])
def test_steps_scoring_and_packs_run_in_the_configured_float32_mode(tf32, monkeypatch):
    import contextlib

    import ganad_bench.training.engine as engine_module
    from ganad_bench.training.pack import train_pack

    modes = []

    @contextlib.contextmanager
    def recording(device, use_tf32):
        modes.append(use_tf32)
        yield

    monkeypatch.setattr(engine_module, "float32_precision", recording)
    config = {"device": "cpu", "epochs": 2, "batch_size": 16, "progress": False, "tf32": tf32}
    engine = Engine(Toy(), TrainerConfig.from_dict(config))
    engine.fit(np.ones((32, 2), np.float32))
    assert len(modes) == 4  # 2 epochs x 2 steps
    engine.score(np.ones((8, 2), np.float32))
    assert len(modes) == 5
    pack = [Engine(Toy(), TrainerConfig.from_dict(config), seed=k) for k in range(2)]
    train_pack(pack, [(np.ones((32, 2), np.float32), None)] * 2)
    assert len(modes) == 9 and set(modes) == {tf32}  # the pack's stacked steps: 2 epochs x 2 steps


def compose_cfg(*overrides):
    with initialize_config_module("ganad_bench.conf", version_base=None):
        return compose("config", overrides=list(overrides))


@pytest.mark.parametrize("dataset,lr,batch,epochs,latent", [("kdd99", 1e-5, 50, 100, 32),
                                                             ("arrhythmia", 1e-5, 32, 1000, 64),
                                                             ("mnist", 2e-4, 32, 100, None)])
def test_alad_configs_carry_the_appendix_hyperparameters(dataset, lr, batch, epochs, latent):
    cfg = compose_cfg("model=alad", f"dataset={dataset}")
    assert cfg.trainer.lr == lr and cfg.trainer.batch_size == batch and cfg.trainer.epochs == epochs
    assert cfg.model.params.latent_dim == latent and cfg.trainer.ema_decay == 0.999
    TrainerConfig.from_dict(dict(cfg.trainer))  # every key is an engine key


@pytest.mark.parametrize("model", ["alad", "egbad", "anogan", "ganomaly"])
def test_model_configs_build_their_detector(model):
    from omegaconf import OmegaConf

    cfg = compose_cfg(f"model={model}", "dataset=thyroid", "trainer.device=cpu")
    params = OmegaConf.to_container(cfg.model.params)
    det = create_detector(cfg.model.name, seed=0, trainer=OmegaConf.to_container(cfg.trainer), **params)
    assert isinstance(det, DeepDetector) and det.trainer.device == "cpu"


@pytest.mark.parametrize("experiment", ["alad_table2", "alad_table5", "alad_table7", "alad_table3",
                                        "alad_table6"])
def test_experiment_configs_compose(experiment):
    with initialize_config_module("ganad_bench.conf", version_base=None):
        cfg = compose("config", overrides=[f"experiment={experiment}"], return_hydra_config=True)
    assert cfg.hydra.sweeper.params


def test_progress_bar_on_a_terminal(monkeypatch):
    import io

    from rich.console import Console

    from ganad_bench import console as console_module

    buffer = io.StringIO()
    monkeypatch.setattr(console_module, "console", Console(file=buffer, force_terminal=True, width=120))
    config = TrainerConfig.from_dict({"device": "cpu", "epochs": 2, "batch_size": 16})
    Engine(Toy(), config).fit(np.ones((32, 2), np.float32))
    assert "samples/s" in buffer.getvalue()


def test_experiment_overrides_keep_the_dataset_settings():
    cfg = compose_cfg("experiment=alad_table5", "dataset=kdd99")
    assert cfg.model.name == "alad" and cfg.trainer.lr == 1e-5 and cfg.trainer.batch_size == 50
    assert "bf16" in cfg.trainer  # the gan trainer group


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("model", ["alad", "egbad", "anogan", "ganomaly"])
def test_cuda_bf16_compile_and_resume(model, tmp_path):
    x = np.random.default_rng(0).uniform(-1, 1, size=(256, 3, 32, 32)).astype(np.float32)
    params = {"search_steps": 5} if model == "anogan" else {}

    def det(ckpt, callbacks=()):
        return create_detector(model, seed=0, checkpoint_dir=ckpt, callbacks=callbacks,
                               trainer={"device": "cuda", "epochs": 2, "batch_size": 64, "bf16": True,
                                        "compile": True, "progress": False}, **params)

    with pytest.raises(Interrupt):
        det(tmp_path, [stop_after(1)]).fit(x)
    resumed = det(tmp_path).fit(x)
    assert resumed.engine.use_bf16 and [h["epoch"] for h in resumed.history] == [1, 2]
    assert np.isfinite(resumed.score_samples(x[:50])).all()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("first, then", [("cuda", "cpu"), ("cpu", "cuda")])
def test_a_run_moves_between_the_gpu_and_the_cpu(first, then, tmp_path):
    x, test = data()
    with pytest.raises(Interrupt):
        alad(tmp_path, callbacks=[stop_after(2)], device=first).fit(x)
    resumed = alad(tmp_path, device=then).fit(x)
    assert resumed.resumed_from["device_moves"] == [{"epoch": 2, "from": first, "to": then}]
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3, 4]
    assert np.isfinite(resumed.score_samples(test)).all()


class TwoPhasesFixed(DetectorModule):
    """Phase "a" trains `a` on a loss that also depends on `b`; phase "b" has a zero loss. Without gradient
    isolation, phase a's gradient on `b` would leak into b's optimizer step."""

    discriminator_names = ("d",)
    generator_names = ("a", "b")
    critic_steps = 3

    def __init__(self):
        super().__init__()
        self.d = nn.Linear(2, 1)
        self.a = nn.Parameter(torch.tensor([0.5]))
        self.b = nn.Parameter(torch.tensor([3.0]))
        self.d_calls = 0

    def d_loss(self, x):
        self.d_calls += 1
        return self.d(x).pow(2).mean(), {}

    def score(self, x):
        return x.sum(1) * self.a

    def phases(self):
        return [("a", ("a",), lambda x: (((self.a * self.b - 1.0) ** 2).sum() + 0 * x.sum(), {})),
                ("b", ("b",), lambda x: ((0.0 * self.b).sum() + 0 * x.sum(), {}))]


def test_each_phase_steps_only_its_own_parameters_and_critics_step_several_times():
    module = TwoPhasesFixed()
    config = TrainerConfig.from_dict({"device": "cpu", "epochs": 2, "batch_size": 8, "lr": 0.01, "ema_decay": None,
                                      "progress": False})
    engine = Engine(module, config)
    engine.fit(np.ones((16, 2), np.float32))
    assert module.b.item() == 3.0  # phase a's gradient on b never reached b's optimizer
    assert module.a.item() != 0.5
    assert module.d_calls == 3 * 4  # critic_steps x (2 epochs x 2 batches)
    assert engine.loss_names == ["d_loss", "a_loss", "b_loss"]
    assert set(engine.history[-1]) >= {"d_loss", "a_loss", "b_loss"}


class NoDiscriminator(DetectorModule):
    generator_names = ("net",)

    def __init__(self):
        super().__init__()
        self.net = nn.Linear(2, 1)

    def g_loss(self, x):
        return (self.net(x) - 1.0).pow(2).mean(), {}

    def score(self, x):
        return self.net(x).squeeze(1)


def test_a_module_without_discriminators_trains_and_the_lr_schedule_steps():
    module = NoDiscriminator()
    config = TrainerConfig.from_dict({"device": "cpu", "epochs": 3, "batch_size": 8, "lr": 0.1, "ema_decay": None,
                                      "lr_milestones": [1, 2], "lr_gamma": 0.5, "weight_decay": 1e-4,
                                      "progress": False})
    engine = Engine(module, config)
    engine.fit(np.ones((16, 2), np.float32))
    assert engine.opt_d is None and engine.loss_names == ["g_loss"]
    assert engine.phase_opts["g"].param_groups[0]["lr"] == pytest.approx(0.1 * 0.25)
    assert engine.history[-1]["g_loss"] < engine.history[0]["g_loss"]


def test_checkpoint_interval_saves_every_nth_epoch_and_the_last(tmp_path):
    x, test = data()
    saved = []

    def record(engine, epoch):
        path = tmp_path / CHECKPOINT_FILE
        saved.append(torch.load(path, weights_only=False)["epoch"] if path.exists() else None)

    alad(tmp_path, callbacks=[record], epochs=5, checkpoint_interval=2).fit(x)
    assert saved == [None, 2, 2, 4, 5]


def test_checkpoint_seconds_spaces_checkpoints_in_time_and_keeps_the_last(tmp_path, monkeypatch):
    """Each epoch takes 10 s of a fake clock: with checkpoint_seconds=25 a checkpoint follows the first epoch
    that ends 25 s after the last one (or the start), and the last epoch always writes one."""
    import types

    from ganad_bench.training import engine as engine_module

    x, _ = data()
    now = [0.0]
    monkeypatch.setattr(engine_module, "time", types.SimpleNamespace(monotonic=lambda: now[0]))
    saved = []

    def record(engine, epoch):
        path = tmp_path / CHECKPOINT_FILE
        saved.append(torch.load(path, weights_only=False)["epoch"] if path.exists() else None)
        now[0] += 10.0

    alad(tmp_path, callbacks=[record], epochs=8, checkpoint_seconds=25).fit(x)
    assert saved == [None, None, None, 4, 4, 4, 7, 8]
