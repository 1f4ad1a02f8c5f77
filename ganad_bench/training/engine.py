"""The training engine shared by every deep detector: the GAN detectors (ALAD, EGBAD, AnoGAN, GANomaly,
RCGAN, MEMGAN, AMA) and the non-adversarial deep baselines (Deep SVDD, DCAE, MemAE, DAGMM, DSEBM).

    module = SomeDetectorModule(...)              # networks + losses + score (an `DetectorModule`)
    engine = Engine(module, TrainerConfig.from_dict(cfg.trainer), seed=0, checkpoint_dir="run/ckpt")
    engine.fit(x_train, x_val)                        # numpy float32, (n, d) or (n, C, H, W)
    scores = engine.score(x_test)                     # 1-D numpy, higher = more anomalous

What the engine does, in the order of DESIGN.md's speed rules:

* the device comes from `trainer.device` (`auto` | `cpu` | `cuda[:N]` | `mps`, `training.device.resolve_device`);
* the whole training set is copied to the device once and an epoch slices a `torch.randperm`
  (`data.tensors.RandpermBatches`; no DataLoader); the last incomplete batch is dropped (equal batches
  for BatchNorm, as ALAD's code does);
* each step is `module.critic_steps` discriminator updates (`d_loss`; none when the module has no
  discriminators) then one update per generator-side phase (`module.phases()`, by default one phase
  "g" = `g_loss` on `generator_names`; MEMGAN updates E, G and its memory in turn), the phases on the
  same real batch (`generator_batch: same`) or on a batch of a second permutation of the epoch
  (`reshuffled`, as the reference code of ALAD and EGBAD; `RandpermBatches`). Every phase has its
  own Adam optimizer and only its own parameters require gradients while its loss is backpropagated,
  so a phase never leaks gradients into another's parameters;
* the learning rate of every optimizer is `lr * lr_gamma ** (milestones passed)` for the epoch
  (`lr_milestones`, a step schedule as Deep SVDD's and AMA's code); `weight_decay` is Adam's L2 term;
* an exponential moving average (EMA) of all weights is kept after every step and is the network
  used for validation and scoring (ALAD appendix: decay 0.999). As TensorFlow's
  `ExponentialMovingAverage(num_updates=...)`, the decay is `min(decay, (1 + t) / (10 + t))` at step t
  (`ema_warmup`, on by default) so that short runs are not dominated by the initial weights;
  BatchNorm running statistics are copied, not averaged;
* bf16 autocast (`bf16`) and `torch.compile` of the two loss functions (`compile`) are opt-in and used
  on CUDA only (ignored elsewhere, with a warning); on CUDA the float32 convolutions and matrix products of
  training and scoring run in full float32 unless `tf32` (PyTorch's default would be TF32 convolutions);
* NaN / inf: a device-side flag accumulates `~isfinite(loss)` each step without a host sync and is read
  every `nan_check_every` steps and at the end of each epoch -> `errors.TrainingDiverged`;
* a checkpoint (`last.pt`: networks, optimizers, EMA, all RNG states, the permutation generator,
  epoch, step, early-stopping state, history) is written atomically after an epoch (every
  `checkpoint_interval` epochs once `checkpoint_seconds` have passed since the last one, and always after
  the last) when a `checkpoint_dir` is given, and `fit` resumes from it: an interrupted run continued from its last
  checkpoint ends with exactly the weights of an uninterrupted one (CPU, same seed). An epoch that has run
  `checkpoint_seconds` is checkpointed inside too, every that many seconds (`save_within_epoch`: the
  batches done, the epoch's loss sums so far and the batch generator's state at the epoch's start, from
  which the resumed epoch draws the same permutation and skips those batches; the module's epoch hook
  does not redo what it set in the networks at the epoch's start: `epoch_hook`);
* a fixed epoch budget by default; with `early_stopping_patience` and normal-only validation rows,
  training stops after that many epochs without a lower validation loss (`module.val_loss`, on the
  EMA network) (ALAD Table IX: patience 10) and scores with the weights it stopped with, as the reference
  code does, or with the best epoch's EMA weights (`early_stopping_restore_best`);
* a learning curve (`curve_every`, with a `curve` function the detector sets): every that many epochs and
  after the last, the epoch's record gets the normal-only validation loss and what `curve(engine)` returns
  (the detector's test metrics), before the checkpoint is written. It is reported, never read by training:
  the function runs with the RNG states and buffers restored afterwards, so a run's weights and scores
  are the same with or without it. Validation and curve points see the network as it will score: the
  module's `calibrate` runs first (MEMGAN's BatchNorm statistics) and its changes are put back afterwards,
  and it runs once more when training ends;
* a rich progress bar (on a terminal) with the losses and samples/s, and an epoch's log line at most every
  EPOCH_LOG_SECONDS (always for the last epoch, a curve point and an early stop).

Scoring (`score`) runs the EMA network in eval mode under `torch.no_grad()` in chunks of
`score_batch_size` rows, so the scores depend neither on the test order nor on the chunking.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import logging
import math
import os
import random
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ganad_bench.atomic import write_atomic
from ganad_bench.console import EpochProgress
from ganad_bench.data.tensors import RandpermBatches, in_chunks, to_device
from ganad_bench.errors import ConfigError, TrainingDiverged, first_line
from ganad_bench.provenance import code_version
from ganad_bench.training.device import float32_precision, resolve_device, restore_global_rng, save_global_rng
from ganad_bench.training.noise import RandomStream, seed_streams
from ganad_bench.training.settings import TrainerConfig

log = logging.getLogger("ganad_bench")
# models whose learning-curve cost has been warned about in this process (`Engine.warn_if_curve_dominates`)
_WARNED_CURVE_COST: set[str] = set()

CHECKPOINT_FILE = "last.pt"

# an epoch's line goes to the run's log at most once every EPOCH_LOG_SECONDS, and always for the last epoch, a
# learning-curve point and an early stop: DAGMM's 20,000 epochs of a fraction of a second each wrote 20,000
# lines (2 MB) a run; metrics.csv keeps every epoch, and the progress bar shows every epoch's line
EPOCH_LOG_SECONDS = 10.0


class DetectorModule(nn.Module):
    """One deep detector's networks, losses and anomaly score (adversarial or not: the autoencoder and
    energy baselines simply have no discriminators). Subclasses set the names of their
    discriminator and generator-side (generator, encoder, memory) submodules or parameters and
    implement the losses:

    * `d_loss(x) -> (loss, stats)`: the discriminators' loss on a real batch (samples its own z);
      not needed when `discriminator_names` is empty (the non-adversarial deep baselines);
    * `g_loss(x) -> (loss, stats)`: the generator/encoder loss on the same kind of batch;
    * `phases()`: the generator-side updates of one step, in order, as (name, parameter names, loss
      function); the default is one phase ("g", `generator_names`, `g_loss`);
    * `critic_steps`: discriminator updates per generator step (WGAN critics: 5);
    * `on_epoch_start(epoch, x_train)`: called before every training epoch with the number of epochs
      already done (restored on resume) and the device-resident training rows (default: nothing; AMA
      gates its negatives by epoch, Deep SVDD resets its soft-boundary radius);
    * `calibrate(x_train, batch_size)`: statistics the score reads that training does not leave as scoring
      needs them, fitted on the device-resident training rows before every validation or curve point (and
      put back afterwards, so training goes on with its own) and once training has ended (default: nothing;
      MEMGAN re-estimates its BatchNorm statistics through its scoring path);
    * `initialise_from_data(x_train)`: an initialisation that reads the (preprocessed) training rows, called
      when training starts from scratch, not when it resumes from a checkpoint whose weights would replace it
      (default: nothing; DCAE's and Deep SVDD's learnt first-layer filters, `kit.lenet`);
    * `score(x) -> (n,)`: anomaly scores, called in eval mode under `no_grad`;
    * `val_loss(x) -> scalar`: a loss on normal validation rows (default: the mean score).

    `stats` are dicts of detached scalar tensors (logged, never synced per step)."""

    discriminator_names: tuple[str, ...] = ()
    generator_names: tuple[str, ...] = ()
    critic_steps: int = 1
    # whether `training.pack` may train several runs of this module as one stacked model: every random number
    # comes from the module's `RandomStream`s and no per-member state lives outside its parameters and buffers
    packable: bool = True

    def __init__(self):
        super().__init__()
        # the losses' random numbers (latent codes, noise): a counter-based stream keyed by the run (`training.noise`)
        self.noise = RandomStream()

    def initialise_from_data(self, x_train: np.ndarray) -> None:
        """Before the first epoch of a training from scratch (class docstring)."""

    def named_group(self, names: Iterable[str]) -> list[nn.Parameter]:
        """The parameters of the named submodules (or of named bare `nn.Parameter`s, e.g. a memory matrix)."""
        params = []
        for name in names:
            obj = getattr(self, name)
            params.extend([obj] if isinstance(obj, nn.Parameter) else obj.parameters())
        return params

    def discriminator_parameters(self) -> list[nn.Parameter]:
        return self.named_group(self.discriminator_names)

    def phases(self) -> list[tuple[str, tuple[str, ...], Callable]]:
        return [("g", self.generator_names, self.g_loss)]

    def on_epoch_start(self, epoch: int, x_train: torch.Tensor) -> None:
        pass

    def calibrate(self, x_train: torch.Tensor, batch_size: int) -> None:
        pass

    def d_loss(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        raise NotImplementedError

    def g_loss(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        raise NotImplementedError

    def score(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def val_loss(self, x: torch.Tensor) -> torch.Tensor:
        return self.score(x).mean()


class EMA:
    """Exponential moving average of a module's parameters (a frozen deep copy, always in eval mode)."""

    def __init__(self, module: nn.Module, decay: float, warmup: bool = True):
        self.decay = float(decay)
        self.warmup = warmup
        self.steps = 0
        self.module = copy.deepcopy(module).eval().requires_grad_(False)

    def rate(self, steps: int | None = None) -> float:
        """The decay of the next update, after `steps` updates (default: the ones done; a pack asks for each
        member's own count)."""
        steps = self.steps if steps is None else steps
        if self.warmup:
            return min(self.decay, (1.0 + steps) / (10.0 + steps))
        return self.decay

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        decay = self.rate()
        self.steps += 1
        ema_params = list(self.module.parameters())
        params = [p.detach() for p in module.parameters()]
        torch._foreach_lerp_(ema_params, params, 1.0 - decay)
        for ema_buffer, buffer in zip(self.module.buffers(), module.buffers(), strict=True):
            ema_buffer.copy_(buffer)

    def state_dict(self) -> dict:
        return {"module": self.module.state_dict(), "steps": self.steps}

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state["module"])
        self.steps = int(state["steps"])


def rng_states(batches: RandpermBatches) -> dict:
    """Every random stream of a run, in types that `torch.load(weights_only=True)` reads back (NumPy's
    state as a tensor, no pickled NumPy objects)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"python": random.getstate(), "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), int(pos),
                                                    int(has_gauss), float(cached)),
             "torch": torch.get_rng_state(), "batches": batches.generator.get_state(),
             "batches_device": batches.generator.device.type}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_states(state: dict, batches: RandpermBatches, seed: int, epoch: int) -> str | None:
    """Restore `rng_states`. The batch order's generator lives on the data's device, and a CUDA generator's
    state (Philox: a seed and an offset) cannot continue as the CPU's (Mersenne Twister) or the reverse: a
    checkpoint resumed on another kind of device draws its batch orders from then on from a generator seeded by
    (seed, epoch) on the new device (`RandpermBatches.reseed`). Returns the device it was written on when that
    happened, else None."""
    random.setstate(state["python"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    written_on = state.get("batches_device") or generator_device_of(state["batches"])
    if written_on == batches.generator.device.type:
        batches.generator.set_state(state["batches"])
        return None
    batches.reseed(seed, epoch)
    return written_on


def generator_device_of(generator_state: torch.Tensor) -> str:
    """The device type of a checkpoint written before it was recorded: the CPU generator's state has its own
    size (5,056 bytes), a CUDA one's is 16."""
    return "cpu" if generator_state.numel() == torch.Generator().get_state().numel() else "cuda"


