"""The `ganad-bench` command end to end (subprocesses), its error paths, resume, and the table command."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ENTRY = [sys.executable, "-c", "from ganad_bench.cli import main; main()"]
TABLE = [sys.executable, "-c", "from ganad_bench.cli import table_main; table_main()"]


def ganad(tmp_path, *args, data_dir=None, entry=ENTRY, cwd=None):
    env = {**os.environ, "GANAD_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("GANAD_DATA_DIR", None)
    if data_dir is not None:
        env["GANAD_DATA_DIR"] = str(data_dir)
    extra = [] if entry is TABLE else [f"paths.output_dir={tmp_path / 'outputs'}", "paths.download=false"]
    lead = list(args[:1]) if args[:1] == ("-m",) else []  # argparse wants -m before the overrides
    return subprocess.run([*entry, *lead, *extra, *args[len(lead):]], capture_output=True, text=True, env=env,
                          cwd=cwd or tmp_path, timeout=300)


def results(tmp_path):
    return sorted((tmp_path / "outputs").rglob("result.json"))


def test_bare_command_runs_the_default_on_embedded_thyroid(tmp_path):
    done = ganad(tmp_path, "trainer.epochs=2")  # the default experiment (RCGAN), on a test budget
    assert done.returncode == 0, done.stderr
    assert "rcgan · thyroid · tabular · seed 0" in done.stderr and "published rcgan:1" in done.stderr
    (path,) = results(tmp_path)
    row = json.loads(path.read_text())
    assert row["status"] == "ok" and row["dataset"] == "thyroid"
    assert list((tmp_path / "outputs" / "runs").glob("*/*.log")), "Hydra keeps a log per run"


def test_help_and_cfg_job(tmp_path):
    done = ganad(tmp_path, "--help")
    model_line = next(line for line in done.stdout.splitlines() if line.startswith("model:"))
    assert done.returncode == 0 and {"iforest", "kde", "ocsvm"} <= set(model_line[6:].replace(",", " ").split())
    # the help's examples name the package's commands, every one of them
    from importlib.metadata import distribution

    scripts = {e.name for e in distribution("ganad_bench").entry_points if e.group == "console_scripts"}
    assert set(re.findall(r"^\s*(ganad-bench[\w-]*)", done.stdout, re.MULTILINE)) == scripts
    done = ganad(tmp_path, "model=kde", "--cfg", "job")
    assert done.returncode == 0 and "name: kde" in done.stdout and results(tmp_path) == []


def test_help_lists_the_groups_one_picks_with_the_options_hydra_finds():
    """`--help` is ours (Hydra's composes the config repository once per group): every group one picks with
    group=option, with the options Hydra's own listing gives, and not the groups the config fills in."""
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    from ganad_bench.cli import CONFIG_GROUPS, help_text

    text = help_text()
    groups = text.split("== Config groups", 1)[1].split("set from those choices", 1)[0].splitlines()[1:]
    listed = dict(line.split(": ", 1) for line in groups if line)
    assert [group for group in listed if "/" not in group] == list(CONFIG_GROUPS)
    assert "experiment/ama_table1_pair" in listed and not {"dataset_model", "model_params"} & set(listed)
    assert not any(group.startswith("protocol/") for group in listed)  # protocol/dataset_default/<dataset>
    assert "  protocol=dataset_default/${dataset}" in text.splitlines()
    with initialize_config_module(config_module="ganad_bench.conf", version_base=None):
        loader = GlobalHydra.instance().config_loader()
        for group, options in listed.items():
            assert options.split(", ") == sorted(loader.get_group_options(group)), group


def test_help_lists_the_configs_of_a_config_dir(tmp_path):
    """--config-dir DIR (configs outside the package): the help lists DIR's options and subgroups too."""
    (tmp_path / "mine" / "model").mkdir(parents=True)
    (tmp_path / "mine" / "model" / "my_detector.yaml").write_text("name: iforest\nparams: {}\n")
    (tmp_path / "mine" / "experiment" / "my_pairs").mkdir(parents=True)
    (tmp_path / "mine" / "experiment" / "my_pairs" / "a_vs_b.yaml").write_text("seed: 1\n")
    done = ganad(tmp_path, "--help", entry=[*ENTRY, "--config-dir", str(tmp_path / "mine")])
    lines = done.stdout.splitlines()
    model_line = next(line for line in lines if line.startswith("model:"))
    assert done.returncode == 0 and "my_detector" in model_line and "iforest" in model_line
    assert "experiment/my_pairs: a_vs_b" in lines


def test_a_reader_that_goes_away_ends_the_help_without_a_traceback(tmp_path):
    """`ganad-bench --help | head -1`: the pipe closes before the help is written."""
    proc = subprocess.Popen([*ENTRY, "--help"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    proc.stdout.close()  # before the interpreter has started: its first write meets a closed pipe
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1 and err == b"", err.decode()


def test_configs_of_ones_own_in_a_config_dir_are_choices_checked_and_run(tmp_path):
    """--config-dir DIR (or hydra.searchpath) adds DIR/<group>/*.yaml to the choices: the checks before Hydra
    compose them as the run does, and name them among the options of a mistyped choice."""
    folder = tmp_path / "my configs"  # a name Hydra's override grammar reads only quoted
    (folder / "model").mkdir(parents=True)
    (folder / "model" / "small_forest.yaml").write_text("name: iforest\nparams: {n_estimators: 7}\n")
    (folder / "model" / "bad_forest.yaml").write_text("name: iforest\nparams: {n_estimators: -3}\n")
    mine = str(folder)
    done = ganad(tmp_path, "model=small_forest", "plots=false", entry=[*ENTRY, "--config-dir", mine])
    assert done.returncode == 0, done.stderr
    (path,) = results(tmp_path)
    assert json.loads(path.read_text())["config"]["model"]["params"]["n_estimators"] == 7
    done = ganad(tmp_path, f"hydra.searchpath=['file://{mine}']", "model=small_forst", "--cfg", "job")
    assert done.returncode == 2 and done.stderr.startswith("error: unknown model 'small_forst'")
    assert "rcgan, skip_ganomaly, small_forest" in done.stderr and done.stdout == ""
    done = ganad(tmp_path, "model=bad_forest", entry=[*ENTRY, "-cd", mine])  # checked before the data loads
    assert done.returncode == 2 and done.stderr.strip() == "error: model.params.n_estimators must be an integer " \
                                                           ">= 1, got -3", done.stderr
    assert results(tmp_path) == [path]


def test_every_command_prints_the_code_and_library_versions_a_row_records(capsys):
    """`--version`: the package, its commit as rows label it (`--code-version` takes it), the libraries; for
    ganad-bench ours rather than Hydra's, which names Hydra alone."""
    from ganad_bench import cli
    from ganad_bench.provenance import code_version, versions

    line = None
    for command in (cli._main, cli.table_main, cli.paper_main, cli.plot_main, cli.score_main):
        with pytest.raises(SystemExit) as exit_:
            raise SystemExit(command(["--version"]))
        assert exit_.value.code in (0, None)
        out = capsys.readouterr().out.strip()
        assert line in (None, out)  # one line, the same for every command
        line = out
    library = versions()
    assert line.startswith(f"ganad_bench {library['ganad_bench']}") and "\n" not in line
    assert f"torch {library['torch']}" in line and f"hydra {library['hydra']}" in line
    assert code_version()["git_revision"] is None or f"(code {code_version()['label']})" in line


@pytest.mark.parametrize("args,message", [
    (["model=nope"], "unknown model 'nope': choose one of "),
    (["-m", "model=iforest,nope"], "unknown model 'nope'"),
    (["dataset=imagenet"], "unknown dataset 'imagenet'"),
    (["dataset=musk"], "musk.mat not found"),
    (["protocol.train_fraction=1.5"], "protocol.train_fraction must be a number in (0, 1), got 1.5"),
    (["protocol.contamination=0"], "protocol.contamination must be a number in (0, 1), got 0"),
    # a key added with + that nothing reads is a typo: it would change nothing but the run's folder
    (["+sed=3"], "sed: not a setting of a run config"),
    (["+protocol.val_frac=0.1"], "protocol.val_frac: not a setting of the tabular protocol"),
    (["+dataset.scalr=none"], "dataset.scalr: not a setting of dataset"),
    (["+model.param.nu=0.1"], "model.param: not a setting of model"),
    (["+paths.data=x"], "paths.data: not a setting of paths"),
])
def test_bad_input_exits_non_zero_with_one_line_and_no_result(tmp_path, args, message):
    done = ganad(tmp_path, *args)
    assert done.returncode != 0
    assert message in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert results(tmp_path) == []


def test_wrong_checksum_exits_non_zero(tmp_path):
    data = tmp_path / "data" / "odds"
    data.mkdir(parents=True)
    (data / "musk.mat").write_bytes(b"MATLAB 5.0 MAT-file, truncated")
    done = ganad(tmp_path, "dataset=musk", data_dir=tmp_path / "data")
    assert done.returncode == 2 and "sha256" in done.stderr and "replace it" in done.stderr  # a user error: 2
    assert "Traceback" not in done.stderr and results(tmp_path) == []


def test_works_from_another_directory(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = ganad(tmp_path, "model=ocsvm", cwd=elsewhere)
    assert done.returncode == 0, done.stderr and len(results(tmp_path)) == 1


def test_sweep_resumes_only_missing_runs(tmp_path):
    args = ["-m", "model=iforest,ocsvm", "seed=0,1"]
    first = ganad(tmp_path, *args)
    assert first.returncode == 0, first.stderr
    paths = results(tmp_path)
    assert len(paths) == 4
    paths[0].unlink()  # as if the sweep had been killed before this run finished
    kept = {p: p.stat().st_mtime_ns for p in paths[1:]}
    second = ganad(tmp_path, *args)
    assert second.returncode == 0, second.stderr
    assert second.stderr.count("skip ") == 3 and second.stderr.count("ok ") == 1
    assert paths[0].is_file() and all(p.stat().st_mtime_ns == t for p, t in kept.items())


def test_failed_run_is_recorded_and_the_sweep_goes_on(tmp_path):
    done = ganad(tmp_path, "-m", "model=iforest", "model.params.n_estimators=-1,10")
    assert done.returncode == 1
    rows = [json.loads(p.read_text()) for p in results(tmp_path)]
    assert [r["status"] for r in rows] == ["ok"]  # the bad value is recorded as an invalid job, no row
    assert "1 of 2 run(s) did not finish (invalid)" in done.stderr and "Traceback" not in done.stderr


def test_table_command_writes_markdown_csv_latex(tmp_path):
    assert ganad(tmp_path, "-m", "model=iforest,ocsvm", "seed=0,1").returncode == 0
    out = tmp_path / "tables" / "t"
    done = ganad(tmp_path, str(tmp_path / "outputs"), "--out", str(out), entry=TABLE)
    assert done.returncode == 0, done.stderr
    md = Path(f"{out}_tabular_f1.md").read_text()
    assert "| thyroid | - |" in md and "iforest pub" in md and "70.27" in md
    assert Path(f"{out}_tabular_f1.tex").read_text().count(r"\\") >= 2
    csv = Path(f"{out}.csv").read_text()
    assert "rcgan:1" in csv and csv.count("thyroid") == 6  # 2 models x 3 metrics


def test_table_command_on_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    done = ganad(tmp_path, str(tmp_path / "empty"), entry=TABLE)
    assert done.returncode == 1 and "no finished result.json" in done.stderr and "run ganad-bench first" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_table_command_with_a_code_version_no_row_has(tmp_path):
    assert ganad(tmp_path, "model=iforest").returncode == 0
    done = ganad(tmp_path, str(tmp_path / "outputs"), "--code-version", "0123abc", entry=TABLE)
    assert done.returncode == 1 and "drop --code-version" in done.stderr, done.stderr


def test_summary_line_puts_the_headline_metric_beside_the_published_one():
    from ganad_bench.cli import summary_line

    row = {"model": "ocsvm", "dataset": "mnist", "normal_class": 0, "protocol": "one_class", "seed": 0,
           "status": "ok", "metrics": {"auroc": 0.9, "auprc": 0.8}, "timings": {"total_s": 1.0}, "result_path": "x"}
    line = summary_line(row)
    assert "AUROC 0.9000 [dim](published memgan:1 0.9860" in line and "AUPRC 0.8000" in line
    assert "weakest" not in line
    row["metrics"].update(auroc_vs_1=0.95, auroc_vs_7=0.41, auroc_vs_9=0.88)  # its anomalies' classes
    assert "AUPRC 0.8000 · weakest against class 7: AUROC 0.4100 · " in summary_line(row)


# submitit starts a process per job (~8 s each here): slow; the README reports both launchers
@pytest.mark.parametrize("launcher", ["joblib", pytest.param("submitit_local", marks=pytest.mark.slow)])
def test_parallel_launchers_record_every_job_and_exit_from_the_rows(tmp_path, launcher):
    """10 runs, one of which fails (its loss diverges): 9 ok rows, 1 failed row, exit 1, whichever launcher
    ran them."""
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher" if launcher == "joblib"
                        else "hydra_plugins.hydra_submitit_launcher")
    extra = ["hydra.launcher.n_jobs=2"] if launcher == "joblib" else ["hydra.launcher.tasks_per_node=1"]
    done = ganad(tmp_path, "-m", f"hydra/launcher={launcher}", *extra, "model=dcae", "trainer.epochs=1",
                 "trainer.device=cpu", "trainer.lr=1e30,1e-3,2e-3,3e-3,4e-3,5e-3,6e-3,7e-3,8e-3,9e-3")
    assert done.returncode == 1, done.stderr
    rows = [json.loads(p.read_text()) for p in results(tmp_path)]
    assert sorted(r["status"] for r in rows) == ["diverged"] + ["ok"] * 9
    assert "1 of 10 run(s) did not finish (diverged)" in done.stderr and "Traceback" not in done.stderr


def test_result_commands_end_on_ctrl_c_in_one_line(tmp_path):
    """Ctrl-C while `ganad-bench-table --reproduction` composes its report (about a minute on the committed
    rows) ends as ganad-bench does: exit 130, one line, no traceback from wherever it was, no report and no
    temporary file (the report is written whole or not at all)."""
    import signal
    import time

    committed = Path(__file__).resolve().parents[1] / "campaign" / "results"
    report = tmp_path / "REPORT.md"
    script = ("import sys; from ganad_bench import cli; cli.stop_on_signals(None, cli.RESULT_INTERRUPTED); "
              "print('ready', flush=True); cli.table_main()")
    proc = subprocess.Popen([sys.executable, "-c", script, str(committed), "--reproduction", str(report)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(2.0)  # inside the work: reading the rows, composing the tables' configs
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    # before it, only what the command says of the rows (the committed ones mix code versions: one warning)
    *before, last = err.strip().splitlines()
    assert last == "interrupted: no file was left half-written; run the same command again"
    assert all(line.startswith("warning: ") for line in before) and "Traceback" not in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == []
