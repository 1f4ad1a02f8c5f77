"""The experiment configs against the published tables they reproduce (tests/test_architecture.py checks
that every experiment composes with each model / dataset / protocol it sweeps; this checks what they sweep):

- AMA Table 1 sweeps exactly the table's dataset pairs whose files this project reads, each ablation
  experiment switches exactly its own AMA setting, and its runs land in the ablation rows' cells;
- every runnable column of ALAD Tables III / VIII, MEMGAN Table 2, RCGAN Table 2 and AMA Table 1 (a
  published column one of our detectors or ablation variants is named by) has runs in the table's
  experiments, over the table's datasets and classes, and every run of them falls in a column;
- every experiment file says what it reproduces and how to run it."""

from __future__ import annotations

from pathlib import Path

import pytest

from ganad_bench.config import check_run_config, compose_config, to_container
from ganad_bench.data.registry import available_datasets
from ganad_bench.models.kit.catalog import is_deep
from ganad_bench.results import paper
from ganad_bench.results.published import MODEL_ALIASES, VARIANT_ALIASES, model_names, published_table
from ganad_bench.results.tables import flatten_config

EXPERIMENT_DIR = Path(__file__).resolve().parents[1] / "conf" / "experiment"
PAIR_GROUP = "experiment/ama_table1_pair"
# AMA Table 1's ablation rows: experiment -> (the AMA parameter it switches, its value, the paper's row)
AMA_ABLATIONS = {
    "ama_table1_no_mirrored": ("mirrored", False, "AMA w/o Mirrored Wass. Loss"),
    "ama_table1_no_simplex": ("simplex", False, "AMA w/o Simplex Interpolation"),
    "ama_table1_no_atypical": ("atypical", "off", "AMA w/o Atypical selection"),
    "ama_table1_r_score": ("score", "r", "AMA w/o new anomaly scoring"),
}


def published(reference: str):
    frame = published_table()
    return frame[frame["reference"] == reference]


def job_configs(experiment: str) -> list[dict]:
    """The checked config of every job of the experiment's sweep, composed once per combination of its
    swept keys other than the seed and the normal class (which change no column)."""
    jobs = paper.expand_sweep(list(paper.sweeper_params(experiment)))
    distinct = dict.fromkeys(tuple(o for o in job if not o.startswith(("seed=", "dataset.normal_class=")))
                             for job in jobs)
    with paper.hydra_initialised():
        return [check_run_config({**to_container(compose_config([f"experiment={experiment}", *rest])), "seed": 0})
                for rest in distinct]


def table_column(config: dict, columns: set[str]) -> str | None:
    """The published column a run of `config` is compared with (as `paper._our_cells` picks it)."""
    names = model_names(config["model"]["name"], flatten_config(config))
    return next((name for name in names if name in columns), None)


# ------------------------------------------------------------------------------------------ AMA Table 1
def test_ama_table1_sweeps_exactly_the_loadable_pairs_of_the_table():
    cells = published("ama:1")
    pairs = set(zip(cells["dataset"], cells["anomaly_dataset"], strict=True))
    loadable = {(a, b) for a, b in pairs if {a, b} <= set(available_datasets())}
    assert loadable == {("fashion_mnist", "mnist"), ("fashion_mnist", "omniglot"), ("cifar10", "svhn"),
                        ("svhn", "cifar10")}
    assert {b for _, b in pairs - loadable} == {"imagenet_resized", "cifar100"}  # no loader for these
    options = {p.stem for p in (EXPERIMENT_DIR / "ama_table1_pair").glob("*.yaml")}
    for experiment in paper.table_experiments("ama:1"):
        assert set(paper.swept_values(experiment)[PAIR_GROUP]) == options, experiment
        runs, errors = paper.experiment_runs(experiment, [])
        assert not errors, (experiment, errors[:1])
        swept = [(c["dataset"]["name"], c["protocol"]["anomaly_dataset"]) for _, c in runs]
        assert sorted(swept) == sorted(loadable), experiment  # each pair once (one seed)
        assert {c["protocol"]["name"] for _, c in runs} == {"cross_dataset"}
    assert "ama_table1_pair" not in paper.table_experiments("ama:1")  # the pair group is no experiment


def test_each_ama_table1_ablation_switches_exactly_its_own_setting():
    def params(experiment: str) -> dict:
        return to_container(compose_config([f"experiment={experiment}"]))["model"]["params"]

    full = params("ama_table1")
    assert (full["mirrored"], full["simplex"], full["atypical"], full["score"]) == (True, True, "outward", "a")
    for experiment, (key, value, _) in AMA_ABLATIONS.items():
        ablated = params(experiment)
        assert {k for k in full if ablated[k] != full[k]} == {key}, experiment
        assert ablated[key] == value, experiment


@pytest.mark.xfail(not any(model == "ama" for model, _, _ in VARIANT_ALIASES), strict=True,
                   reason="published.VARIANT_ALIASES has no AMA Table 1 ablation names yet")
def test_ama_table1_ablation_runs_fall_in_their_published_rows():
    columns = set(published("ama:1")["model"])
    for experiment, (_, _, row) in {"ama_table1": (None, None, "AMA"), **AMA_ABLATIONS}.items():
        assert {table_column(c, columns) for c in job_configs(experiment)} == {row}, experiment


# ------------------------------------------------------------------------------- every runnable column
def runnable(columns: set[str]) -> set[str]:
    """The published columns one of our models or ablation variants is named by."""
    names = {name for aliases in MODEL_ALIASES.values() for name in aliases}
    names |= {name for _, _, aliases in VARIANT_ALIASES for name in aliases}
    return columns & names


# published.VARIANT_ALIASES names every MEMGAN run with n_memory = 100 "MEMGAN(n_memory=100)" (MNIST Table 3),
# also the CIFAR-10 runs of Table 2, whose paper setting n = 100 is (conf/dataset_model/cifar10_memgan.yaml)
MEMGAN_CIFAR_UNNAMED = "MEMGAN" not in model_names("memgan", {"model.params.n_memory": "100",
                                                             "dataset.name": "cifar10"})


@pytest.mark.parametrize("reference", [
    "alad:III", "alad:VIII", "rcgan:2", "ama:1",
    pytest.param("memgan:2", marks=pytest.mark.xfail(MEMGAN_CIFAR_UNNAMED, strict=True, reason="MEMGAN's CIFAR-10 "
                                                     "runs fall in no column of Table 2 (VARIANT_ALIASES)")),
])
def test_the_table_experiments_cover_every_runnable_column(reference):
    cells = published(reference)
    columns = set(cells["model"])
    covered = set()
    for experiment in paper.table_experiments(reference):
        for config in job_configs(experiment):
            column = table_column(config, columns)
            assert column is not None, (experiment, config["model"]["name"])
            assert config["dataset"]["name"] in set(cells["dataset"]), experiment
            covered.add(column)
        if set(cells["normal_class"]) != {""}:  # one-class tables: every class the table prints or averages
            classes = set(cells["normal_class"]) - {"average"} or {str(i) for i in range(10)}
            assert paper.swept_values(experiment)["dataset.normal_class"] >= classes, experiment
    assert covered == runnable(columns)


def test_every_experiment_file_says_what_it_reproduces_and_how_to_run_it():
    for path in EXPERIMENT_DIR.glob("*.yaml"):
        lines = path.read_text().splitlines()
        assert lines[0] == "# @package _global_", path.name
        header = "\n".join(line for line in lines[1:] if line.startswith("#"))
        assert len(header.splitlines()) >= 2 and f"ganad-bench -m experiment={path.stem}" in header, path.name


