"""Bad input and faults, as a user or an adversary would throw them at `ganad-bench`: every bad input exits
non-zero with ONE line that names the fix, no traceback and no result row; every fault (a corrupt cache,
checkpoint or row, a crafted checkpoint, a concurrent process) leaves the outputs usable for the next run.

The command runs in this process (`cli._main`, Hydra's state cleared between calls), which keeps this table
of cases fast; tests/test_cli.py runs the real entry point in subprocesses."""

from __future__ import annotations

import json
import os
import pickle
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.core.global_hydra import GlobalHydra

from ganad_bench.cli import _main
from ganad_bench.results.store import RESULT_FILE, RunLock


def cli(tmp_path, *args: str, multirun: bool = False, capsys=None) -> tuple[int, list[str]]:
    """Run `ganad-bench [args]` in this process with every path under tmp_path; (exit code, stderr lines
    without Hydra's own log lines)."""
    multirun = multirun or "-m" in args  # a flag goes before the overrides, as Hydra's parser takes them
    argv = (["-m"] if multirun else []) + [f"paths.output_dir={tmp_path / 'outputs'}",
                                           f"paths.cache_dir={tmp_path / 'cache'}", "paths.download=false",
                                           *[arg for arg in args if arg != "-m"]]
    GlobalHydra.instance().clear()
    old_argv = sys.argv
    sys.argv = ["ganad-bench", *argv]
    try:
        code = _main(argv)
    except SystemExit as exit_:
        code = exit_.code
    finally:
        sys.argv = old_argv
        GlobalHydra.instance().clear()
    err = capsys.readouterr().err if capsys is not None else ""
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("[20")]
    return code, lines


def rows(tmp_path) -> list:
    return sorted((tmp_path / "outputs").rglob(RESULT_FILE))


def logs(tmp_path) -> str:
    """Every Hydra job log of the command(s) run so far (warnings also reach stderr)."""
    return "".join(p.read_text() for p in sorted((tmp_path / "outputs").glob("*/*/*.log")) +
                   sorted((tmp_path / "outputs").glob("multirun/*/*/*.log")))


BAD_INPUTS = [
    # unknown names (checked before Hydra starts)
    (["model=nope"], "unknown model 'nope': choose one of"),
    (["dataset=imagenet"], "unknown dataset 'imagenet'"),
    (["protocol=nope"], "unknown protocol 'nope'"),
    (["trainer=nope"], "unknown trainer 'nope'"),
    (["experiment=nope"], "unknown experiment 'nope'"),
    (["foo=1"], "foo: not a setting of a run config (check the spelling, or remove it); its settings: "),
    (["trainer.epoch=2"], "trainer.epoch: not a setting of trainer (did you mean epochs? else remove it); its "
                          "settings: batch_size, "),
    # a key of the model or protocol chosen, told against that one's settings (Hydra fails before it is known)
    (["model=alad", "model.params.latent_dm=3"], "model.params.latent_dm: not a setting of model alad (did you mean "
                                                 "latent_dim? else remove it); its settings: arch, "),
    (["protocol.val_frac=0.1"], "protocol.val_frac: not a setting of the tabular protocol (did you mean "
                                "val_fraction? else remove it); its settings: contamination, name, split_draw"),
    (["dataset=mnist", "protocol.split_draw=1"], "protocol.split_draw: not a setting of the one_class protocol"),
    (["model=alad", "+model.params.latent_dm=3"], "model.params.latent_dm: not a setting of model alad (did you "
                                                  "mean latent_dim? else remove it)"),
    (["seed.x=1"], "seed.x: not a setting (check the spelling; `ganad-bench --cfg job` prints them all)"),
    (["model=iforest", "trainer.betas.x=1"], "the overrides do not compose (invalid literal for int() with base 10: "
                                             "'x'): check the keys they set exist"),
    (["model=iforest", "trainer.betas.5=1"], "Error merging override trainer.betas.5=1: list index out of range"),
    (["model=iforest", "model.params.bogus=1"], "model.params.bogus: not a setting of model iforest (check the "
                                                "spelling, or remove it); its settings: contrast_norm, max_features"),
    (["model=alad", "+model.params.score=l1"], "Either remove + prefix"),
    (["seed=[1"], "cannot parse the override"),
    (["model=iforest", "paths.output_dir=/tmp/a#b ü"], "cannot parse the override (LexerNoViableAltException: "
     "paths.output_dir=/tmp/a#b ü): a value with characters such as # or ü goes in quotes, e.g. "
     "\"paths.output_dir='/tmp/a#b ü'\""),
    # Hydra's own groups and folders (Hydra answers in several lines, or with a traceback from a launcher)
    (["-m", "model=iforest", "hydra/launcher=nope"], "unknown hydra/launcher 'nope': choose one of basic"),
    (["-m", "model=iforest", "hydra/sweeper=nope"], "unknown hydra/sweeper 'nope': choose one of basic"),
    (["-m", "model=iforest", "hydra.sweep.dir=/dev/null/x"],
     "cannot create hydra.sweep.dir=/dev/null/x (/dev/null is a file): choose a writable folder"),
    (["model=iforest", "hydra.run.dir=/dev/null/${now:%H}"], "cannot create hydra.run.dir=/dev/null/${now:%H}"),
    (["'seed=range(a)'"], "cannot parse the override"),
    # values that would name folders
    (["model=iforest", "seed=abc"], "seed must be an integer from 0 to 4294967295 (2**32 - 1), got 'abc'"),
    (["model=iforest", "seed=-1"], "seed must be an integer from 0 to 4294967295 (2**32 - 1), got -1"),
    (["model=iforest", "seed=1.5"], "seed must be an integer from 0 to 4294967295 (2**32 - 1), got 1.5"),
    (["model=iforest", "seed=true"], "seed must be an integer from 0 to 4294967295 (2**32 - 1), got True"),
    (["model=iforest", "seed=/../../x"], "seed must be an integer from 0 to 4294967295 (2**32 - 1)"),
    (["model=iforest", "seed=null"], "seed must be an integer from 0 to 4294967295 (2**32 - 1), got None"),
    # past NumPy's and scikit-learn's largest seed: refused here, not a run that fails in scikit-learn
    (["model=iforest", "seed=4294967296"], "seed must be an integer from 0 to 4294967295 (2**32 - 1), got 4294967296"),
    (["model=iforest", "protocol.split_seed=4294967296"],
     "protocol.split_seed=4294967296 must be null (each run seed draws its split) or an integer from 0 to"),
    (["model=iforest", "dataset.normal_class=../../../../x"], "has no normal class; remove it"),
    (["model=iforest", "dataset.normal_class=3"], "has no normal class; remove it"),
    (["model=iforest", "dataset=mnist", "dataset.normal_class=11"], "dataset.normal_class=11 is not a class of mnist"),
    (["model=iforest", "dataset=mnist", "dataset.normal_class=../x"], "is not a class of mnist"),
    (["model=iforest", "dataset=cifar10", "dataset.normal_class=dragon"], "is not a class of cifar10"),
    (["model=iforest", "model.name=../../x"], "unknown model '../../x'"),
    (["model=iforest", "dataset.name=../x"], "unknown dataset '../x'"),
    (["model=iforest", "protocol.name=../x"], "unknown protocol '../x'"),
    (["model=iforest", "force=maybe"], "force must be true or false"),
    # protocol and data settings
    (["model=iforest", "protocol.train_fraction=1.5"], "protocol.train_fraction must be a number in (0, 1), got 1.5"),
    (["model=iforest", "protocol.contamination=0"], "protocol.contamination must be a number in (0, 1), got 0"),
    (["model=iforest", "protocol.train_anomalies=maybe"], "protocol.train_anomalies='maybe': choose drop"),
    (["model=iforest", "protocol=one_class"], "protocol one_class needs an image dataset"),
    (["model=iforest", "protocol=cross_dataset"], "protocol cross_dataset needs protocol.anomaly_dataset"),
    (["model=iforest", "protocol=leave_one_class_out"], "protocol leave_one_class_out needs an image dataset"),
    (["model=iforest", "dataset=mnist", "protocol=leave_one_class_out"],
     "protocol.anomaly_class is not set and this protocol needs a class of mnist"),
    (["model=iforest", "dataset=mnist", "protocol=leave_one_class_out", "protocol.anomaly_class=10"],
     "protocol.anomaly_class=10 is not a class of mnist"),
    (["model=iforest", "dataset=fashion_mnist", "protocol=cross_dataset", "protocol.anomaly_dataset=x/../y"],
     "unknown dataset 'x/../y'"),
    (["model=iforest", "dataset.source=zzz"], "has no source 'zzz'"),
    (["model=iforest", "dataset.scaler=zscore"], "unknown dataset.scaler 'zscore'"),
    (["model=iforest", "dataset=musk"], "musk.mat not found"),
    (["model=iforest", "paths.data_dir=/dev/null"], "paths.data_dir (GANAD_DATA_DIR)=/dev/null is not a folder"),
    # an empty folder setting would put the rows in /results and Hydra's folders in /runs
    (["model=iforest", "paths.output_dir="], "paths.output_dir is empty: give a folder, e.g. paths.output_dir=outputs"),
    (["model=iforest", "paths.results_dir="], "paths.results_dir is empty: give a folder"),
    (["model=iforest", "hydra.run.dir=a,b"], "hydra.run.dir takes one value, got a,b"),
    (["model=iforest", "hydra.run.dir=[a,b]"], "hydra.run.dir takes one folder, got [a,b]"),
    # Hydra's own settings, composed before Hydra starts (Hydra answers them in several lines)
    (["-m", "model=iforest", "seed=0,1", "hydra/launcher=basic", "hydra.launcher.pack_size=5"],
     "hydra.launcher.pack_size: not a setting of BasicLauncherConf"),
    (["-m", "model=iforest", "seed=0,1", "hydra.sweeper.params.seed=range(2)"],
     "hydra.sweeper.params.seed takes one value, got range(2)"),
    (["-m", "model=iforest", "seed=0,1", "hydra/launcher=joblib,basic"], "hydra/launcher takes one value"),
    (["model=iforest", "paths.cache_dir=/dev/null"], "paths.cache_dir (GANAD_CACHE_DIR)=/dev/null is not a folder"),
    # trainer values, for every model
    (["model=iforest", "trainer.device=tpu"], "unknown device trainer.device=tpu: choose one of auto, cpu"),
    (["model=dcae", "trainer.device=cuda:x"], "trainer.device=cuda:x: a device number is a whole number >= 0, e.g. "
                                              "trainer.device=cuda:0"),  # torch.device raised on it
    (["model=dcae", "trainer.device=auto:1"], "trainer.device=auto:1: auto picks the device and takes no number"),
    (["model=iforest", "trainer.epochs=abc"], "trainer.epochs must be an integer, got 'abc'"),
    (["model=rcgan", "trainer.epochs=-1"], "trainer.epochs must be >= 0, got -1"),
    (["model=rcgan", "trainer.batch_size=0"], "trainer.batch_size must be >= 1, got 0"),
    (["model=rcgan", "trainer.lr=0"], "trainer.lr must be > 0, got 0"),
    (["model=rcgan", "trainer.betas=[0.5]"], "trainer.betas must be a list of 2 numbers, got [0.5]"),
    (["model=dcae", "trainer.lr_milestones=[a]"], "trainer.lr_milestones must be a list of integers, got ['a']"),
    (["model=rcgan", "trainer.ema_decay=1.5"], "trainer.ema_decay must be in [0, 1) or null"),
    (["model=rcgan", "trainer.checkpoint_seconds=-1"], "trainer.checkpoint_seconds must be >= 0, got -1"),
    (["model=rcgan", "trainer.betas=[0.5,2]"], "trainer.betas must be two numbers in [0, 1), got (0.5, 2.0)"),
    (["model=rcgan", "trainer.lr_d=-1"], "trainer.lr_d must be > 0 or null, got -1.0"),
    (["model=dcae", "trainer.lr_milestones=[0]"], "trainer.lr_milestones must be a list of epochs >= 1"),
    (["model=rcgan", "trainer.score_batch_size=0"], "trainer.score_batch_size must be >= 1, got 0"),
    (["model=rcgan", "trainer.nan_check_every=0"], "trainer.nan_check_every must be >= 1, got 0"),
    (["model=rcgan", "trainer.progress=maybe"], "trainer.progress must be true or false"),
    (["model=alad", "trainer.curve_every=0"], "trainer.curve_every must be >= 1 or null, got 0"),
    # model parameters
    (["model=alad", "model.params.score=nope"], "unknown model.params.score 'nope'"),
    (["model=alad", "model.params.arch=conv"], "arch 'conv' needs images"),
    (["model=ama", "model.params.lipschitz=zz"], "unknown model.params.lipschitz 'zz'"),
    (["model=memgan", "model.params.n_memory=1"], "model.params.n_memory must be >= 2, got 1"),
    (["model=memgan", "model.params.batchnorm_stats=eval"], "batchnorm_stats must be one of scoring_path, training"),
    (["model=deep_svdd", "model.params.nu=2"], "model.params.nu must be in (0, 1], got 2"),
    (["model=ocsvm", "model.params.pca=2.5"], "model.params.pca=2.5 must be null"),
    (["model=iforest", "model.params.contrast_norm=l3"], "model.params.contrast_norm='l3': choose null, l1 or l2"),
    (["model=iforest", "model.params.n_estimators=-1"], "model.params.n_estimators must be an integer >= 1, got -1"),
    (["model=iforest", "protocol.val_fraction=0.9999"],
     "protocol.val_fraction=0.9999 holds out all 1838 normal training rows of thyroid for validation and leaves none"),
    (["model=dcae", "protocol.val_fraction=0.0001"],
     "protocol.val_fraction=0.0001 holds out none of the 1838 normal training rows of thyroid for validation: give "
     "at least 1/1838"),
    (["model=iforest", "model.params.n_jobs=0"],
     "model.params.n_jobs must be a non-zero integer (-1: every CPU core) or null, got 0"),
    (["model=iforest", "model.params.n_estimators=1e19"],
     "model.params.n_estimators=10000000000000000000 is larger than any integer a run can hold (2**63 - 1)"),
    (["model=alad", "model.params.latent_dim=99999999999999999999"],
     "model.params.latent_dim=99999999999999999999 is larger than any integer a run can hold"),
    (["model=ocsvm", "model.params.gamma=-2"], "model.params.gamma must be inverse_features, scale, auto"),
    (["model=kde", "model.params.cv=abc"], "model.params.cv must be an integer, got 'abc'"),
    (["model=kde", "model.params.cv=1"], "model.params.cv must be an integer >= 2, got 1"),
    (["model=memgan", "model.params.n_memory=abc"], "model.params.n_memory must be an integer, got 'abc'"),
    (["model=rcgan", "model.params.spectral_norm=maybe"], "model.params.spectral_norm must be true or false"),
    (["model=alad", "model.params.latent_dim=-3"], "model.params.latent_dim must be >= 1, got -3"),
    (["model=alad", "model.params.latent_dim=1.5"], "model.params.latent_dim must be an integer or null, got 1.5"),
    (["model=memgan", "model.params.width=0"], "model.params.width must be >= 1, got 0"),
    (["model=deep_svdd", "model.params.pretrain_epochs=-1"], "model.params.pretrain_epochs must be >= 0, got -1"),
    # infinite and NaN numbers, and the ranges every model shares (the run would only diverge or train backwards)
    (["model=rcgan", "trainer.lr=inf"], "trainer.lr must be a finite number, got inf"),
    (["model=rcgan", "trainer.betas=[0.5,nan]"], "trainer.betas must be a finite number, got (0.5, nan)"),
    (["model=dagmm", "model.params.dropout=inf"], "model.params.dropout must be a finite number, got inf"),
    (["model=dagmm", "model.params.dropout=1"], "model.params.dropout must be in [0, 1), got 1"),
    (["model=dagmm", "model.params.lambda_cov=-1"], "model.params.lambda_cov must be >= 0, got -1"),
    (["model=ama", "model.params.delta=nan"], "model.params.delta must be a finite number, got nan"),
    (["model=anogan", "model.params.search_lr=0"], "model.params.search_lr must be > 0, got 0"),
    (["model=ocsvm", "model.params.gamma=inf"], "model.params.gamma must be a finite number, got inf"),
    (["model=iforest", "dataset=mnist", "protocol=tabular"], "pick the dataset's own protocol"),
    (["-m", "model=iforest", "--cfg", "job"], "-m and --cfg cannot be combined"),
    # Hydra answered in several lines (three readings of a,b) or two (range)
    (["model=iforest", "seed=0,1"], "seed=0,1 is a sweep, and the command runs one job: add -m to run a job for each "
                                    "value (ganad-bench -m paths.output_dir="),
    (["model=iforest", "seed=range(3)", "--cfg", "job"], "seed=range(3) is a sweep, and the command shows one job: "
                                                         "give one value (a list is key=[a,b]"),
    (["-m", "model=iforest", "seed=glob(*)"], "seed=glob(...) picks options of a config group (model=glob(ds*)), "
                                              "and seed is a setting"),  # it ended in a traceback
    # each experiment's own sweep (seed=range(10)) was dropped without a word: one job an experiment
    (["-m", "experiment=tabular_baselines,rcgan_table1_baselines", "model=iforest", "dataset=thyroid"],
     "each experiment's own sweep would be dropped (tabular_baselines sweeps seed;"),
    (["seed=-1", "--cfg", "job"], "seed must be an integer from 0"),  # the config printed is one a run takes
    # its model parameters too, which the constructors check (the run would refuse them before its data loads)
    (["model=iforest", "model.params.n_estimators=-3", "--cfg", "job"], "n_estimators must be an integer >= 1"),
    (["model=alad", "model.params.score=foo", "--cfg", "all"], "unknown model.params.score 'foo': choose one of"),
    # Hydra's own flags, parsed by its parser first: argparse printed Hydra's usage block before its error
    (["--foo"], "unrecognized arguments: --foo (see ganad-bench --help)"),
    # Hydra would look for the package's configs under another name or in another folder, and say so in a
    # search-path listing; a folder of one's own configs is added with --config-dir
    (["-cn", "mine"], "--config-name replaces ganad-bench's primary config: keep your configs in a folder given "
                      "with --config-dir DIR"),
    (["--config-path", "/tmp"], "--config-path replaces ganad-bench's primary config"),
    (["--config-dir", "/no/such/folder"], "--config-dir /no/such/folder: no such folder: give a folder of configs"),
    (["hydra.searchpath=[pkg://no_such_package.conf]"], "hydra.searchpath entry pkg://no_such_package.conf: no such "
                                                          "folder"),
    (["--info", "model=iforest"], "model=iforest --info), or name what to show (see ganad-bench --help)"),
    # overrides on both sides of a flag: argparse takes one run of them (the paths come first here)
    (["--cfg", "job", "seed=1"], "unrecognized arguments: seed=1: give Hydra's flags before the overrides (--cfg "
                                 "job paths.output_dir="),
    # launcher settings (checked before Hydra, which would answer in several lines or quietly use 1)
    (["-m", "model=dcae", "seed=0,1", "hydra.launcher.pack_size=abc"],
     "hydra.launcher.pack_size must be a whole number >= 1, got 'abc'"),
    (["-m", "model=dcae", "seed=0,1", "hydra.launcher.pack_size=0"], "hydra.launcher.pack_size must be"),
    # counted, not expanded: Hydra lists every job in memory first, and this ended in a MemoryError traceback
    (["-m", "model=iforest", "seed=range(0,100000000)"], "the sweep expands to 100,000,000 jobs "
                                                         "(seed=range(0,100000000): 100,000,000 values), more than"),
    (["-m", "model=dcae", "seed=0,1", "hydra.launcher.n_jobs=0"],
     "hydra.launcher.n_jobs must be a whole number >= 1, or -1 for every CPU core, got '0'"),
    (["-m", "model=dcae", "seed=0,1", "hydra.launcher.n_jobs=-5"], "hydra.launcher.n_jobs must be"),
    (["-m", "model=dcae", "seed=0,1", "hydra.launcher.executor=pbs"],
     "hydra.launcher.executor='pbs': choose one of local, slurm, submitit_local"),
    (["-m", "model=dcae", "seed=0,1", "hydra.launcher.executor=slurm"], "needs SLURM's sbatch on this machine"),
    (["-m", "model=dcae", "seed=0,1", "hydra.launcher.gpus_per_node=-1"],
     "hydra.launcher.gpus_per_node must be a whole number >= 0, got '-1'"),
]


@pytest.mark.parametrize("args,message", BAD_INPUTS, ids=[" ".join(a) for a, _ in BAD_INPUTS])
def test_bad_input_is_one_line_non_zero_and_writes_no_row(tmp_path, capsys, args, message):
    code, lines = cli(tmp_path, *[a.strip("'") for a in args], capsys=capsys)
    assert code not in (0, None), lines
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ") and message in lines[0], lines
    # no row, and no run folder either (not even its lock file) for a table or a later run to trip on
    assert not list((tmp_path / "outputs" / "results").rglob("*"))


def test_a_failed_run_keeps_a_run_folder_that_holds_more_than_its_lock(tmp_path):
    """Only a folder the failing run created and left bare is removed: an earlier run's files stay."""
    from ganad_bench.run import remove_if_bare

    results = tmp_path / "results"
    kept, bare = results / "a" / "kept" / "seed0", results / "a" / "bare" / "seed0"
    for folder in (kept, bare):
        (folder / "checkpoints").mkdir(parents=True)
        (folder / ".lock").write_text("pid 1")
    (kept / "checkpoints" / "last.pt").write_bytes(b"x")
    for folder in (kept, bare):
        remove_if_bare(folder, results)
    assert (kept / "checkpoints" / "last.pt").exists()
    assert not (results / "a" / "bare").exists() and results.exists()


def test_a_sweep_that_expands_to_no_jobs_is_a_one_line_error(tmp_path, capsys):
    code, lines = cli(tmp_path, "model=iforest", "seed=range(0)", multirun=True, capsys=capsys)
    assert code == 2 and lines == ["error: the sweep has no jobs: one of its values is empty (e.g. 'seed=range(0)'); "
                                   "give at least one value, e.g. 'seed=range(10)'"], lines


def test_the_table_has_at_least_forty_cases_and_the_readme_counts_them():
    assert len(BAD_INPUTS) >= 40
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert f"`tests/test_faults.py` throws {len(BAD_INPUTS)} such inputs" in readme


def test_output_dir_that_is_a_file_or_under_one(tmp_path, capsys):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    for key, target, message in (("output_dir", blocker, f"paths.output_dir={blocker} ({blocker} is a file)"),
                                 ("output_dir", blocker / "sub", f"paths.output_dir={blocker / 'sub'} ({blocker} is"),
                                 ("results_dir", blocker, "cannot create the run folder")):
        code, lines = cli(tmp_path, "model=iforest", f"paths.{key}={target}", capsys=capsys)  # the last one wins
        assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines


def test_home_folder_in_folder_settings_is_expanded(tmp_path, capsys, monkeypatch):
    """`paths.output_dir=~/runs` (Hydra's grammar refuses it bare) and `'hydra.run.dir=~/logs'` are the home
    folder's, as in a shell: no folder named "~" in the current one, where Hydra would have put the runs' files."""
    home, here = tmp_path / "home", tmp_path / "here"
    here.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(here)
    code, lines = cli(tmp_path, "model=iforest", "paths.output_dir=~/runs", "hydra.run.dir='~/logs'", capsys=capsys)
    assert code == 0, lines
    assert list((home / "runs" / "results").rglob(RESULT_FILE)) and (home / "logs" / "outcome.json").is_file()
    assert not list(here.iterdir()), list(here.iterdir())


def test_an_experiment_run_without_multirun_warns_that_its_sweep_is_dropped(tmp_path, capsys):
    """`ganad-bench experiment=tabular_baselines` (no -m) runs one job: a warning names what the sweep would
    have varied and the command that sweeps it (the same one with -m: its folders kept); a command that sets every
    swept key (one cell of the experiment, on purpose) gets none."""
    code, lines = cli(tmp_path, "experiment=tabular_baselines", "model=iforest", "dataset=thyroid", capsys=capsys)
    again = (f"ganad-bench -m paths.output_dir={tmp_path / 'outputs'} paths.cache_dir={tmp_path / 'cache'} "
             "paths.download=false experiment=tabular_baselines model=iforest dataset=thyroid")
    assert code == 0 and lines[0] == (f"warning: experiment=tabular_baselines sweeps seed only with -m ({again}): "
                                      "this runs one job, at its default"), lines
    code, lines = cli(tmp_path, "experiment=tabular_baselines", "model=iforest", "dataset=thyroid", "seed=0",
                      capsys=capsys)
    assert code == 0 and not any(line.startswith("warning") for line in lines), lines


def test_a_search_of_the_validation_loss_without_validation_rows_is_refused(tmp_path, capsys):
    """Every trial would score inf (no normal rows held out) and Optuna's "best" would be its first trial."""
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    search = ["hydra/sweeper=optuna", "hydra.sweeper.n_trials=2", "trainer.lr=interval(1e-4,1e-2)", "model=dcae"]
    code, lines = cli(tmp_path, *search, multirun=True, capsys=capsys)
    assert code == 2 and lines == ["error: hydra/sweeper=optuna minimises the validation loss (optimize=val_loss), "
                                   "but protocol.val_fraction is 0.0: no validation rows, every trial would score "
                                   "inf: hold out normal rows, e.g. protocol.val_fraction=0.2"], lines
    assert not rows(tmp_path)


def test_missing_launcher_package_names_the_extra(tmp_path, capsys, monkeypatch):
    from ganad_bench import cli as cli_module

    monkeypatch.setitem(cli_module.LAUNCHER_PACKAGES, "joblib", ("not_a_module.at_all", "hydra-joblib-launcher"))
    code, lines = cli(tmp_path, "hydra/launcher=joblib", "model=iforest", multirun=True, capsys=capsys)
    assert code == 2 and lines == ["error: hydra/launcher=joblib needs the hydra-joblib-launcher package: "
                                   "pip install 'ganad_bench[launchers]'"]


def test_jobs_that_fail_alike_print_the_error_once(tmp_path, capsys):
    """A missing data file ends every job of its dataset: its message is printed once, the other jobs name
    the job that printed it, and the summary is one line for the three."""
    code, lines = cli(tmp_path, "model=iforest", "dataset=arrhythmia,thyroid", "seed=0,1,2",
                      f"paths.data_dir={tmp_path / 'empty'}", multirun=True, capsys=capsys)
    assert code == 1 and len(rows(tmp_path)) == 3  # Thyroid ships with the package
    assert sum("arrhythmia.mat not found" in line for line in lines) == 2, lines  # the first job, the summary
    assert sum("the same as" in line for line in lines) == 2
    assert any(line.startswith("invalid 0_iforest_arrhythmia_s0 and 2 more: arrhythmia.mat not found")
               for line in lines), lines
    assert any("3 of 6 run(s) did not finish (invalid)" in line for line in lines)


def test_a_bad_value_in_a_sweep_ends_that_job_only(tmp_path, capsys):
    code, lines = cli(tmp_path, "model=iforest", "protocol.train_fraction=0.5,1.5,0.6", multirun=True, capsys=capsys)
    assert code == 1
    assert len(rows(tmp_path)) == 2  # the two good jobs ran, after the bad one
    assert any("1 of 3 run(s) did not finish (invalid)" in line for line in lines)
    assert not any("Traceback" in line for line in lines)


def test_a_setting_of_the_swept_models_reaches_each_job_whose_config_is_composed_once(tmp_path, capsys, monkeypatch):
    """`-m model=iforest,ocsvm model.params.pca=3`: a setting both swept models have and the default model (RCGAN)
    lacks. Hydra composed the multirun's own config with the default model and the setting on it, and failed in
    several lines; each job gets it. Each job's config is composed once (Hydra's sweeper composed it a second
    time to check it); a job that does not compose is one line, before any job runs, with either launcher (the
    first job is checked before Hydra starts)."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl

    composed = []
    original = ConfigLoaderImpl.load_sweep_config
    monkeypatch.setattr(ConfigLoaderImpl, "load_sweep_config",
                        lambda self, config, overrides: composed.append(overrides) or original(self, config, overrides))
    code, lines = cli(tmp_path, "model=iforest,ocsvm", "model.params.pca=3", multirun=True, capsys=capsys)
    assert code == 0, lines
    assert sorted((row["model"], row["config"]["model"]["params"]["pca"])
                  for row in map(lambda p: json.loads(p.read_text()), rows(tmp_path))) == [("iforest", 3), ("ocsvm", 3)]
    assert len(composed) == 2, composed
    for launcher in ("hydra/launcher=pack", "hydra/launcher=basic"):
        code, lines = cli(tmp_path, "model=iforest,ocsvm", "model.params.n_estimators=5", launcher, "seed=1",
                          multirun=True, capsys=capsys)
        assert code == 2 and len(lines) == 1 and lines[0].startswith("error: the sweep's job "), (launcher, lines)
        assert "model=ocsvm model.params.n_estimators=5" in lines[0] and "does not compose: model.params." \
            "n_estimators: not a setting of model ocsvm" in lines[0] and "(no job ran" in lines[0], lines
    assert len(rows(tmp_path)) == 2  # iforest at seed 1 did not run either


def test_a_glob_over_a_config_group_sweeps_its_matching_options(tmp_path, capsys):
    """`model=glob(...)` (Hydra's sweep over a group's options by name) ended in a traceback before Hydra
    started: the checks listed its values without Hydra's config loader."""
    code, lines = cli(tmp_path, "model=glob([iforest,kde])", "dataset=thyroid", multirun=True, capsys=capsys)
    assert code == 0, lines
    assert sorted(json.loads(p.read_text())["model"] for p in rows(tmp_path)) == ["iforest", "kde"]


def test_only_plain_settings_of_the_groups_of_a_multirun_go_to_its_jobs_alone():
    """What `settings_per_job` hands to the jobs as one-value sweeps, and what it leaves for Hydra's own config
    too: the output folder (the sweep folder is named from it), null and interpolations (a sweep cannot carry
    them as they are), additions, keys the command sweeps, single runs, and other sweepers' commands."""
    from ganad_bench.cli import settings_per_job

    argv = ["-m", "model=dcae,memae", "model.params.rep_dim=8", "trainer.betas=[0.5,0.9]", "dataset.normal_class=3",
            "trainer.device=${oc.env:DEVICE,cpu}", "model.params.hidden=null", "seed=1", "paths.output_dir=o",
            "+model.params.extra=1", "model.params.init=a", "model.params.init=b,c"]
    assert settings_per_job(argv) == [
        "-m", "model=dcae,memae", "model.params.rep_dim=choice(8)", "trainer.betas=choice([0.5,0.9])",
        "dataset.normal_class=choice(3)", *argv[5:]]
    assert settings_per_job(argv[1:]) == argv[1:]
    assert settings_per_job([*argv, "hydra/sweeper=optuna"]) == [*argv, "hydra/sweeper=optuna"]


# ----------------------------------------------------------------------------------------- run identity
def result_of(tmp_path, capsys, *args):
    code, _ = cli(tmp_path, "model=iforest", *args, capsys=capsys)
    assert code == 0
    return {json.loads(p.read_text())["config_hash"] for p in rows(tmp_path)}


def test_bookkeeping_keys_and_unused_settings_do_not_change_the_run(tmp_path, capsys):
    first = result_of(tmp_path, capsys)
    for args in (["trainer.progress=false"], ["trainer.score_batch_size=100"], ["trainer.epochs=3"],
                 ["trainer.checkpoint_interval=5"], ["trainer.checkpoint_seconds=0"]):
        assert result_of(tmp_path, capsys, *args) == first, args  # iforest has no trainer
    # a setting of another protocol (the tabular protocol draws no anomaly set) is refused, not silently kept
    code, lines = cli(tmp_path, "model=iforest", "+protocol.anomaly_fraction=0.3", capsys=capsys)
    assert code == 2 and any("protocol.anomaly_fraction: not a setting of the tabular protocol" in line
                             for line in lines), lines
    assert {json.loads(p.read_text())["config_hash"] for p in rows(tmp_path)} == first


def test_a_class_name_and_its_index_are_one_run():
    from ganad_bench.config import check_run_config, compose_config, to_container
    from ganad_bench.results.store import config_hash

    by_name = check_run_config(to_container(compose_config(["dataset=cifar10", "dataset.normal_class=cat"])))
    by_index = check_run_config(to_container(compose_config(["dataset=cifar10", "dataset.normal_class=3"])))
    assert by_name["dataset"]["normal_class"] == 3 and config_hash(by_name) == config_hash(by_index)


def test_rows_record_the_code_version(tmp_path, capsys):
    result_of(tmp_path, capsys)
    (path,) = rows(tmp_path)
    row = json.loads(path.read_text())
    assert row["code_version"] and "git_dirty" in row and row["resumed_from"] is None


# ----------------------------------------------------------------------------------------------- faults
def deep_run(tmp_path, capsys, *args):
    return cli(tmp_path, "model=dcae", "trainer.epochs=2", "trainer.device=cpu", *args, capsys=capsys)


def checkpoint_of(tmp_path):
    (path,) = (tmp_path / "outputs" / "results").rglob("last.pt")
    return path