EpochCallback = Callable[["Engine", int], None]


@dataclasses.dataclass
class EpochData:
    """What the epochs of one `fit` read: the training batches, the validation rows, whether to stop early."""

    batches: RandpermBatches
    val: torch.Tensor | None
    early_stopping: bool



def warn_cuda_only_switches(config: TrainerConfig, device: torch.device) -> None:
    """A warning on the terminal for `trainer.bf16` / `tf32` / `compile` asked for off CUDA, where they are
    ignored: the run's row keeps the settings it was asked for, and its table cell reads as set."""
    asked = [f"trainer.{name}=true" for name in ("bf16", "tf32", "compile") if getattr(config, name)]
    if asked and device.type != "cuda":
        log.warning("%s: CUDA only, so this run on %s trains in float32, uncompiled (its row records device %s)",
                    " and ".join(asked), device.type, device.type)

class Engine:
    """Trains one `DetectorModule` and scores with its EMA copy (module docstring).

    `callbacks` are called as `callback(engine, epoch)` after each epoch's checkpoint (epoch counts
    from 1); an exception raised there interrupts `fit` like a killed process would (tests use it)."""

    last_epoch_log = -math.inf  # when an epoch's line last went to the log (EPOCH_LOG_SECONDS)

    # the runs that handed in this stage together (`training.pack.Rendezvous`), itself included, and so shared its
    # wall time: unlike `pack_size` (the members stacked in one epoch) it counts the members that stopped early or
    # trained one after another
    pack_members = 1

    def __init__(self, module: DetectorModule, config: TrainerConfig, seed: int = 0,
                 checkpoint_dir: str | Path | None = None, callbacks: Iterable[EpochCallback] = (),
                 fingerprint: dict | None = None):
        self.config = config
        self.seed = int(seed)
        self.device = resolve_device(config.device)
        self.module = module.to(self.device)
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self.callbacks = list(callbacks)
        self.fingerprint = dict(fingerprint or {})
        adam = functools.partial(torch.optim.Adam, betas=tuple(config.betas), weight_decay=float(config.weight_decay),
                                 # the fused kernel: one pass over the moments instead of a dozen (4.5x faster on
                                 # CPU), and the kernel a pack steps its members with (`training.pack`)
                                 fused=self.device.type in ("cpu", "cuda"))
        d_params = module.discriminator_parameters()
        self.opt_d = adam(d_params, lr=float(config.lr_d or config.lr)) if d_params else None
        self.phases = module.phases()
        self.phase_params = {name: module.named_group(names) for name, names, _ in self.phases}
        # per phase, the requires_grad flag of every parameter of the module (only its own are trainable)
        self._all_params = list(module.parameters())
        self._phase_flags = {}
        for name, params in self.phase_params.items():
            own = {id(q) for q in params}
            self._phase_flags[name] = [id(p) in own for p in self._all_params]
        self.phase_opts = {name: adam(params, lr=float(config.lr))
                           for name, params in self.phase_params.items()}
        self.loss_names = (["d_loss"] if self.opt_d is not None else []) + [f"{name}_loss" for name, _, _ in
                                                                             self.phases]
        # the run's random streams: keyed by its seed and stage, the same whether it trains alone or in a pack
        seed_streams(module, self.seed, salt=str(self.fingerprint.get("stage") or ""))
        self.ema = EMA(module, config.ema_decay, config.ema_warmup) if config.ema_decay else None
        on_cuda = self.device.type == "cuda"
        self.use_bf16 = bool(config.bf16) and on_cuda
        self.use_compile = bool(config.compile) and on_cuda
        warn_cuda_only_switches(config, self.device)
        self._d_loss = module.d_loss
        self._phase_losses = {name: fn for name, _, fn in self.phases}
        if self.use_compile:
            self.compile_losses()
        self.pack_member: str | None = None  # "run k/K" while it trains in a pack (`training.pack`)
        self.pack_size = 1  # K while it trains in a pack of K runs
        # the run's own global state (its log file, its Hydra job config) around the pack trainer's calls for this
        # member: a pack trains in the launching thread, whose state is whichever member ran last (`training.pack`)
        self.member_context: Callable[[], AbstractContextManager] = nullcontext
        # the learning curve's test metrics at an epoch (`DeepDetector.learning_curve_point`; None: no curve)
        self.curve: Callable[[Engine], dict] | None = None
        self.start_progress()
        self.reset_step_stats()

    def start_progress(self) -> None:
        """The training's progress before its first step (a checkpoint's `_restore` replaces it)."""
        self.epoch = 0
        self.step = 0
        self.best_val = math.inf
        self.bad_epochs = 0
        self.best_state: dict | None = None
        self.stopped_early = False
        self.history: list[dict] = []
        # {epoch, code_version} of the checkpoint this engine resumed from (None: trained from the start)
        self.resumed_from: dict | None = None
        # {epoch, from, to} per resume on another kind of device, kept by every later checkpoint for the row
        self.device_moves: list[dict] = []
        self.last_checkpoint = time.monotonic()  # when the last checkpoint was written (or training began)
        # where a checkpoint inside the current epoch left it: {batches_done, loss_sums} (None: at its start),
        # and the seconds that epoch had trained before this process took it up
        self.resume_point: dict | None = None
        self.epoch_seconds_before = 0.0
        self.epoch_started = time.monotonic()  # when this process started the current epoch (or its rest)

    def compile_losses(self) -> None:
        """`torch.compile` the step's loss functions (`trainer.compile` on CUDA; on any device by hand, as
        `scripts/pack_benchmark.py --cpu-compile` measures it)."""
        if self.opt_d is not None:
            self._d_loss = torch.compile(self.module.d_loss)
        self._phase_losses = {name: torch.compile(fn) for name, _, fn in self.phases}

    # ----------------------------------------------------------------------------------- scoring
    @property
    def scoring_module(self) -> DetectorModule:
        return self.ema.module if self.ema is not None else self.module

    def autocast(self):
        return torch.autocast("cuda", dtype=torch.bfloat16) if self.use_bf16 else nullcontext()

    def float32_mode(self) -> AbstractContextManager:
        """TF32 or full float32 for float32 convolutions and matrix products (`trainer.tf32`; CUDA only): around
        whole steps and scoring passes, backward included (autocast covers only the forward)."""
        return float32_precision(self.device, self.config.tf32)

    @torch.no_grad()
    def score(self, x: np.ndarray | torch.Tensor, method: str = "score") -> np.ndarray:
        """`module.<method>(chunk)` of the scoring network over `x` in chunks (`method`: another per-row
        statistic, e.g. AMA's `r_score`)."""
        module = self.scoring_module
        was_training = module.training
        module.eval()
        fn = getattr(module, method)
        parts = []
        rows = torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32))
        with self.float32_mode():
            for chunk in in_chunks(rows, self.config.score_batch_size):
                # a fresh, aligned, row-major copy: CPU kernels round differently with the input's memory layout
                # and alignment, and a run rescoring its own test file must reproduce its stored scores bit for bit
                parts.append(fn(chunk.to(self.device, copy=True)).float().reshape(-1).cpu())
        module.train(was_training)
        return torch.cat(parts).double().numpy() if parts else np.empty(0)

    @torch.no_grad()
    def validation_loss(self, x_val: torch.Tensor) -> float:
        module = self.scoring_module
        module.eval()
        total, n = 0.0, 0
        with self.float32_mode():
            for chunk in in_chunks(x_val, self.config.score_batch_size):
                total += float(module.val_loss(chunk)) * len(chunk)
                n += len(chunk)
        return total / max(n, 1)

    # ---------------------------------------------------------------------------------- training
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        opts = {"d": self.opt_d} if self.opt_d is not None else {}
        return {**opts, **self.phase_opts}

    def _set_lr(self) -> None:
        """The step schedule: every base learning rate times lr_gamma per milestone already passed."""
        passed = sum(1 for m in self.config.lr_milestones if self.epoch >= int(m))
        factor = float(self.config.lr_gamma) ** passed
        for name, opt in self.optimizers().items():
            base = float(self.config.lr_d or self.config.lr) if name == "d" else float(self.config.lr)
            for group in opt.param_groups:
                group["lr"] = base * factor

    def reset_step_stats(self) -> None:
        """Zero the device-side accumulators of `train_step` (the epoch's loss sums and NaN flag)."""
        self._nonfinite = torch.zeros((), dtype=torch.bool, device=self.device)
        self._loss_sums = torch.zeros(len(self.loss_names), device=self.device)

    @property
    def loss_sums(self) -> torch.Tensor:
        """The epoch's loss sums so far, on the device (`train_step`; a pack's, after `set_step_stats`)."""
        return self._loss_sums

    def set_step_stats(self, loss_sums: torch.Tensor, nonfinite: torch.Tensor) -> None:
        """The epoch's accumulators as a pack computed them for this run (`training.pack`)."""
        self._loss_sums, self._nonfinite = loss_sums, nonfinite

    def diverged(self) -> bool:
        """Whether a loss was NaN or inf since the last `reset_step_stats` (one host sync)."""
        return bool(self._nonfinite)

    def train_step(self, x: torch.Tensor, x_gen: torch.Tensor | None = None) -> None:
        """One step on the device batch `x`: `critic_steps` discriminator updates, then each generator-side
        phase on `x_gen` (default: `x`; `trainer.generator_batch`), then the EMA; losses are accumulated on
        the device (no host sync)."""
        with self.float32_mode():
            self._train_step(x, x_gen)

    def _train_step(self, x: torch.Tensor, x_gen: torch.Tensor | None) -> None:
        x_gen = x if x_gen is None else x_gen
        losses = []
        if self.opt_d is not None:
            for _ in range(max(1, int(self.module.critic_steps))):
                with self.autocast():
                    d_loss, _ = self._d_loss(x)
                self.opt_d.zero_grad(set_to_none=True)
                d_loss.backward()
                self.opt_d.step()
            losses.append(d_loss.detach().float())
        try:
            for name, _, _ in self.phases:
                for p, flag in zip(self._all_params, self._phase_flags[name], strict=True):
                    p.requires_grad_(flag)
                with self.autocast():
                    loss, _ = self._phase_losses[name](x_gen)
                opt = self.phase_opts[name]
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                losses.append(loss.detach().float())
        finally:
            for p in self._all_params:
                p.requires_grad_(True)
        if self.ema is not None:
            self.ema.update(self.module)
        losses = torch.stack(losses)
        self._nonfinite |= ~torch.isfinite(losses).all()
        self._loss_sums += losses
        self.step += 1

    def fit(self, x_train: np.ndarray, x_val: np.ndarray | None = None) -> Engine:
        """Train on `x_train` (early stopping on `x_val` when set): a pack of one (`training.pack`)."""
        from ganad_bench.training.pack import train_pack

        outcome = train_pack([self], [(x_train, x_val)])[0]
        if isinstance(outcome, BaseException):
            raise outcome
        return self

    def prepare(self, x_train: np.ndarray, x_val: np.ndarray | None) -> EpochData:
        """The device-resident data of `fit`, its batches, and the state resumed from the checkpoint."""
        config = self.config
        x = to_device(np.asarray(x_train, dtype=np.float32), self.device)
        val = to_device(np.asarray(x_val, dtype=np.float32), self.device) if x_val is not None and len(x_val) else None
        if len(x) == 0:
            raise ConfigError("no training rows: the protocol left the normal training set empty")
        if len(x) < int(config.batch_size):  # e.g. a tiny protocol.train_fraction: the run still trains, on little
            log.warning("%d training rows, fewer than trainer.batch_size=%d: each epoch is one step on all of them",
                        len(x), int(config.batch_size))
        batches = RandpermBatches(x, batch_size=min(int(config.batch_size), len(x)), seed=self.seed,
                                  reshuffled=config.generator_batch == "reshuffled")
        early_stopping = config.early_stopping_patience is not None and val is not None
        if config.early_stopping_patience is not None and val is None:
            log.info("trainer.early_stopping_patience is set but there are no validation rows: "
                     "training for the full %d epochs", config.epochs)
        if self.checkpoint_dir is not None:
            self._maybe_resume(batches)
        if self.resumed_from is None:
            self.module.initialise_from_data(x_train)
            if self.ema is not None:  # the average starts from the initialised weights, as it would have
                self.ema.module.load_state_dict(self.module.state_dict())
        self.last_checkpoint = time.monotonic()
        return EpochData(batches, val, early_stopping)

    @property
    def training_done(self) -> bool:
        return self.epoch >= int(self.config.epochs) or self.stopped_early

    def start_epoch(self, data: EpochData) -> None:
        """Before an epoch's steps: train mode, the epoch's learning rate, the module's epoch hook, zeroed sums
        (or, for an epoch resumed inside, the sums of its batches done, which `batches_done` skips)."""
        self.module.train()
        self._set_lr()
        self.epoch_hook(data)
        self.reset_step_stats()
        if self.resume_point is not None:
            self._loss_sums = self.resume_point["loss_sums"].to(self.device).clone()
        self.epoch_started = time.monotonic()

    def epoch_hook(self, data: EpochData) -> None:
        """The module's `on_epoch_start`. In an epoch resumed inside, the hook ran at the epoch's true start,
        before the interruption, and what it set in the networks is in the checkpoint: run again, it keeps
        only what it sets outside them (AMA's epoch counter), not what it would compute from the resumed
        weights (Deep SVDD's radius, set from the weights of the epoch's start)."""
        if self.resume_point is None or not self.has_epoch_hook:
            self.module.on_epoch_start(self.epoch, data.batches.x)
            return
        saved = {name: value.clone() for name, value in self.module.state_dict().items()}
        self.module.on_epoch_start(self.epoch, data.batches.x)
        self.module.load_state_dict(saved)

    @property
    def batches_done(self) -> int:
        """The batches of the current epoch trained before its last checkpoint inside it (0: none)."""
        return int(self.resume_point["batches_done"]) if self.resume_point is not None else 0

    @property
    def has_epoch_hook(self) -> bool:
        """Whether the module changes its own state at each epoch's start (Deep SVDD's radius, AMA's epoch)."""
        return type(self.module).on_epoch_start is not DetectorModule.on_epoch_start

    def finish(self, data: EpochData) -> None:
        """After the last epoch: the best EMA weights when early stopping kept them to restore, eval mode."""
        if data.early_stopping and self.config.early_stopping_restore_best and self.best_state is not None:
            self.scoring_module.load_state_dict(self.best_state)
        self.calibrate(data)
        self.scoring_module.eval()

    def calibrate(self, data: EpochData) -> None:
        """The scoring network's statistics fitted on the training rows (`DetectorModule.calibrate`)."""
        self.scoring_module.calibrate(data.batches.x, data.batches.batch_size)

    def end_epoch(self, data: EpochData, steps: int, elapsed: float, bar: EpochProgress,
                  checkpoint: bool | None = None) -> None:
        """An epoch's record (losses, validation, early stopping), log line, checkpoint and callbacks.
        `checkpoint`: whether to write one, decided by the caller (`will_checkpoint`, a pack decides before it
        writes its members' state back); None: decided here."""
        if checkpoint is None:
            checkpoint = self.will_checkpoint(self.epoch + 1)
        elapsed += self.epoch_seconds_before  # an epoch resumed inside: its time before the interruption too
        self.resume_point, self.epoch_seconds_before = None, 0.0
        means = (self._loss_sums / max(steps, 1)).tolist()  # the one host sync of the epoch
        self.epoch += 1
        record = {"epoch": self.epoch, **dict(zip(self.loss_names, means, strict=True)),
                  "samples_per_s": steps * data.batches.batch_size / max(elapsed, 1e-9), "seconds": elapsed}
        on_curve = self.on_curve(self.epoch)
        validates = data.val is not None and (data.early_stopping or self.epoch == self.config.epochs or on_curve)
        if validates or on_curve:
            with self.buffers_put_back():  # training goes on with its own statistics
                self.calibrate(data)
                if validates:
                    record["val_loss"] = self._checked_validation_loss(data.val)
                if data.early_stopping:
                    self._early_stopping_update(record["val_loss"])
                if on_curve:
                    started = time.monotonic()
                    record.update(self.curve_point())
                    record["curve_seconds"] = time.monotonic() - started
                    self.warn_if_curve_dominates(record["curve_seconds"], elapsed)
        self.history.append(record)
        bar.describe(self._epoch_message(record))
        if checkpoint or (self.stopped_early and self.will_checkpoint(None)):
            self.save_checkpoint(data.batches)
            self.last_checkpoint = time.monotonic()
        for callback in self.callbacks:
            callback(self, self.epoch)

    def will_checkpoint(self, epoch: int | None) -> bool:
        """Whether the end of `epoch` writes a checkpoint (None: whether this engine writes checkpoints at all):
        after the last epoch always; else every `checkpoint_interval` epochs once `checkpoint_seconds` have
        passed since the last checkpoint (or the start of training). An early stop writes one too."""
        if self.checkpoint_dir is None or not self.config.checkpoint_every_epoch:
            return False
        if epoch is None or epoch >= int(self.config.epochs):
            return True
        on_interval = epoch % max(1, int(self.config.checkpoint_interval)) == 0
        return on_interval and time.monotonic() - self.last_checkpoint >= float(self.config.checkpoint_seconds)

    def checkpoints_within_epoch(self) -> bool:
        """Whether this run also writes checkpoints inside an epoch: when it writes them at all, with a positive
        `checkpoint_seconds`. A pack epoch of KDD99 rows takes 15-20 min on a CPU core: a kill between two
        epoch ends would lose that much of every member."""
        return self.will_checkpoint(None) and float(self.config.checkpoint_seconds) > 0

    def within_epoch_checkpoint_due(self) -> bool:
        """Whether `checkpoint_seconds` have passed both since the last checkpoint and since this epoch started:
        epochs shorter than that are checkpointed at their ends only (`will_checkpoint`), as before."""
        since = max(self.last_checkpoint, self.epoch_started)
        return time.monotonic() - since >= float(self.config.checkpoint_seconds)

    def save_within_epoch(self, batches: RandpermBatches, epoch_generator: torch.Tensor, batches_done: int,
                          loss_sums: torch.Tensor, seconds: float) -> None:
        """A checkpoint inside the current epoch, after `batches_done` of its batches: the state of the moment
        (networks, optimisers, EMA, step count, every random stream) but the batch generator's state at the
        epoch's start (`epoch_generator`), from which the resumed epoch draws the same permutation and skips
        the batches done (`RandpermBatches.iterate`), and the epoch's loss sums so far. `seconds`: the epoch's
        training time in this process. It is also where this process goes on from if the epoch runs again
        (a pack out of device memory: `training.pack.run_epoch`)."""
        self.resume_point = {"batches_done": int(batches_done), "loss_sums": loss_sums.detach().cpu().clone()}
        within = {**self.resume_point, "generator": epoch_generator, "seconds": self.epoch_seconds_before + seconds}
        self.save_checkpoint(batches, within)
        self.last_checkpoint = time.monotonic()

    def reads_state_after(self, data: EpochData, checkpoint: bool) -> bool:
        """Whether the end of the coming epoch reads the networks or optimisers (validation, early stopping,
        a checkpoint, callbacks, the end of training): a pack writes its members back first."""
        last = self.epoch + 1 >= int(self.config.epochs)
        validates = data.val is not None and (data.early_stopping or last)
        return checkpoint or validates or last or bool(self.callbacks) or self.on_curve(self.epoch + 1)

    def on_curve(self, epoch: int) -> bool:
        """Whether the end of `epoch` adds a learning-curve point: every `curve_every` epochs and the last."""
        every = self.config.curve_every
        if self.curve is None or every is None:
            return False
        return epoch % int(every) == 0 or epoch >= int(self.config.epochs)

    def warn_if_curve_dominates(self, seconds: float, epoch_seconds: float) -> None:
        """One warning per process and model when a curve point took longer than the epochs of training between
        two points: every point scores the whole test split, which for a latent search (AnoGAN) or a pack (its
        members' points come one after another) can cost many times the training it follows."""
        between = int(self.config.curve_every) * epoch_seconds
        model = type(self.scoring_module).__name__
        if seconds * self.pack_size <= between or model in _WARNED_CURVE_COST:
            return
        _WARNED_CURVE_COST.add(model)
        each = f" for each of the pack's {self.pack_size} runs, one after another," if self.pack_size > 1 else ""
        log.warning(f"a learning-curve point took {seconds:.0f} s{each} more than the {self.config.curve_every} "
                    f"epoch(s) of training before it ({between:.0f} s): raise trainer.curve_every, or set it to "
                    f"null, to keep the curve from multiplying the run's time")

    def curve_point(self) -> dict:
        """`curve(self)`, with every RNG state put back afterwards, inside `end_epoch`'s block that puts every
        buffer of the networks back (module docstring): scoring may draw random numbers (AnoGAN's latent
        search) or fit statistics into buffers (AMA's R-score Gaussian), and training must go on as if nothing
        had been evaluated."""
        state = save_global_rng()
        try:
            # the CUDA generators too, which the pack's switches never need (its members share one device)
            with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
                return dict(self.curve(self))
        finally:
            restore_global_rng(state)

    @contextmanager
    def buffers_put_back(self):
        """Every buffer of the networks (BatchNorm statistics, spectral-norm vectors, random streams, fitted
        scores) as it was before the block, whatever the block did to them."""
        modules = {id(m): m for m in (self.module, self.scoring_module)}.values()
        buffers = [(b, b.detach().clone()) for m in modules for b in m.buffers()]
        try:
            yield
        finally:
            with torch.no_grad():
                for buffer, saved in buffers:
                    buffer.copy_(saved)

    def check_finite(self, steps: int) -> None:
        """`TrainingDiverged` when a loss was NaN or inf since the epoch started (one host sync)."""
        if self.diverged():
            raise self.divergence(steps)

    def divergence(self, steps: int) -> TrainingDiverged:
        """The error of a loss that became NaN or inf by step `steps` of this epoch (alone or in a pack)."""
        return TrainingDiverged(
            f"a training loss became NaN or inf in epoch {self.epoch + 1} (by step {steps} of the epoch, "
            f"lr={self.config.lr}, bf16={self.use_bf16}): lower trainer.lr or turn trainer.bf16 off")

    def _checked_validation_loss(self, val: torch.Tensor) -> float:
        loss = self.validation_loss(val)
        if not math.isfinite(loss):
            raise TrainingDiverged(f"validation loss is {loss} after epoch {self.epoch}: "
                                   f"training diverged (try a lower trainer.lr)")
        return loss

    def _early_stopping_update(self, val_loss: float) -> None:
        """Stop after `early_stopping_patience` epochs without improvement; keep the best EMA weights where they
        are to be restored."""
        if val_loss < self.best_val - float(self.config.early_stopping_min_delta):
            self.best_val, self.bad_epochs = val_loss, 0
            if self.config.early_stopping_restore_best:
                self.best_state = {k: v.detach().cpu().clone()
                                   for k, v in self.scoring_module.state_dict().items()}
        else:
            self.bad_epochs += 1
            if self.bad_epochs >= int(self.config.early_stopping_patience):
                self.stopped_early = True

    def _epoch_message(self, record: dict) -> str:
        """The epoch's log line (also shown on the progress bar)."""
        losses = " ".join(f"{name} {record[name]:.4f}" for name in self.loss_names)
        message = f"epoch {self.epoch}/{self.config.epochs} {losses} {record['samples_per_s']:.0f} samples/s"
        if self.pack_member:  # trained in a pack: which member (samples/s: the member's share of the pack's time)
            message = f"{self.pack_member} of the pack (seed {self.seed}): {message}"
        if "val_loss" in record:
            message += f" val_loss {record['val_loss']:.4f}"
        if "curve_seconds" in record:
            message += f" (curve point {record['curve_seconds']:.1f} s)"
        if self.stopped_early:
            message += f" (early stop: best val_loss {self.best_val:.4f})"
        now = time.monotonic()
        if now - self.last_epoch_log >= EPOCH_LOG_SECONDS or self.training_done or "curve_seconds" in record:
            log.info(message)
            self.last_epoch_log = now
        return message

    # ------------------------------------------------------------------------------ checkpoints
    def state_dict(self, batches: RandpermBatches, within_epoch: dict | None = None) -> dict:
        """The checkpoint's contents; `within_epoch`: where inside the current epoch (`save_within_epoch`)."""
        rng = rng_states(batches)
        if within_epoch is not None:
            rng["batches"] = within_epoch["generator"]
            within_epoch = {k: v for k, v in within_epoch.items() if k != "generator"}
        return {
            "fingerprint": self.fingerprint,
            "code_version": code_version()["label"],
            "module": self.module.state_dict(),
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers().items()},
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "rng": rng,
            "epoch": self.epoch,
            "within_epoch": within_epoch,
            "step": self.step,
            "best_val": self.best_val,
            "bad_epochs": self.bad_epochs,
            "best_state": self.best_state,
            "stopped_early": self.stopped_early,
            # one string, not thousands of pickled floats: saving it every epoch stays cheap for 1000-epoch runs
            "history": json.dumps(self.history),
            "device_moves": json.dumps(self.device_moves),
        }

    def save_checkpoint(self, batches: RandpermBatches, within_epoch: dict | None = None) -> Path:
        """`last.pt`, written to a uniquely named temporary file in the same folder and renamed over the old
        one: a kill at any moment leaves the previous checkpoint or the new one, never a partial file, and
        two processes never share a temporary name."""
        state = self.state_dict(batches, within_epoch)
        return write_atomic(self.checkpoint_dir / CHECKPOINT_FILE, lambda out: torch.save(state, out), binary=True)

    def _maybe_resume(self, batches: RandpermBatches) -> None:
        path = self.checkpoint_dir / CHECKPOINT_FILE
        if not path.exists():
            return
        try:
            # weights_only: tensors and plain Python values only, so a crafted file cannot run code; on the
            # CPU (RNG states must stay CPU tensors; load_state_dict copies weights to the device)
            state = torch.load(path, map_location="cpu", weights_only=True)
            missing = CHECKPOINT_KEYS - set(state)
        except Exception as err:  # truncated, empty, not a checkpoint, or holding objects it may not load
            set_aside(path, f"is unreadable ({type(err).__name__}: {first_line(err)[:200]})")
            return
        if missing:
            set_aside(path, f"is incomplete (no {', '.join(sorted(missing))})")
            return
        same_optimizers = set(state["optimizers"]) == set(self.optimizers())
        if not same_training(state["fingerprint"], self.fingerprint) or not same_optimizers:
            log.warning("checkpoint %s was written by a different model/data/trainer setup: starting afresh", path)
            return
        try:
            written_on = self._restore(state, batches)
        except Exception as err:
            set_aside(path, f"could not be restored ({type(err).__name__}: {first_line(err)[:200]})",
                      then="this run stops")
            raise RuntimeError(f"checkpoint {path} could not be restored and was set aside: run again to start "
                               f"this run over") from err
        if state["code_version"] != code_version()["label"]:
            log.warning("checkpoint %s was written by code version %s; resuming with %s", path,
                        state["code_version"], code_version()["label"])
        self.resumed_from = {"epoch": self.epoch, "code_version": state["code_version"]}
        if self.resume_point is not None:
            self.resumed_from["batches_done"] = self.batches_done
        if self.device_moves:  # in the row: such a run is not the one either device would have trained alone
            self.resumed_from["device_moves"] = list(self.device_moves)
        if written_on is not None:
            log.warning("checkpoint %s was written on %s and resumes on %s: from epoch %d on, its batch orders come "
                        "from a generator seeded by (seed, epoch) on %s (the %s generator's stream cannot go on "
                        "there); weights, optimiser and every other stream resume exactly", path, written_on,
                        self.device, self.epoch + 1, self.device, written_on)
        inside = (f" and {self.batches_done} of epoch {self.epoch + 1}'s {len(batches)} batches"
                  if self.resume_point is not None else "")
        log.info("resumed from %s after epoch %d%s", path, self.epoch, inside)

    def _restore(self, state: dict, batches: RandpermBatches) -> str | None:
        """The checkpoint's state into this engine; returns the device type it was written on where that is
        not this engine's (`set_rng_states`), else None."""
        self.module.load_state_dict(state["module"])
        for name, opt in self.optimizers().items():
            opt.load_state_dict(state["optimizers"][name])
        if self.ema is not None and state["ema"] is not None:
            self.ema.load_state_dict(state["ema"])
        written_on = set_rng_states(state["rng"], batches, self.seed, int(state["epoch"]))
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        self.best_val, self.bad_epochs = float(state["best_val"]), int(state["bad_epochs"])
        self.best_state = state["best_state"]
        self.stopped_early = bool(state["stopped_early"])
        self.history = json.loads(state["history"])
        self.device_moves = json.loads(state.get("device_moves", "[]"))
        within = state.get("within_epoch")  # None: written at an epoch's end (or before checkpoints inside one)
        if within is not None:
            if not 0 <= int(within["batches_done"]) <= len(batches):
                raise ValueError(f"{within['batches_done']} batches done of an epoch of {len(batches)}")
            self.resume_point = {"batches_done": int(within["batches_done"]), "loss_sums": within["loss_sums"]}
            self.epoch_seconds_before = float(within["seconds"])
        if written_on is not None:
            self.device_moves.append({"epoch": self.epoch, "from": written_on, "to": torch.device(self.device).type})
        return written_on


def same_training(saved: dict, current: dict) -> bool:
    """Whether a checkpoint's fingerprint describes this engine's training: equal but for the scoring-only
    parameters (`training_params`, where both fingerprints have it; one written before it existed is compared
    with everything else, its full `params` included)."""
    ignored = "params" if "training_params" in saved and "training_params" in current else "training_params"
    return ({k: v for k, v in saved.items() if k != ignored} == {k: v for k, v in current.items() if k != ignored})


CHECKPOINT_KEYS = {"fingerprint", "code_version", "module", "optimizers", "ema", "rng", "epoch", "step", "best_val",
                   "bad_epochs", "best_state", "stopped_early", "history"}


def set_aside(path: Path, why: str, then: str = "training starts over") -> Path:
    """Rename a checkpoint that cannot be used to `<name>.bad-<time>` (kept for inspection) and warn: the run
    starts over instead of failing on it at every retry. `why` completes "checkpoint <path> ..."."""
    target = path.with_name(f"{path.name}.bad-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
    os.replace(path, target)
    log.warning("checkpoint %s %s: moved to %s, %s", path, why, target.name, then)
    return target