def test_every_campaign_stage_runs_existing_experiments_models_and_datasets():
    """scripts/campaign.sh: each stage of its default list has a branch, and each sweep it runs names an
    experiment file, models and datasets that exist (a typo would fail a stage hours into a campaign)."""
    import re
    import shlex

    script = (Path(__file__).resolve().parents[1] / "scripts" / "campaign.sh").read_text()
    stages = re.search(r'ALL_STAGES="([^"]+)"', script).group(1).split()
    branches = re.findall(r"^\s+([a-z0-9-]+)\)", script, flags=re.M)
    assert stages and set(stages) == set(branches), (stages, branches)
    models = {p.stem for p in (EXPERIMENT_DIR.parent / "model").glob("*.yaml")}
    commands = [shlex.split(line.split("run ", 1)[1].split(";;")[0]) for line in script.splitlines()
                if re.match(r"^\s+run experiment=", line)]
    assert len(commands) >= len(stages)
    for args in commands:
        settings = dict(arg.split("=", 1) for arg in args)
        assert (EXPERIMENT_DIR / f"{settings['experiment']}.yaml").exists(), args
        # image sweeps one run at a time on a CPU (IMAGE_PACK): a pack of image networks is no faster there,
        # and none of its runs finishes before the whole pack does
        experiment = (EXPERIMENT_DIR / f"{settings['experiment']}.yaml").read_text()
        image = settings.get("dataset", "mnist" if "override /dataset: mnist" in experiment else "") == "mnist"
        deep = "model" not in settings or any(is_deep(name) for name in settings["model"].split(","))
        single = "normal_class=" in " ".join(args) and "," not in settings.get("seed", ",")
        assert not (image and deep) or single or settings.get("hydra.launcher.pack_size") == "${IMAGE_PACK:-1}", args
        assert set(settings.get("model", "ocsvm").split(",")) <= models, args
        assert set(settings.get("dataset", "kdd99").split(",")) <= set(available_datasets()), args


def test_campaign_refuses_an_unknown_stage_before_running_anything(tmp_path):
    """A misspelt stage stops the campaign at once with one line naming the stages, before any sweep and
    without touching the report (it used to run the stages before it and regenerate REPRODUCTION.md)."""
    import os
    import subprocess

    script = Path(__file__).resolve().parents[1] / "scripts" / "campaign.sh"
    env = {**os.environ, "STAGES": "baselines rcgan", "REPORT": str(tmp_path / "report.md"),
           "ROWS": str(tmp_path / "rows")}
    done = subprocess.run(["bash", str(script), str(tmp_path / "runs")], env=env, capture_output=True, text=True)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "unknown stage 'rcgan'" in done.stderr and "rcgan-small" in done.stderr
    assert not any(tmp_path.iterdir())