@pytest.mark.parametrize("damage", ["empty", "truncated", "garbage"])
def test_a_corrupt_checkpoint_is_set_aside_and_the_run_starts_over(tmp_path, capsys, damage):
    code, _ = deep_run(tmp_path, capsys)
    assert code == 0
    checkpoint = checkpoint_of(tmp_path)
    expected = json.loads(rows(tmp_path)[0].read_text())["metrics"]
    blob = checkpoint.read_bytes()
    checkpoint.write_bytes({"empty": b"", "truncated": blob[:len(blob) // 3], "garbage": os.urandom(500)}[damage])
    code, lines = deep_run(tmp_path, capsys, "force=true")  # force: train again (and so read the checkpoint)
    assert code == 0, lines
    code, lines = deep_run(tmp_path, capsys)
    assert code == 0 and json.loads(rows(tmp_path)[0].read_text())["metrics"] == expected


def test_a_checkpoint_whose_loader_fails_without_a_message_is_set_aside(tmp_path, capsys, monkeypatch):
    """An exception with an empty message (`EOFError()`) made the set-aside line itself fail (IndexError)."""
    code, _ = deep_run(tmp_path, capsys)
    rows(tmp_path)[0].unlink()  # the run is unfinished again: the next one resumes from its checkpoint

    def no_message(*args, **kwargs):
        raise EOFError()

    monkeypatch.setattr(torch, "load", no_message)
    code, lines = deep_run(tmp_path, capsys)
    assert code == 0, lines
    assert list(checkpoint_of(tmp_path).parent.glob("last.pt.bad-*"))


def test_a_crafted_checkpoint_runs_no_code(tmp_path, capsys):
    code, _ = deep_run(tmp_path, capsys)
    checkpoint = checkpoint_of(tmp_path)
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"fingerprint": Payload()}, checkpoint)
    (rows(tmp_path)[0]).unlink()  # the run is not finished: the next command trains it and meets the file
    code, lines = deep_run(tmp_path, capsys)
    assert code == 0, lines
    assert not marker.exists()
    assert list(checkpoint.parent.glob("last.pt.bad-*")), "the crafted file is set aside"


def test_force_trains_from_scratch(tmp_path, capsys):
    deep_run(tmp_path, capsys)
    code, _ = deep_run(tmp_path, capsys, "force=true")
    assert code == 0
    assert "training from scratch" in logs(tmp_path) and "resumed from" not in logs(tmp_path)
    assert json.loads(rows(tmp_path)[0].read_text())["resumed_from"] is None


@pytest.mark.parametrize("damage", [b"", b"PK\x03\x04 not a zip", b"\x93NUMPY"])
def test_a_corrupt_parsed_cache_is_rebuilt(tmp_path, capsys, damage, tiny_data):
    from ganad_bench.data import cache

    code, _ = cli(tmp_path, "model=iforest", "dataset=musk", f"paths.data_dir={tiny_data}", capsys=capsys)
    assert code == 0
    (entry,) = (tmp_path / "cache" / "parsed").glob("musk-*.npz")
    entry.write_bytes(damage)
    cache._memo.clear()
    code, _ = cli(tmp_path, "model=iforest", "dataset=musk", f"paths.data_dir={tiny_data}", "seed=1", capsys=capsys)
    assert code == 0 and "rebuilding it" in logs(tmp_path)
    with np.load(entry) as npz:
        assert "features" in npz.files or len(npz.files) > 0


@pytest.mark.parametrize("damage", [
    lambda row: '{"status": "ok", "metr',  # cut short
    lambda row: json.dumps({"status": "ok"}),  # parses, but holds no row
    lambda row: json.dumps({**row, "seed": "0"}),  # a field of the wrong type
    lambda row: json.dumps({**row, "metrics": {**row["metrics"], "f1": "high"}}),  # a metric that is no number
    lambda row: "[" * 100_000,  # too deep for the parser
])
def test_a_corrupt_row_is_retrained_and_reported_by_the_table(tmp_path, capsys, damage):
    from ganad_bench.cli import table_main

    cli(tmp_path, "model=iforest", "seed=0,1", multirun=True, capsys=capsys)
    damaged = rows(tmp_path)[0]
    damaged.write_text(damage(json.loads(damaged.read_text())))
    table_main([str(tmp_path / "outputs" / "results"), "--out", str(tmp_path / "t")])
    err = capsys.readouterr().err
    assert f"warning: skipped {damaged}" in err.replace("\n", "")
    code, _ = cli(tmp_path, "model=iforest", "seed=0,1", multirun=True, capsys=capsys)
    assert code == 0 and json.loads(damaged.read_text())["status"] == "ok"


def test_a_run_locked_by_another_process_is_left_to_it(tmp_path, capsys):
    from ganad_bench.config import check_run_config, compose_config, to_container
    from ganad_bench.results.store import run_dir

    config = check_run_config(to_container(compose_config([f"paths.output_dir={tmp_path / 'outputs'}",
                                                           "model=iforest"])))
    folder = run_dir(tmp_path / "outputs" / "results", config, trains_networks=False)
    with RunLock(folder) as held:
        assert held.acquired
        code, lines = cli(tmp_path, "model=iforest", capsys=capsys)
    assert code == 0 and any(line.startswith("busy iforest") for line in lines)
    assert rows(tmp_path) == []
    code, lines = cli(tmp_path, "model=iforest", capsys=capsys)  # released (as by a killed holder): it runs
    assert code == 0 and len(rows(tmp_path)) == 1


def test_temporary_files_of_a_killed_run_are_removed(tmp_path, capsys):
    deep_run(tmp_path, capsys)
    folder = rows(tmp_path)[0].parent
    rows(tmp_path)[0].unlink()
    leftovers = [folder / ".result.json.abc.part", folder / "checkpoints" / ".last.pt.xyz.part"]
    for path in leftovers:
        path.write_bytes(b"partial")
    copying = folder / ".checkpoints.123.part"  # a training twin's checkpoints, half copied
    (copying / "sub").mkdir(parents=True)
    (copying / "sub" / "last.pt").write_bytes(b"partial")
    leftovers.append(copying)
    code, _ = deep_run(tmp_path, capsys)
    assert code == 0 and not any(p.exists() for p in leftovers)


def test_whole_file_writes_replace_files_and_write_through_links_and_pipes(tmp_path):
    """A file is replaced whole (no temporary file left); a link or a pipe (`--out /dev/stdout`) is written
    through, never renamed over: as root, renaming over /dev/stdout or /dev/full replaced the device."""
    import threading

    from ganad_bench.atomic import write_atomic

    target = tmp_path / "scores.csv"
    target.write_text("old")
    write_atomic(target, lambda out: out.write("new"))
    assert target.read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["scores.csv"]
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    write_atomic(link, lambda out: out.write("through"))
    assert link.is_symlink() and target.read_text() == "through"
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    received = []
    reader = threading.Thread(target=lambda: received.append(pipe.read_text()))
    reader.start()
    write_atomic(pipe, lambda out: out.write("streamed"))
    reader.join(timeout=10)
    assert received == ["streamed"] and not pipe.is_file()


def test_numpy_files_are_read_whole_or_refused_with_the_reason(tmp_path):
    """The one reader of the project's NumPy files: every array of a whole file; a missing, empty, cut-short,
    pickled or mislabelled file, or one without a required array, is UnreadableArrays naming why, and no
    message suggests unpickling."""
    import pickle

    from ganad_bench.atomic import UnreadableArrays, read_npy, read_npz

    archive, single = tmp_path / "scores.npz", tmp_path / "x.npy"
    np.savez(archive, labels=np.array([0, 1]), scores=np.array([0.5, 2.0]))
    np.save(single, np.arange(3.0))
    assert set(read_npz(archive, required=("labels",))) == {"labels", "scores"}
    assert read_npy(single).tolist() == [0.0, 1.0, 2.0]
    (tmp_path / "empty.npz").write_bytes(b"")
    (tmp_path / "cut.npz").write_bytes(archive.read_bytes()[:100])
    (tmp_path / "pickled.npy").write_bytes(pickle.dumps({"a": 1}))
    (tmp_path / "archive.npy").write_bytes(archive.read_bytes())
    cases = [(read_npz, tmp_path / "absent.npz", "No such file"), (read_npz, tmp_path / "empty.npz", "empty"),
             (read_npz, tmp_path / "cut.npz", "damaged .npz"), (read_npz, single, "not a .npz archive"),
             (read_npy, tmp_path / "pickled.npy", "pickled Python objects are never read"),
             (read_npy, tmp_path / "archive.npy", "a .npz archive of several arrays")]
    for read, path, reason in cases:
        with pytest.raises(UnreadableArrays, match=reason) as caught:
            read(path)
        assert caught.value.missing == (path.name == "absent.npz") and "allow_pickle" not in str(caught.value)
    with pytest.raises(UnreadableArrays, match="no array 'threshold' in it"):
        read_npz(archive, required=("labels", "threshold"))


def test_a_full_disk_is_said_as_such_with_its_fix_and_leaves_the_old_file(tmp_path, monkeypatch, capsys):
    """torch.save on a full disk raises "unexpected pos 379776 vs 379664" (a RuntimeError): a write that fails
    while the disk is full is an ENOSPC OSError, the old file stays whole, no temporary file is left; the run's
    row and line name the fix; a full output folder is refused before Hydra writes into it (its traceback)."""
    import errno

    from ganad_bench import atomic
    from ganad_bench.cli import make_folder
    from ganad_bench.errors import ConfigError, fault_text

    target = tmp_path / "last.pt"
    target.write_text("previous checkpoint")

    def torch_like(out):
        out.write("partial")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 379776 vs 379664")

    monkeypatch.setattr(atomic, "disk_full", lambda folder: True)
    with pytest.raises(OSError) as full:
        atomic.write_atomic(target, torch_like)
    assert full.value.errno == errno.ENOSPC and full.value.filename == str(target)
    assert target.read_text() == "previous checkpoint" and [p.name for p in tmp_path.iterdir()] == ["last.pt"]
    assert fault_text(full.value).endswith("(free space there, or set paths.output_dir to a disk with room; run "
                                           "again: it resumes from the last checkpoint written whole)")
    monkeypatch.setattr(atomic, "disk_full", lambda folder: False)  # room left: the writer's own error
    with pytest.raises(RuntimeError, match="unexpected pos"):
        atomic.write_atomic(target, torch_like)
    assert fault_text(RuntimeError("x")) == "RuntimeError: x" and fault_text(MemoryError()) == "MemoryError"

    def no_room(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("tempfile.TemporaryFile", no_room)
    with pytest.raises(ConfigError, match=r"^cannot write into paths.output_dir=\S+ \(No space left on device\): "
                                          r"free space there, or choose another folder$"):
        make_folder(f"paths.output_dir={tmp_path / 'out'}", tmp_path / "out")


def test_a_disk_that_fills_between_a_sweeps_jobs_is_one_line_not_hydras_traceback(tmp_path, monkeypatch, capsys):
    """Hydra writes each job's config files before the job runs; a full disk there ended the sweep in its
    traceback."""
    import errno

    import hydra.core.utils

    def full(cfg, filename, output_dir):  # where run_job writes a job's .hydra/config.yaml
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(output_dir / filename))

    monkeypatch.setattr(hydra.core.utils, "_save_config", full)
    code, lines = cli(tmp_path, "model=iforest", "seed=0,1", multirun=True, capsys=capsys)
    assert code == 1 and len(lines) == 1, lines
    assert re.fullmatch(r"error: cannot write \S+/multirun/\S+/0_\S+/\.hydra/config\.yaml \(No space left on device\): "
                        r"free space there, or set paths.output_dir to a disk with room; then run the same command "
                        r"again to finish the missing runs", lines[0]), lines[0]
    assert not rows(tmp_path)


def test_an_output_is_checked_as_it_will_be_written(tmp_path, monkeypatch):
    """A new or regular file needs a writable folder (it is replaced from a temporary file beside it); a link
    such as /dev/stdout only its own target (a user cannot write /dev itself)."""
    from ganad_bench.atomic import check_writable

    target = tmp_path / "scores.csv"
    target.write_text("")
    link = tmp_path / "stdout"
    link.symlink_to(target)
    check_writable(tmp_path / "new" / "scores.csv")
    assert not (tmp_path / "new").exists()  # nothing made by a check: the write makes the folder
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != tmp_path)  # the folder is read-only
    check_writable(link)
    for refused in (target, tmp_path / "new.csv", tmp_path / "new" / "scores.csv"):
        with pytest.raises(PermissionError):
            check_writable(refused)
    with pytest.raises(NotADirectoryError):
        check_writable(target / "under_a_file.csv")


