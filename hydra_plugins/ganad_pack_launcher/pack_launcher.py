"""`hydra/launcher=pack` (ganad-bench's default): a multirun's jobs that differ only in `seed` and / or the class
(`dataset.normal_class`, `protocol.anomaly_class`) run side by side in one process and train their deep detectors as
packs (`ganad_bench.training.pack`), at most `hydra.launcher.pack_size` jobs a pack. Every job is still a Hydra job
of its own: its folder, config files, log, callbacks and `outcome.json`, and its run folder, lock and `result.json`
are the ones it has when it runs alone. Classic detectors (IF, OC-SVM, KDE) and jobs with no partner run one by one,
as `hydra/launcher=basic` runs every job. With `hydra.launcher.n_jobs=N` the packs (and lone jobs) are handed to N
worker processes (joblib's loky backend, as Hydra's joblib launcher): a pack is the unit of work a worker gets. With
`hydra.launcher.executor=slurm` each pack is one SLURM job (submitit, as Hydra's submitit launcher: `partition`,
`timeout_min`, `gpus_per_node`, `cpus_per_task`, `mem_gb`); `executor=submitit_local` runs the same jobs as local
processes (to try a cluster sweep out).
"""

# no `from __future__ import annotations`: Hydra's plugin scan executes this file outside sys.modules, where a
# dataclass cannot resolve string annotations
import errno
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from hydra._internal.core_plugins.basic_sweeper import BasicSweeperConf
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.core.plugins import Plugins
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, configure_log, filter_overrides, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict

log = logging.getLogger(__name__)
# the keys whose values may differ within a pack
PACKED_KEYS = ("seed", "dataset.normal_class", "protocol.anomaly_class")


@dataclass
class PackLauncherConf:
    _target_: str = "hydra_plugins.ganad_pack_launcher.pack_launcher.PackLauncher"
    # the most runs trained as one pack (1: every job on its own)
    pack_size: int = 10
    # worker processes the packs are handed to (1: all in this process; -1: one per CPU core)
    n_jobs: int = 1
    # where packs run: local (this process, or n_jobs joblib workers) | slurm (a SLURM job per pack, submitit)
    # | submitit_local (the same jobs as local processes)
    executor: str = "local"
    # the SLURM job of a pack (executor=slurm; timeout_min also bounds submitit_local's jobs)
    timeout_min: int = 240
    partition: str | None = None
    gpus_per_node: int = 0
    cpus_per_task: int | None = None
    mem_gb: int | None = None


ConfigStore.instance().store(group="hydra/launcher", name="pack", node=PackLauncherConf, provider="ganad_bench")


@dataclass
class PackSweeperConf(BasicSweeperConf):
    _target_: str = "hydra_plugins.ganad_pack_launcher.pack_launcher.PackSweeper"


ConfigStore.instance().store(group="hydra/sweeper", name="pack", node=PackSweeperConf, provider="ganad_bench")


