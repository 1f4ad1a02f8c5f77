"""Packs: several runs of one configuration (differing in seed and / or normal class) trained as one stacked
model in one process.

Small anomaly-detection networks are dispatch-bound: one run's step is mostly the launching of hundreds of
tiny kernels. A pack stacks its K members' parameters along a leading member axis and evaluates every
loss once for all of them (`torch.func.vmap` over `torch.func.functional_call` of the module's own loss
methods), so each kernel does K runs' work. Each member keeps everything its run has alone:

* its own data (class), split, batch order (its `RandpermBatches` generator) and random streams (the
  module's `RandomStream` buffers, keyed by its seed: `training.noise`), EMA, spectral-norm vectors and
  BatchNorm statistics (buffers, stacked);
* its own optimiser state: Adam and its L2 weight decay are elementwise, so one update over the stacked
  parameters, masked per member, is K independent Adams (same formula as `torch.optim.Adam`);
* its own epochs: members with fewer batches (a smaller class) sit out the pack's remaining steps of the
  epoch, masked (no update, no state change); a member whose whole training set is smaller than the batch
  size (one batch of its own size) trains with the members of its batch size; early stopping, validation,
  the NaN guard, checkpoints and history are the member `Engine`'s own, at the end of its epoch; a member
  that diverges is recorded as diverged and the others go on.

So a member's checkpoint is its run's checkpoint (the same file, resumable alone or in any pack) and its
result equals the run trained alone within float rounding. A pack of one is the plain loop, with no
stacking at all (`Engine.fit`).

During an epoch the stacked copy holds the members' state. At its end the members' own modules and
optimisers get it back whenever something reads them (validation, a checkpoint, callbacks, the end of
training, an epoch hook such as Deep SVDD's radius); otherwise, on the CPU, the stack carries on into the
next epoch (`KeptStack`), which for tiny epochs saves most of the per-epoch cost.

A module that cannot be stacked (`packable = False`, or a loss that vmap cannot batch) trains its members
one after another, with one log line.

`run_together(functions)` runs whole runs (data, model, stages, scoring, result rows) side by side in
threads that take turns, and trains their stages as packs: each `DeepDetector.train_stage` call meets the
other members' at a `Rendezvous`.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager, nullcontext
from functools import partial

import torch
from torch import nn
from torch.func import functional_call, vmap

from ganad_bench.console import EpochProgress
from ganad_bench.errors import TrainingDiverged, first_line
from ganad_bench.training.device import restore_global_rng, save_global_rng

log = logging.getLogger("ganad_bench")


class NotPackable(Exception):
    """A module's losses cannot be evaluated stacked (raised on the first step, before any update)."""