def test_pickled_payload_is_not_needed_for_checkpoints(tmp_path):
    """Checkpoints hold tensors and plain values only (they load with weights_only=True)."""
    from ganad_bench import create_detector

    det = create_detector("dcae", trainer={"epochs": 1, "device": "cpu", "progress": False},
                          checkpoint_dir=str(tmp_path / "ck"))
    det.fit(np.random.default_rng(0).normal(size=(64, 6)).astype(np.float32))
    state = torch.load(tmp_path / "ck" / "last.pt", weights_only=True)
    assert state["epoch"] == 1
    with pytest.raises(pickle.UnpicklingError):
        torch.save({"x": object()}, tmp_path / "obj.pt")
        torch.load(tmp_path / "obj.pt", weights_only=True)


def test_an_unknown_table_metric_is_a_one_line_error_naming_the_rows_metrics(tmp_path, capsys):
    from ganad_bench.cli import table_main

    cli(tmp_path, "model=iforest", capsys=capsys)
    with pytest.raises(SystemExit) as stop:
        table_main([str(tmp_path / "outputs" / "results"), "--metric", "f2", "--out", str(tmp_path / "t")])
    assert stop.value.code == 2
    (message,) = capsys.readouterr().err.strip().splitlines()
    assert "has the metric f2: choose from " in message and "auroc" in message and "f1" in message
    assert not list(tmp_path.glob("t*"))


def test_a_breakdown_by_anomaly_class_of_rows_without_one_is_a_one_line_error(tmp_path, capsys):
    from ganad_bench.cli import table_main

    cli(tmp_path, "model=iforest", capsys=capsys)  # a tabular run: its anomalies are one class
    with pytest.raises(SystemExit) as stop:
        table_main([str(tmp_path / "outputs" / "results"), "--by-anomaly-class", "--out", str(tmp_path / "t")])
    assert stop.value.code == 1
    (message,) = capsys.readouterr().err.strip().splitlines()
    assert message.startswith("error: no row under ") and "has an AUROC per anomalous class" in message
    assert message.endswith("run one, or drop --by-anomaly-class")
    assert not list(tmp_path.glob("t*"))