def test_campaign_on_a_new_machine_starts_from_the_committed_rows(tmp_path):
    """Rows in ROWS whose run RUNS lacks go into RUNS before any sweep (so `ganad-bench` skips those runs);
    a row RUNS already holds is left as it is. The sweeps themselves are stubbed here."""
    import os
    import subprocess

    script = Path(__file__).resolve().parents[1] / "scripts" / "campaign.sh"
    stubs = tmp_path / "bin"
    stubs.mkdir()
    for name in ("ganad-bench", "ganad-bench-table"):  # record what they were asked, and which rows RUNS held
        (stubs / name).write_text(f'#!/bin/sh\necho "{name} $*" >> "{tmp_path}/calls"\n'
                                  f'find "{tmp_path}/runs" -name result.json | sort >> "{tmp_path}/calls"\n')
        (stubs / name).chmod(0o755)
    rows, runs = tmp_path / "rows", tmp_path / "runs" / "results"
    for folder, text in ((rows / "thyroid/tabular/rcgan/all/seed0-a", "committed"),
                         (rows / "thyroid/tabular/rcgan/all/seed1-b", "committed"),
                         (runs / "thyroid/tabular/rcgan/all/seed1-b", "newer, here")):
        folder.mkdir(parents=True)
        (folder / "result.json").write_text(text)
    env = {**os.environ, "PATH": f"{stubs}:{os.environ['PATH']}", "STAGES": "rcgan-small",
           "REPORT": str(tmp_path / "report.md"), "ROWS": str(rows)}
    done = subprocess.run(["bash", str(script), str(tmp_path / "runs")], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    calls = (tmp_path / "calls").read_text().splitlines()
    assert calls[0].startswith("ganad-bench -m experiment=rcgan_table1")
    assert calls[1:3] == [str(runs / f"thyroid/tabular/rcgan/all/{seed}/result.json") for seed in ("seed0-a",
                                                                                                 "seed1-b")]
    assert (runs / "thyroid/tabular/rcgan/all/seed0-a/result.json").read_text() == "committed"
    assert (runs / "thyroid/tabular/rcgan/all/seed1-b/result.json").read_text() == "newer, here"


def test_alad_tabular_experiments_use_the_unscaled_features_as_the_paper_states():
    """ALAD appendix B (KDD99: the one-hot encoding is the whole preprocessing) and C (Arrhythmia: "We applied
    our methods on raw data"), as its code (min-max scaler off): its ALAD and AnoGAN runs on both sets (Tables
    II, V, VII, and RCGAN Table 1's copies of them) are unscaled; every other method keeps the min-max rule."""
    scalers = {}
    for experiment in ("alad_table2", "alad_table5", "alad_table7", "rcgan_table1", "rcgan_table1_baselines",
                       "energy_baselines"):
        for config in job_configs(experiment):
            if config["dataset"]["name"] in ("arrhythmia", "kdd99"):
                key = (config["model"]["name"], config["dataset"]["name"])
                scalers.setdefault(key, set()).add(config["dataset"]["scaler"])
    for dataset in ("arrhythmia", "kdd99"):
        assert scalers.pop(("alad", dataset)) == {"none"} and scalers.pop(("anogan", dataset)) == {"none"}
    assert scalers and all(found == {"minmax"} for found in scalers.values()), scalers


@pytest.mark.parametrize("dataset, model, held_out", [("mnist", "dcae", 1 / 6), ("mnist", "deep_svdd", 0.0),
                                                      ("cifar10", "dcae", 0.2), ("cifar10", "deep_svdd", 0.2)])
def test_ruffs_autoencoder_and_deep_svdd_runs_hold_out_and_initialise_as_the_theano_code(dataset, model, held_out):
    """The published DCAE / DSVDD columns come from lukasruff/Deep-SVDD's Theano code: baseline.py's
    --mnist_val_frac defaults to 1/6 (mnist_cae.sh keeps it, mnist_svdd.sh passes 0) and it has no
    --cifar10_val_frac (config.py: 1/5), so those fractions of the normal training images are held out; a
    command-line value still wins."""
    with paper.hydra_initialised():
        config = to_container(compose_config(["experiment=memgan_table1_baselines", f"model={model}",
                                              f"dataset={dataset}"]))
        assert config["protocol"]["val_fraction"] == pytest.approx(held_out)
        assert config["model"]["params"]["init"] == "theano"  # --weight_dict_init 1, Glorot-uniform weights
        override = to_container(compose_config([f"model={model}", f"dataset={dataset}", "protocol.val_fraction=0"]))
        assert override["protocol"]["val_fraction"] == 0


def test_a_run_on_more_or_fewer_training_rows_than_the_paper_is_not_at_the_paper_settings():
    """The share of normal training rows held out is one of the settings that make a run the paper's: DCAE on
    all of its MNIST class is a variant of Ruff et al.'s five sixths, shown with the difference."""
    with paper.hydra_initialised():
        config = check_run_config({**to_container(compose_config(["experiment=memgan_table1_baselines", "model=dcae",
                                                                  "dataset=mnist"])), "seed": 0})
    settings = flatten_config(config)
    assert paper.settings_difference(settings, "dcae", "mnist", ["memgan_table1_baselines"]) == ""
    whole = {**settings, "protocol.val_fraction": "0.0"}
    assert paper.settings_difference(whole, "dcae", "mnist", ["memgan_table1_baselines"]) == \
        "protocol.val_fraction=0.0 (paper settings: 0.16666666666666666)"