class PackLauncher(Launcher):
    def __init__(self, pack_size: int = 10, n_jobs: int = 1, executor: str = "local", timeout_min: int = 240,
                 partition: str | None = None, gpus_per_node: int = 0, cpus_per_task: int | None = None,
                 mem_gb: int | None = None) -> None:
        super().__init__()
        self.pack_size = pack_size
        self.n_jobs = n_jobs
        self.executor = executor
        self.cluster = {"timeout_min": timeout_min, "slurm_partition": partition, "gpus_per_node": gpus_per_node,
                        "cpus_per_task": cpus_per_task, "mem_gb": mem_gb}
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        log.info(f"Launching {len(job_overrides)} jobs locally")
        configs = []
        for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
            log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
            config = job_config(self.hydra_context, self.config, overrides)
            with open_dict(config):
                config.hydra.job.id = config.hydra.job.num = idx
            configs.append(config)
        groups = packs(configs, int(self.pack_size))
        try:
            results = self.dispatch(groups, configs)
        except OSError as err:  # Hydra writes each job's config files before the job runs: a full disk there
            if err.errno != errno.ENOSPC:  # would end in its traceback (a run's own writes are in its row)
                raise
            from ganad_bench.console import error_exit

            raise error_exit(f"cannot write {err.filename or 'the sweep files'} ({err.strerror}): free space there, "
                             f"or set paths.output_dir to a disk with room; then run the same command again to "
                             f"finish the missing runs", status=1) from None
        returns: list = [None] * len(configs)
        for group, rets in zip(groups, results, strict=True):
            for index, ret in zip(group, rets, strict=True):
                returns[index] = ret
        return returns

    def dispatch(self, groups: list[list[int]], configs: list[DictConfig]) -> list[list[JobReturn]]:
        """Run the packs where `executor` and `n_jobs` say; their returns, pack by pack."""
        if self.executor in SUBMITIT_CLUSTERS:
            return self.submit(groups, configs)
        if int(self.n_jobs) != 1:
            from joblib import Parallel, delayed, effective_n_jobs

            log.info(f"Handing {len(groups)} packs to {effective_n_jobs(int(self.n_jobs))} worker processes")
            state = Singleton.get_state()
            return Parallel(n_jobs=int(self.n_jobs), backend="loky")(
                delayed(run_pack_in_worker)([configs[i] for i in group], self.hydra_context, self.task_function, state)
                for group in groups)
        results = []
        for group in groups:
            results.append(run_pack([configs[i] for i in group], self.hydra_context, self.task_function))
            configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        return results

    def submit(self, groups: list[list[int]], configs: list[DictConfig]) -> list[list[JobReturn]]:
        """Each pack as one submitit job (SLURM, or a local process), with this process's Hydra state; waits for
        them all."""
        import submitit

        folder = Path(str(self.config.hydra.sweep.dir)) / ".submitit" / "%j"
        executor = submitit.AutoExecutor(folder=folder, cluster=SUBMITIT_CLUSTERS[self.executor])
        parameters = {key: value for key, value in self.cluster.items() if value is not None}
        if self.executor != "slurm":  # the local executor takes only the generic parameters
            parameters = {key: value for key, value in parameters.items() if not key.startswith("slurm_")}
        executor.update_parameters(name="ganad-pack", **parameters)
        state = Singleton.get_state()
        jobs = [executor.submit(run_pack_in_worker, [configs[i] for i in group], self.hydra_context,
                                self.task_function, state) for group in groups]
        log.info(f"Submitted {len(jobs)} packs as {self.executor} jobs ({', '.join(job.job_id for job in jobs)})")
        return [job.result() for job in jobs]


class PackSweeper(Sweeper):
    """`hydra/sweeper=pack` (ganad-bench's default): Hydra's basic sweeper (the same jobs, batches and
    `hydra.sweeper.params`) without its check that every job of a batch composes when the batch goes to the pack
    launcher, which composes every job of a batch in this process before it runs any: the check composed each
    job a second time (about 0.4 s a job, most of a rerun of a finished sweep). Other launchers, which may
    compose in their workers, keep the check."""

    def __init__(self, max_batch_size: int | None = None, params: dict | None = None) -> None:
        super().__init__()
        # imported here, not with this module: Hydra's plugin scan runs basic_sweeper.py again, after which its
        # own code names the new class (a subclass of the one imported before would fail its `super` call)
        from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

        self.basic = BasicSweeper(max_batch_size=max_batch_size, params=params)

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.basic.setup(hydra_context=hydra_context, task_function=task_function, config=config)
        composes_first = isinstance(self.basic.launcher, PackLauncher)
        self.basic.validate_batch_is_legal = partial(check_batch, hydra_context, config, skip=composes_first)

    def sweep(self, arguments: list[str]):
        return self.basic.sweep(arguments)


def check_batch(hydra_context: HydraContext, config: DictConfig, batch: Sequence[Sequence[str]],
                skip: bool = False) -> None:
    """The basic sweeper's check that every job of a batch composes, each failure in one line (`skip`: the
    launcher composes them all before it runs any)."""
    if not skip:
        for overrides in batch:
            job_config(hydra_context, config, overrides)


def job_config(hydra_context: HydraContext, config: DictConfig, overrides: Sequence[str]) -> DictConfig:
    """One job's config, composed as Hydra composes it; a job that does not compose (a setting of one swept model
    that another lacks: `model=iforest,alad model.params.n_estimators=5`) is a one-line error naming it, where
    Hydra answered in several lines. The sweep's jobs are all composed before any runs."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        return hydra_context.config_loader.load_sweep_config(config, list(overrides))
    except (HydraException, OmegaConfBaseException) as err:
        from ganad_bench.config import composition_error
        from ganad_bench.console import error_exit

        raise error_exit(f"the sweep's job {' '.join(overrides)} does not compose: "
                         f"{composition_error(err, list(overrides))} (no job ran: narrow the sweep, or set the "
                         f"setting only where it applies)") from None


# hydra.launcher.executor -> submitit's cluster
SUBMITIT_CLUSTERS = {"slurm": "slurm", "submitit_local": "local"}
EXECUTORS = ("local", *SUBMITIT_CLUSTERS)


def run_pack(configs: list[DictConfig], hydra_context: HydraContext, task_function: TaskFunction) -> list[JobReturn]:
    """Run the jobs of one pack side by side (`ganad_bench.training.pack.run_together`); a lone job as Hydra does."""
    jobs = [partial(run_job, hydra_context=hydra_context, task_function=task_function, config=config,
                    job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir") for config in configs]
    if len(jobs) == 1:  # every classic job: no torch to load
        return [jobs[0]()]
    from ganad_bench.training.pack import run_together

    launcher_hydra_config = HydraConfig.instance().cfg
    log.info(f"Training jobs #{', #'.join(str(c.hydra.job.num) for c in configs)} as one pack")
    try:
        results = run_together(jobs, switches=[(save_hydra_config, restore_hydra_config),
                                               (save_log_handlers, restore_log_handlers)])
    finally:
        HydraConfig.instance().cfg = launcher_hydra_config
    for result in results:
        if isinstance(result, BaseException):  # Hydra's own failure (run_job records the task's)
            raise result
    return results


def run_pack_in_worker(configs: list[DictConfig], hydra_context: HydraContext, task_function: TaskFunction,
                       singleton_state: dict) -> list[JobReturn]:
    """`run_pack` in a joblib worker process, with the launching process's Hydra state (as Hydra's joblib
    launcher runs a job)."""
    setup_globals()
    Singleton.set_state(singleton_state)
    HydraConfig.instance().set_config(configs[0])
    return run_pack(configs, hydra_context, task_function)


def register() -> None:
    """Make the launcher and the sweeper known to Hydra without its plugin scan, which misses the hydra_plugins
    folder of an editable install (called when Hydra reads ganad_bench's configs: `ganad_bench.conf`)."""
    Plugins.instance().register(PackLauncher)
    Plugins.instance().register(PackSweeper)


def packs(configs: list[DictConfig], pack_size: int) -> list[list[int]]:
    """The jobs' indices grouped into packs: the jobs of a deep model whose configs agree on everything but
    `PACKED_KEYS`, in sweep order, at most `pack_size` a pack; every other job alone."""
    from ganad_bench.models.kit.catalog import available_detectors, is_deep

    groups: dict[str, list[int]] = {}
    order: list[list[int]] = []
    for index, config in enumerate(configs):
        model = OmegaConf.select(config, "model.name")
        key = pack_key(config) if model in available_detectors() and is_deep(model) and pack_size > 1 else None
        if key is None or key not in groups or len(groups[key]) >= pack_size:
            group = [index]
            order.append(group)
            if key is not None:
                groups[key] = group
        else:
            groups[key].append(index)
    return order


def pack_key(config: DictConfig) -> str:
    """The job's config without Hydra's settings and `PACKED_KEYS`, as a string (interpolations unresolved:
    a sweep's values are literal, and the hydra section resolves only inside a job)."""
    values = OmegaConf.to_container(config, resolve=False)
    values.pop("hydra", None)
    for key in PACKED_KEYS:
        group, _, name = key.rpartition(".")
        ((values.get(group) or {}) if group else values).pop(name, None)  # "seed" sits at the top
    return json.dumps(values, sort_keys=True, default=str)


def save_hydra_config():
    return HydraConfig.instance().cfg


def restore_hydra_config(cfg) -> None:
    HydraConfig.instance().cfg = cfg


def save_log_handlers():
    root = logging.getLogger()
    return list(root.handlers), root.level


def restore_log_handlers(state) -> None:
    root = logging.getLogger()
    root.handlers[:] = state[0]
    root.setLevel(state[1])