def test_result_commands_refuse_empty_paths_and_keep_a_prefix_whole(tmp_path, capsys, monkeypatch):
    """An empty path (`--out=`) would be the current folder, and argparse's own errors a usage block: one line,
    exit 2. An --out prefix keeps its dots (tables/v1.2 wrote every table to tables/v1.md), and an --out that
    names a folder holds the files under their default name."""
    from ganad_bench.cli import paper_main, plot_main, score_main, table_main

    cli(tmp_path, "model=iforest", "dataset=thyroid", "seed=0,1", multirun=True, capsys=capsys)
    results = tmp_path / "outputs" / "results"
    monkeypatch.chdir(tmp_path)
    run_dir = str(rows(tmp_path)[0].parent)
    for main, args, message in [
            (table_main, [str(results), "--out="], "argument --out: is empty: give a path"),
            (table_main, [str(results), "--reproduction", ""], "argument --reproduction: is empty"),
            (table_main, [str(results), "--copy-rows="], "argument --copy-rows: is empty"),
            (table_main, [""], "argument folders: is empty"),
            # an empty name (an unset shell variable in quotes): --code-version '' took every row
            (table_main, [str(results), "--code-version", ""], "argument --code-version: is empty: give a value"),
            (table_main, [str(results), "--metric", " "], "argument --metric: is empty: give a value"),
            (table_main, [str(results), "--paper="], "argument --paper: is empty: give a value"),
            (table_main, [str(results), "--format", "xls"], "unrecognized arguments: --format xls"),
            (plot_main, [str(results), "--out="], "argument --out: is empty"),
            (score_main, [run_dir, "", "--out", "s.csv"], "argument inputs: is empty"),
            (paper_main, ["--out=", "rcgan:1"], "argument --out: is empty"),
            (paper_main, [], "the following arguments are required: PAPER:TABLE")]:
        with pytest.raises(SystemExit) as stop:
            main(args)
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert stop.value.code == 2 and line.startswith("error: ") and message in line, line
        assert line.endswith(" --help)"), line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "outputs"]  # nothing written for them
    table_main([str(results), "--out", str(tmp_path / "t" / "v1.2")])
    table_main([str(results), "--metric", "AUROC", "--out", str(tmp_path / "upper")])  # as the tables print it
    assert (tmp_path / "upper_tabular_auroc.md").is_file()
    table_main([str(results), "--out", str(tmp_path / "folder") + "/"])
    (tmp_path / "paper").mkdir()
    table_main([str(results), "--paper", "rcgan:1", "--out", str(tmp_path / "paper")])
    assert sorted(p.name for p in (tmp_path / "t").iterdir()) == [
        "v1.2.csv", *(f"v1.2_tabular_{m}.{s}" for m in ("f1", "precision", "recall") for s in ("md", "tex"))]
    assert (tmp_path / "folder" / "table.csv").is_file() and (tmp_path / "folder" / "table_tabular_f1.md").is_file()
    assert sorted(p.name for p in (tmp_path / "paper").iterdir()) == [
        f"table_rcgan_1.{s}" for s in ("csv", "md", "png", "tex")]


def test_check_writable_of_the_current_folder_names_it():
    """`Path("")` is "." and has no parents: the check says it is a folder (it ended in StopIteration)."""
    from ganad_bench.atomic import check_writable

    with pytest.raises(IsADirectoryError):
        check_writable(Path(""))


def test_unwritable_table_and_plot_outputs_and_rows_without_scores_are_one_line_errors(tmp_path, capsys):
    from ganad_bench.cli import plot_main, table_main

    cli(tmp_path, "model=iforest", capsys=capsys)
    results = tmp_path / "outputs" / "results"
    (tmp_path / "file").write_text("")  # a file where a folder is needed
    for main, args in [(table_main, ["--out", str(tmp_path / "file" / "t")]),
                       (table_main, ["--paper", "alad:II", "--out", str(tmp_path / "file" / "t")]),
                       (plot_main, ["--out", str(tmp_path / "file" / "plots")]),
                       (plot_main, ["--out", str(tmp_path / "file")])]:
        with pytest.raises(SystemExit) as stop:
            main([str(results), *args])
        captured = capsys.readouterr()
        (message,) = captured.err.strip().splitlines()
        assert stop.value.code == 2 and message.startswith(f"error: cannot write {tmp_path / 'file'}"), message
        assert "Traceback" not in captured.out + captured.err
    for folder, message in [(tmp_path / "file", "error: not a folder: "), (tmp_path / "none", "error: no such folder")]:
        for main in (table_main, plot_main):  # the result commands read folders of rows alike
            with pytest.raises(SystemExit) as stop:
                main([str(folder), "--out", str(tmp_path / "out")])
            (line,) = capsys.readouterr().err.strip().splitlines()
            assert stop.value.code == 2 and line.startswith(message), line
    # an output in a run's folder (its row, its metrics.csv) is refused, the run's files untouched
    (run,) = [path.parent for path in results.rglob("result.json")]
    before = {path: path.read_bytes() for path in run.rglob("*") if path.is_file()}
    for main, args in [(table_main, ["--out", str(run / "metrics")]),
                       (table_main, ["--reproduction", str(run / "result.json")]),
                       (plot_main, ["--out", str(run)])]:
        with pytest.raises(SystemExit) as stop:
            main([str(results), *args])
        (message,) = capsys.readouterr().err.strip().splitlines()
        assert stop.value.code == 2 and f"lies in the run folder {run}, whose files the run needs" in message
    assert {path: path.read_bytes() for path in run.rglob("*") if path.is_file()} == before
    table_main([str(results), "--copy-rows", str(tmp_path / "rows")])
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        plot_main([str(tmp_path / "rows"), "--out", str(tmp_path / "plots")])
    (message,) = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 1 and "no scores.npz beside the result.json files" in message
    assert not (tmp_path / "plots").exists()


# --------------------------------------------------------------------- the analysis scripts, same rule
@pytest.mark.parametrize("script, args, says", [
    ("kde_check.py", ["paths.download=false", "--classes", "0"], "error: train-images-idx3-ubyte.gz not found"),
    ("gan_measure.py", ["model=no_such_model", "--seeds", "0"], "error: unknown model 'no_such_model'"),
    ("split_share.py", [], "error: kddcup.data_10_percent.gz not found"),
    ("ink_check.py", [], "error: train-images-idx3-ubyte.gz not found"),
])
def test_analysis_scripts_end_a_user_error_in_one_line(tmp_path, script, args, says):
    """scripts/*.py behind the gap notes: a missing data file or a bad override is the CLI's one line on stderr
    and exit status 2, as the CLI's bad input (`ganad_bench.errors.one_line_errors`), no traceback, nothing
    written."""
    import subprocess

    env = {**os.environ, "GANAD_DATA_DIR": str(tmp_path / "no_data"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, f"scripts/{script}", *args, *(["--out", str(tmp_path / "out.json")]
                           if script == "gan_measure.py" else [])], capture_output=True, text=True, env=env,
                          cwd=Path(__file__).parents[1], timeout=300)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr[-2000:]
    assert proc.stderr.startswith(says) and not (tmp_path / "out.json").exists()