# --------------------------------------------------------------------------------------------- training
def train_pack(engines: Sequence, datasets: Sequence[tuple]) -> list:
    """Train the `Engine`s on their (x_train, x_val) pairs; returns, per member, the engine or the
    `TrainingDiverged` that ended it. Any other exception (an interrupt, a failing callback) ends the pack."""
    engines, datasets = list(engines), list(datasets)
    if len(engines) > 1 and not all(stackable(e) for e in engines):
        log.info("%s cannot be trained as a pack: its %d runs train one after another",
                 type(engines[0].module).__name__, len(engines))
        return one_after_another(engines, datasets)
    outcomes: list = [None] * len(engines)
    datas = []
    for engine, (x, x_val) in zip(engines, datasets, strict=True):
        with engine.member_context():
            datas.append(engine.prepare(x, x_val))
    limit = len(engines)  # the most members stacked at once: halved when a stacked epoch runs out of device memory
    kept = KeptStack()
    with EpochProgress(enabled=any(bool(e.config.progress) for e in engines)) as bar:
        while True:
            live = [k for k, e in enumerate(engines) if outcomes[k] is None and not e.training_done]
            if not live:
                break
            epoch = min(engines[k].epoch for k in live)
            behind = [k for k in live if engines[k].epoch == epoch]  # members behind catch up first
            # a stacked step needs one batch shape: a member whose training set is smaller than the batch
            # size (its one batch is the whole set) trains in a pack of its own batch size
            size = datas[behind[0]].batches.batch_size
            group = [k for k in behind if datas[k].batches.batch_size == size][:limit]
            try:
                run_epoch([engines[k] for k in group], [datas[k] for k in group], bar, outcomes, group, kept)
            except NotPackable as err:
                log.info("%s cannot be trained as a pack (%s): its %d runs train one after another",
                         type(engines[0].module).__name__, err, len(engines))
                for engine in engines:
                    engine.module.packable = False
                break
            except torch.OutOfMemoryError:
                if len(group) == 1:
                    raise
                limit = max(1, len(group) // 2)
                log.info("a pack of %d runs does not fit in device memory: packs of at most %d", len(group), limit)
    kept.release()
    if len(engines) > 1 and not stackable(engines[0]):  # found not packable on its first stacked step
        return one_after_another(engines, datasets)
    for k, engine in enumerate(engines):
        if outcomes[k] is None:
            with engine.member_context():
                engine.finish(datas[k])
            outcomes[k] = engine
    return outcomes


def one_after_another(engines: list, datasets: list) -> list:
    """`train_pack` of each engine alone, in turn."""
    return [train_pack([e], [d])[0] for e, d in zip(engines, datasets, strict=True)]


def stackable(engine) -> bool:
    """Whether the engine's module may be trained stacked (a compiled loss is compiled for one run)."""
    return bool(engine.module.packable) and not engine.use_compile


class KeptStack:
    """The stacked state a pack keeps from one epoch to the next (on the CPU), while nothing reads or changes
    the members' own modules: for runs of tiny epochs (Arrhythmia: 6 steps, DAGMM on Thyroid: 1) stacking and
    writing back the members every epoch cost a third of the training. Members are written back whenever
    their state is read (validation, a checkpoint, callbacks, the end of training), before an epoch hook
    runs on them, and before the pack changes (a member stops, diverges or catches up)."""

    def __init__(self):
        self.stack: StackedMembers | None = None
        self.index: list[int] = []

    def take(self, index: list[int], engines: list) -> StackedMembers | None:
        """The kept stack when it holds exactly these members and may carry on; else None (written back)."""
        stack, self.stack = self.stack, None
        if stack is not None and index == self.index and may_keep_stack(engines):
            return stack
        if stack is not None:
            stack.write_back()
        return None

    def keep(self, stack: StackedMembers, index: list[int]) -> None:
        self.stack, self.index = stack, list(index)

    def release(self) -> None:
        """Write the kept state back into the members (training has ended or stopped)."""
        if self.stack is not None:
            self.stack.write_back()
        self.stack = None


def may_keep_stack(engines: list) -> bool:
    """A stack may outlive its epoch on the CPU (where no out-of-memory retry needs the members' state of the
    epoch's start) when the module runs no epoch hook on its own state (Deep SVDD's radius, AMA's epoch)."""
    return engines[0].device.type == "cpu" and not engines[0].has_epoch_hook


def run_epoch(engines: list, datas: list, bar: EpochProgress, outcomes: list, index: list[int],
              kept: KeptStack | None = None) -> None:
    """One epoch of the `engines` (all at the same epoch), stacked when there are several, then the members'
    end-of-epoch records (a member's `TrainingDiverged` goes to `outcomes[index[k]]`). `kept`: the stacked
    state carried over from the last epoch, and where this epoch's is left when nothing reads the members.

    When the first stacked step finds the module not packable, or the stacked steps run out of device memory,
    the members' batch generators are rewound before the error goes up, so that the epoch can run again
    (alone, or in smaller packs) exactly as it would have: nothing else changed, as the members' own state
    is written back only after the last step (and a stack is only kept on the CPU)."""
    kept = kept if kept is not None else KeptStack()
    stack = kept.take(index, engines) if len(engines) > 1 else None
    for k, (engine, data) in enumerate(zip(engines, datas, strict=True)):
        engine.pack_member = f"run {k + 1}/{len(engines)}" if len(engines) > 1 else None
        engine.pack_size = len(engines)
        with engine.member_context():
            engine.start_epoch(data)
    lead = engines[0]
    runs = f" ({len(engines)} runs packed)" if len(engines) > 1 else ""
    bar.start_epoch(max(len(d.batches) for d in datas), f"epoch {lead.epoch + 1}/{lead.config.epochs}{runs}")
    bar.advance(min(engine.batches_done for engine in engines))  # an epoch resumed inside: the batches done
    generators = [d.batches.generator.get_state() for d in datas]
    saves = WithinEpochCheckpoints(engines, datas, generators)
    tick = time.perf_counter()
    try:
        if len(engines) == 1:
            steps, diverged = plain_epoch(lead, datas[0], bar, saves)
        else:
            stack = stack.refreshed() if stack is not None else StackedMembers(engines)
            steps, diverged = stack.epoch(datas, bar, saves)
    except (NotPackable, torch.OutOfMemoryError):
        for data, state in zip(datas, generators, strict=True):
            data.batches.generator.set_state(state)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        raise
    elapsed = time.perf_counter() - tick
    checkpoints = [engine.will_checkpoint(engine.epoch + 1) for engine in engines]
    if stack is not None:
        reads = any(engine.reads_state_after(data, checkpoint)
                    for engine, data, checkpoint in zip(engines, datas, checkpoints, strict=True))
        if reads or any(d is not None for d in diverged) or not may_keep_stack(engines):
            stack.write_back()  # and the next epoch stacks afresh (the end of this one may change the members)
        else:
            kept.keep(stack, index)
    for k, engine in enumerate(engines):
        try:
            if diverged[k] is not None:
                raise diverged[k]
            with engine.member_context():
                engine.end_epoch(datas[k], steps[k], elapsed, bar, checkpoints[k])
        except TrainingDiverged as err:
            outcomes[index[k]] = err


class WithinEpochCheckpoints:
    """The checkpoints an epoch writes before its end (`Engine.save_within_epoch`), for the members that write
    them (`Engine.checkpoints_within_epoch`): every `trainer.checkpoint_seconds` once the epoch has run that
    long. `generators`: the members' batch generators at the epoch's start."""

    def __init__(self, engines: list, datas: list, generators: list):
        self.engines, self.datas, self.generators = engines, datas, generators
        self.writing = [engine.checkpoints_within_epoch() for engine in engines]
        self.tick = time.perf_counter()

    def due(self) -> bool:
        return any(writes and engine.within_epoch_checkpoint_due()
                   for writes, engine in zip(self.writing, self.engines, strict=True))

    def save(self, k: int, batches_done: int, loss_sums: torch.Tensor) -> None:
        """Member k's checkpoint after `batches_done` batches of the epoch, its module holding that state."""
        engine = self.engines[k]
        if self.writing[k]:
            with engine.member_context():
                engine.save_within_epoch(self.datas[k].batches, self.generators[k], batches_done, loss_sums,
                                         time.perf_counter() - self.tick)


def plain_epoch(engine, data, bar: EpochProgress, saves: WithinEpochCheckpoints) -> tuple[list[int], list]:
    """One run's epoch, step by step on its own module (a pack of one), from the batch its last checkpoint
    inside the epoch left it at (`Engine.batches_done`; 0: all of it)."""
    steps = engine.batches_done
    check_every = max(1, int(engine.config.nan_check_every))
    try:
        for x_d, x_g in data.batches.iterate(steps):
            engine.train_step(x_d, x_g)
            steps += 1
            if steps % check_every == 0:
                engine.check_finite(steps)
            if steps < len(data.batches) and saves.due():
                engine.check_finite(steps)  # a diverged state is never checkpointed
                saves.save(0, steps, engine.loss_sums)
            bar.advance()
        engine.check_finite(steps)
    except TrainingDiverged as err:
        return [steps], [err]
    return [steps], [None]


# ------------------------------------------------------------------------------------------- stacking
def stack_batches(pairs: list) -> tuple[torch.Tensor, torch.Tensor]:
    """The members' `(x_d, x_g)` batches of one step as two (K, batch, ...) tensors (zeros for a member out
    of batches, which is masked); one stack for both when every member's pair is one batch."""
    filler = next(p[0] for p in pairs if p is not None)

    def stacked(position: int) -> torch.Tensor:
        return torch.stack([p[position] if p is not None else torch.zeros_like(filler) for p in pairs])

    x = stacked(0)
    return x, (x if all(p is None or p[1] is p[0] for p in pairs) else stacked(1))


class MethodCall(nn.Module):
    """Calls a bound loss method of the wrapped module, so that `functional_call` can swap its tensors."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.m = module

    def forward(self, method: Callable, x: torch.Tensor):
        return method(x)


@dataclasses.dataclass
class Group:
    """One optimiser: its parameters' names and, per parameter, the members' Adam moments (K, *shape)."""

    name: str
    names: list[str]
    lr: float
    betas: tuple[float, float]
    eps: float
    weight_decay: float
    exp_avg: dict[str, torch.Tensor]
    exp_avg_sq: dict[str, torch.Tensor]
    counts: list[int]  # per member, Adam's step count (kept on the host: no sync to read it) ...
    steps: list[torch.Tensor]  # ... and on the device, as the fused kernel reads it


class StackedMembers:
    """The stacked state of several engines for one epoch: each parameter and buffer as one (K, *shape)
    tensor (member k = row k), per optimiser the Adam moments, the EMA copies."""

    def __init__(self, engines: list):
        self.engines = engines
        self.k = len(engines)
        lead = engines[0]
        self.call = MethodCall(lead.module)
        self.device = lead.device
        self.layout = parameter_layout(lead)  # [(name, optimiser)]
        self.params = stack_named([e.module.named_parameters() for e in engines])
        self.buffers = stack_named([e.module.named_buffers() for e in engines])
        self.groups = {name: self.make_group(name, opt) for name, opt in lead.optimizers().items()}
        self.ema = None
        if lead.ema is not None:
            self.ema = stack_named([e.ema.module.named_parameters() for e in engines])
            self.ema_buffers = stack_named([e.ema.module.named_buffers() for e in engines])
            self.ema_counts = [int(e.ema.steps) for e in engines]
        self.loss_sums = torch.zeros(self.k, len(lead.loss_names), device=self.device)
        self.nonfinite = torch.zeros(self.k, dtype=torch.bool, device=self.device)
        self.checked = False

    # ----------------------------------------------------------------------------- state in / out
    def make_group(self, name: str, opt: torch.optim.Optimizer) -> Group:
        names = [n for n, g in self.layout if g == name]
        group = opt.param_groups[0]
        states = []
        for engine in self.engines:
            by_name, opt_state = named_parameter_objects(engine.module), engine.optimizers()[name].state
            states.append([opt_state.get(by_name[n], {}) for n in names])
        moments = {key: {n: torch.stack([s[i][key].detach() if s[i] else torch.zeros_like(self.params[n][0])
                                         for s in states]) for i, n in enumerate(names)}
                   for key in ("exp_avg", "exp_avg_sq")}
        counts = [int(s[0]["step"]) if s[0] else 0 for s in states]
        steps = [torch.tensor(float(c), device=self.device) for c in counts]
        return Group(name, names, float(group["lr"]), tuple(group["betas"]), float(group["eps"]),
                     float(group["weight_decay"]), moments["exp_avg"], moments["exp_avg_sq"], counts, steps)

    def refreshed(self) -> StackedMembers:
        """The kept stack, for a new epoch: the learning rates the members' schedules set for it."""
        for group in self.groups.values():
            group.lr = float(self.engines[0].optimizers()[group.name].param_groups[0]["lr"])
        return self

    def count_steps(self, steps: list[int]) -> None:
        """The members' steps of the epoch since they were last counted into their engines' step counts."""
        for k, engine in enumerate(self.engines):
            engine.step += steps[k] - self.counted[k]
            self.counted[k] = steps[k]

    def record_epoch(self, steps: list[int]) -> None:
        """The epoch's step counts, loss sums and NaN flags into the member engines (every epoch, kept or not)."""
        self.count_steps(steps)
        for k, engine in enumerate(self.engines):
            engine.set_step_stats(self.loss_sums[k].clone(), self.nonfinite[k].clone())

    @torch.no_grad()
    def write_back(self) -> None:
        """The members' modules, optimisers and EMA copies from the stacked state."""
        for k, engine in enumerate(self.engines):
            unstack_into(engine.module.named_parameters(), self.params, k)
            unstack_into(engine.module.named_buffers(), self.buffers, k)
            for group in self.groups.values():
                self.write_optimizer(engine, group, k)
            if self.ema is not None:
                unstack_into(engine.ema.module.named_parameters(), self.ema, k)
                unstack_into(engine.ema.module.named_buffers(), self.ema_buffers, k)
                engine.ema.steps = self.ema_counts[k]

    def write_optimizer(self, engine, group: Group, k: int) -> None:
        """Member k's Adam state in `torch.optim.Adam`'s own format (its checkpoint is a single run's)."""
        if group.counts[k] == 0:  # never stepped (a member with no batch yet): no state, as torch's Adam
            return
        opt = engine.optimizers()[group.name]
        by_name = named_parameter_objects(engine.module)
        for name in group.names:
            opt.state[by_name[name]] = {"step": group.steps[k].clone(),
                                        "exp_avg": group.exp_avg[name][k].clone(),
                                        "exp_avg_sq": group.exp_avg_sq[name][k].clone()}

    # ------------------------------------------------------------------------------------ steps
    def epoch(self, datas: list, bar: EpochProgress, saves: WithinEpochCheckpoints) -> tuple[list[int], list]:
        """Every member's batches of one epoch, stacked step by step; members with fewer batches are masked, as
        are those whose last checkpoint inside the epoch left them further on (`Engine.batches_done`) until
        the others catch up."""
        lengths = [len(d.batches) for d in datas]
        starts = [engine.batches_done for engine in self.engines]
        iterators = [d.batches.iterate(start) for d, start in zip(datas, starts, strict=True)]
        # zeros, or the sums of the batches done before a checkpoint inside the epoch (`Engine.start_epoch`);
        # a kept stack's sums are the last epoch's
        self.loss_sums.copy_(torch.stack([engine.loss_sums for engine in self.engines]))
        self.nonfinite.zero_()
        dead = [None] * self.k
        steps, self.counted = list(starts), list(starts)
        check_every = max(1, int(self.engines[0].config.nan_check_every))
        for s in range(min(starts), max(lengths)):
            stepping = [start <= s < n for start, n in zip(starts, lengths, strict=True)]
            active = [a and dead[k] is None for k, a in enumerate(stepping)]
            pairs = [next(it) if a else None for it, a in zip(iterators, stepping, strict=True)]
            x, x_gen = stack_batches(pairs)
            self.step(x, x_gen, active)
            steps = [n + int(a) for n, a in zip(steps, active, strict=True)]
            if (s + 1) % check_every == 0 or s + 1 == max(lengths):
                self.check_finite(dead, steps)
            if s + 1 < max(lengths) and saves.due():
                self.save_within_epoch(saves, dead, steps)
            bar.advance()
        self.record_epoch(steps)
        return steps, dead

    def save_within_epoch(self, saves: WithinEpochCheckpoints, dead: list, steps: list[int]) -> None:
        """The members' checkpoints inside the epoch: written back from the stack (which goes on), each with
        its own step count and loss sums so far; a member that diverged writes none (its run ends with the
        epoch, its last checkpoint kept)."""
        self.check_finite(dead, steps)
        self.write_back()
        self.count_steps(steps)
        for k in range(self.k):
            if dead[k] is None:
                saves.save(k, steps[k], self.loss_sums[k])

    def check_finite(self, dead: list, steps: list[int]) -> None:
        flags = self.nonfinite.tolist()  # one host sync
        for k, engine in enumerate(self.engines):
            if flags[k] and dead[k] is None:
                dead[k] = engine.divergence(steps[k])
                log.info("run with seed %d diverged in its pack: the other runs go on", engine.seed)

    def step(self, x: torch.Tensor, x_gen: torch.Tensor, stepping: list[bool]) -> None:
        """One training step of every member (`Engine.train_step`, stacked; the members not `stepping` masked):
        the discriminators on `x`, the generator-side phases on `x_gen`."""
        with self.engines[0].float32_mode():  # as a run alone (`trainer.tf32`)
            self._step(x, x_gen, stepping)

    def _step(self, x: torch.Tensor, x_gen: torch.Tensor, stepping: list[bool]) -> None:
        everyone = all(stepping)
        rows = [k for k, a in enumerate(stepping) if a]
        # masks only in an epoch's tail, where some members have run out of batches (no host copy otherwise)
        active = None if everyone else torch.tensor(stepping, device=self.device)
        saved = None if everyone else {n: b.clone() for n, b in self.buffers.items()}
        losses = []
        lead = self.engines[0]
        if "d" in self.groups:
            for _ in range(max(1, int(lead.module.critic_steps))):
                loss = self.update("d", lead.module.d_loss, x, rows)
            losses.append(loss)
        for name, _, fn in lead.phases:
            losses.append(self.update(name, fn, x_gen, rows))
        if saved is not None:  # masked members: their buffers (BatchNorm statistics, random streams) roll back
            with torch.no_grad():
                for n, b in self.buffers.items():
                    b.copy_(torch.where(member_mask(active, b), b, saved[n]))
        if self.ema is not None:
            self.update_ema(rows, active)
        losses = torch.stack(losses, dim=1).float()
        finite = torch.isfinite(losses).all(dim=1)
        if everyone:
            self.nonfinite |= ~finite
            self.loss_sums += losses
        else:
            self.nonfinite |= active & ~finite
            self.loss_sums += torch.where(active.unsqueeze(1), torch.nan_to_num(losses), 0.0)

    def update(self, group_name: str, fn: Callable, x: torch.Tensor, rows: list[int]) -> torch.Tensor:
        """Each member's loss `fn` and one Adam step of the group's parameters for the members `rows`;
        returns the (K,) losses."""
        group = self.groups[group_name]
        params, trained = {}, []
        for name, g in self.layout:
            tensor = self.params[name]
            if g == group_name:
                tensor = tensor.detach().requires_grad_(True)  # the same storage: the step updates it in place
                trained.append(tensor)
            params[f"m.{name}"] = tensor
        buffers = {f"m.{n}": b for n, b in self.buffers.items()}

        def member_loss(p, b, xb):
            return functional_call(self.call, (p, b), (fn, xb))[0]

        try:
            with self.engines[0].autocast():  # bf16 on CUDA when trainer.bf16, as a run alone
                loss = vmap(member_loss)(params, buffers, x)
        except RuntimeError as err:
            if self.checked:
                raise
            raise NotPackable(first_line(err)[:160]) from err
        grads = torch.autograd.grad(loss.sum(), trained, allow_unused=True)
        if any(g is None for g in grads):
            raise NotPackable(f"a parameter of the '{group_name}' optimiser gets no gradient from its loss")
        self.checked = True
        # contiguous: the fused kernel reads raw memory (a bmm's gradient may come transposed)
        self.adam(group, {n: g.contiguous() for n, g in zip(group.names, grads, strict=True)}, rows)
        return loss.detach()

    @torch.no_grad()
    def adam(self, group: Group, grads: dict[str, torch.Tensor], rows: list[int]) -> None:
        """The fused `torch.optim.Adam` kernel (what `Engine`'s optimisers run: L2 weight decay, no amsgrad)
        for the members `rows`, each with its own step count; a member left out is not changed at all.
        Every member stepping with equal counts (the usual case): one call on the whole stacked tensors."""
        torch._foreach_add_([group.steps[k] for k in rows], 1.0)  # on the device: no copy from the host
        if len(rows) == self.k and len(set(group.counts)) == 1:
            tensors = [[self.params[n] for n in group.names], [grads[n] for n in group.names],
                       [group.exp_avg[n] for n in group.names], [group.exp_avg_sq[n] for n in group.names]]
            steps = [group.steps[0]] * len(group.names)
        else:
            tensors = [[t[n][k] for k in rows for n in group.names]
                       for t in (self.params, grads, group.exp_avg, group.exp_avg_sq)]
            steps = [group.steps[k] for k in rows for _ in group.names]
        torch._fused_adam_(*tensors, [], steps, amsgrad=False, lr=group.lr, beta1=group.betas[0],
                           beta2=group.betas[1], weight_decay=group.weight_decay, eps=group.eps, maximize=False,
                           grad_scale=None, found_inf=None)
        for k in rows:
            group.counts[k] += 1

    @torch.no_grad()
    def update_ema(self, rows: list[int], active: torch.Tensor | None) -> None:
        """`engine.EMA.update` for the members `rows` (`active`: their mask, None when all step), each with the
        decay min(decay, (1 + t) / (10 + t)) at its own count t; one call when the counts agree."""
        names = list(self.ema)
        lead = self.engines[0].ema
        if len(rows) == self.k and len(set(self.ema_counts)) == 1:
            torch._foreach_lerp_([self.ema[n] for n in names], [self.params[n] for n in names],
                                 1.0 - lead.rate(self.ema_counts[0]))
        else:
            for k in rows:
                torch._foreach_lerp_([self.ema[n][k] for n in names], [self.params[n][k] for n in names],
                                     1.0 - lead.rate(self.ema_counts[k]))
        for name, buffer in self.ema_buffers.items():  # buffers are copied, not averaged
            buffer.copy_(self.buffers[name] if active is None else
                         torch.where(member_mask(active, buffer), self.buffers[name], buffer))
        for k in rows:
            self.ema_counts[k] += 1


def member_mask(active: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return active.reshape((-1,) + (1,) * (like.dim() - 1))


def named_parameter_objects(module: nn.Module) -> dict[str, nn.Parameter]:
    return dict(module.named_parameters())


def stack_named(members) -> dict[str, torch.Tensor]:
    """{name: the members' tensors stacked along a new first axis} from each member's (name, tensor) pairs."""
    tables = [dict(named) for named in members]
    return {name: torch.stack([t[name].detach() for t in tables]).contiguous() for name in tables[0]}


def unstack_into(named, stacked: dict[str, torch.Tensor], k: int) -> None:
    for name, tensor in named:
        tensor.data.copy_(stacked[name][k])


def parameter_layout(engine) -> list[tuple[str, str | None]]:
    """(name, optimiser) of every parameter of the engine's module, grouped by optimiser in the order of
    `engine.optimizers()` (parameters no optimiser trains last, optimiser None)."""
    by_id = {id(p): n for n, p in engine.module.named_parameters()}
    layout, seen = [], set()
    for name, opt in engine.optimizers().items():
        for p in opt.param_groups[0]["params"]:
            if id(p) not in seen:
                seen.add(id(p))
                layout.append((by_id[id(p)], name))
    layout += [(n, None) for pid, n in by_id.items() if pid not in seen]
    return layout


# ---------------------------------------------------------------------------------- runs side by side
_current = threading.local()


def current_rendezvous() -> Rendezvous | None:
    """The rendezvous of the pack this thread's run belongs to (None: a run on its own)."""
    return getattr(_current, "rendezvous", None)


class Rendezvous:
    """Where the threads of `run_together` hand in their training stages. The threads take turns (one holds
    `turn` at a time, so the runs' Python code never interleaves mid-stage); when every thread still running
    waits here, the thread that called `run_together` trains the waiting stages together (`train_pack`) and
    hands them back. It trains them, not a member thread: torch's CPU kernels parallelise badly from a thread
    that is not the process's main one (a stacked ALAD step on 2 cores: 49 ms from the main thread, 110 ms
    from another)."""

    def __init__(self, n: int, switches: Sequence[tuple[Callable, Callable]] = ()):
        self.turn = threading.Condition()
        self.running = n
        self.waiting: list[dict] = []
        self.switches = list(switches)

    def train(self, engine, x, x_val):
        """Train `engine` on (x, x_val) in a pack with the other runs' stages; returns it (or raises its
        `TrainingDiverged`). Called with the turn held."""
        saved = self.save_switches()
        entry = {"engine": engine, "data": (x, x_val), "outcome": None, "rng": save_global_rng(),
                 "index": getattr(_current, "index", len(self.waiting))}
        # what the trainer switches to around this member's own calls (its epoch lines go to its own log)
        engine.member_context = partial(self.as_member, saved)
        self.waiting.append(entry)
        self.turn.notify_all()  # the trainer checks whether everyone is here
        while entry["outcome"] is None:
            self.turn.wait()
        engine.member_context = nullcontext
        self.restore_switches(saved)
        restore_global_rng(entry["rng"])  # as the run's own training left it
        if isinstance(entry["outcome"], BaseException):
            raise entry["outcome"]
        return entry["outcome"]

    @contextmanager
    def as_member(self, member_state: list):
        """The switches' global state of one member (saved when it handed in its stage) for the block, then the
        trainer's again."""
        current = self.save_switches()
        self.restore_switches(member_state)
        try:
            yield
        finally:
            self.restore_switches(current)

    def save_switches(self) -> list:
        return [save() for save, _ in self.switches]

    def restore_switches(self, states: list) -> None:
        for (_, restore), state in zip(self.switches, states, strict=True):
            restore(state)

    def leave(self) -> None:
        """A thread's run has ended: the others may not wait for it."""
        self.running -= 1
        self.turn.notify_all()

    def serve(self) -> None:
        """The trainer's loop (`run_together`'s own thread, holding the turn): train whenever every running
        thread waits here, until none runs."""
        while self.running:
            if self.waiting and len(self.waiting) == self.running:
                self.train_waiting()
            else:
                self.turn.wait()

    def train_waiting(self) -> None:
        # in the order of `run_together`'s functions, not the threads' arrival: a member's row in the stack
        # changes its numbers in the last bit, so a pack's members always take the same rows
        entries, self.waiting = sorted(self.waiting, key=lambda entry: entry["index"]), []
        for entry in entries:  # every run waiting here waits for all of them: its row's time is all of theirs
            entry["engine"].pack_members = len(entries)
        stages: dict = {}
        for entry in entries:  # the same stage of every run (a pack needs one configuration)
            engine = entry["engine"]
            key = (engine.fingerprint.get("stage"), repr(engine.config), type(engine.module).__name__)
            stages.setdefault(key, []).append(entry)
        for group in stages.values():
            packable = stackable(group[0]["engine"])
            if packable and len(group) > 1:
                log.info("training %d runs of %s as one pack", len(group), type(group[0]["engine"].module).__name__)
            if not packable and len(group) > 1:
                log.info("%s cannot be trained as a pack: its %d runs train one after another",
                         type(group[0]["engine"].module).__name__, len(group))
            for part in [group] if packable else [[entry] for entry in group]:
                if not packable:  # trained alone: with its own global generators, which its losses may draw from
                    restore_global_rng(part[0]["rng"])
                try:
                    outcomes = train_pack([e["engine"] for e in part], [e["data"] for e in part])
                except BaseException as err:  # an interrupt or a failing callback: every member sees it
                    outcomes = [err] * len(part)
                for entry, outcome in zip(part, outcomes, strict=True):
                    entry["outcome"] = outcome
                    if not packable:
                        entry["rng"] = save_global_rng()
        self.turn.notify_all()


def run_together(functions: Sequence[Callable[[], object]],
                 switches: Sequence[tuple[Callable, Callable]] = ()) -> list:
    """Call each function in its own thread, the threads taking turns, and train their deep detectors'
    stages as packs (module docstring). Returns each function's result or the exception it raised.
    `switches` are (save, restore) pairs of global state a run must find as it left it (the global random
    generators always; a launcher adds Hydra's job config and logging)."""
    rendezvous = Rendezvous(len(functions), switches)
    results: list = [None] * len(functions)

    def member(k: int) -> None:
        _current.rendezvous = rendezvous
        _current.index = k
        # one intra-op thread here: the member threads do the light work (data, hooks, scoring); a CPU thread
        # team per member thread made the trainer's own kernels twice as slow on 2 cores
        torch.set_num_threads(1)
        with rendezvous.turn:
            try:
                results[k] = functions[k]()
            except BaseException as err:
                results[k] = err
            finally:
                rendezvous.leave()

    threads = [threading.Thread(target=member, args=(k,), name=f"pack-member-{k}") for k in range(len(functions))]
    with rendezvous.turn:
        for thread in threads:
            thread.start()
        rendezvous.serve()
    for thread in threads:
        thread.join()
    return results
