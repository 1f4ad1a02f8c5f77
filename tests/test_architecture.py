"""The layout's rules, checked on the source (DESIGN.md "Layout"): method files are leaves on a kit that
imports no method; the training and data layers never import the models layer; one MLP builder and one
architecture resolver; short functions; scripts use only public names. And the settings' rules: every
experiment composes, every registered detector goes config -> detector -> fit -> score, and the Python
API composes exactly the CLI's settings."""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from ganad_bench import available_detectors, create_detector
from ganad_bench.models.kit.catalog import is_deep
from ganad_bench.models.kit.registry import detector_class
from tests.checks import cpu_trainer

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "ganad_bench"
METHODS = {p.stem for p in (PACKAGE / "models").glob("*.py") if p.stem != "__init__"}


def modules_imported(path: Path) -> set[str]:
    """Every `ganad_bench...` module a file imports (`from a.b import c` counts as a.b and a.b.c)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in names if name.startswith("ganad_bench")}


def python_files(*folders: Path) -> list[Path]:
    return sorted(p for folder in folders for p in folder.rglob("*.py"))


def test_method_files_are_leaves_on_a_kit_that_imports_no_method():
    method_modules = {f"ganad_bench.models.{m}" for m in METHODS}
    for path in python_files(PACKAGE, REPO / "scripts", REPO / "conf"):
        imported = modules_imported(path) & method_modules
        if path.parent == PACKAGE / "models" and path.stem in METHODS:
            assert not imported - {f"ganad_bench.models.{path.stem}"}, (path, imported)  # no other method
        else:
            assert not imported, (path, imported)


def test_training_and_data_layers_do_not_import_the_models_layer():
    for path in python_files(PACKAGE / "training", PACKAGE / "data"):
        assert not {m for m in modules_imported(path) if m.startswith("ganad_bench.models")}, path


def functions(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node


def test_one_mlp_builder_and_one_architecture_resolver():
    names = [(node.name, path.name) for path in python_files(PACKAGE) for node in functions(path)]
    assert [n for n in names if n[0] == "mlp"] == [("mlp", "blocks.py")]
    resolvers = [n for n in names if "resolve" in n[0] and "arch" in n[0]]
    assert resolvers == [("resolve_arch", "blocks.py")]
    assert not [n for n in names if n[0] in ("mlp_stack", "check_shape")]


def test_functions_are_short_and_run_reads_as_its_stages():
    long = [(path.relative_to(REPO), node.name, node.end_lineno - node.lineno + 1)
            for path in python_files(PACKAGE) for node in functions(path) if node.end_lineno - node.lineno + 1 > 60]
    assert not long, long
    defined = {node.name: node for node in functions(PACKAGE / "run.py")}
    assert defined["run"].end_lineno - defined["run"].lineno + 1 <= 40

    def calls(name):
        return {n.func.id for n in ast.walk(defined[name]) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}

    assert {"check_run_config", "train_and_record"} <= calls("run")
    assert {"prepare_data", "fit_and_score", "record_result"} <= calls("train_and_record")


def test_scripts_use_only_public_names():
    for path in python_files(REPO / "scripts"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert not [a.name for a in node.names if a.name.startswith("_")], (path, node.lineno)
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                raise AssertionError(f"{path.name}:{node.lineno} uses the private name {node.attr}")


# ------------------------------------------------------------------------------------------- settings
def compose_app(*overrides: str, hydra_config: bool = False):
    with initialize_config_module("ganad_bench.conf", version_base=None):
        return compose("config", overrides=list(overrides), return_hydra_config=hydra_config)


EXPERIMENTS = sorted(p.stem for p in (REPO / "conf" / "experiment").glob("*.yaml"))


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes_with_each_value_of_its_sweep(experiment):
    cfg = compose_app(f"experiment={experiment}", hydra_config=True)
    OmegaConf.to_container(cfg, resolve=False)
    for key, values in (cfg.hydra.sweeper.params or {}).items():
        if key in ("model", "dataset", "protocol"):  # the config groups a sweep switches between
            for value in str(values).split(","):
                swept = compose_app(f"experiment={experiment}", f"{key}={value.strip()}")
                assert swept[key].name == value.strip()
                OmegaConf.to_container(swept, resolve=True)


def tiny_params(name: str) -> dict:
    """Small versions of the expensive settings, for the parameters a detector has."""
    small = {"width": 8, "search_steps": 3, "pretrain_epochs": 1, "mem_slots": 10}
    return {k: v for k, v in small.items() if k in detector_class(name).param_names()}


@pytest.mark.parametrize("name", available_detectors())
@pytest.mark.parametrize("shape", [(6,), (1, 16, 16)], ids=["rows", "images"])
def test_every_registered_detector_goes_from_config_to_scores(name, shape, one_torch_thread):
    rng = np.random.default_rng(0)
    train = np.tanh(rng.normal(size=(48, *shape))).astype(np.float32)
    test = np.tanh(rng.normal(size=(10, *shape))).astype(np.float32)
    trainer = cpu_trainer(epochs=1, batch_size=16) if is_deep(name) else None
    detector = create_detector(name, seed=0, trainer=trainer, **tiny_params(name))
    scores = detector.fit(train).score_samples(test)
    assert scores.shape == (10,) and np.isfinite(scores).all()


DATASETS = sorted(p.stem for p in (REPO / "conf" / "dataset").glob("*.yaml"))


@pytest.mark.parametrize("name", available_detectors())
def test_the_python_api_composes_the_clis_settings(name):
    """`create_detector(name, dataset=d)` trains with exactly the model and trainer settings of
    `ganad-bench model=<name> dataset=<d>`; without a dataset, with the constructor's parameters and the
    trainer settings of a dataset that has no dataset_model file for the model. Every dataset_model file of
    the model is read both ways, and two datasets without one (the protocol's contamination differs: OC-SVM's
    nu)."""
    plain = [d for d in DATASETS if not (REPO / "conf" / "dataset_model" / f"{d}_{name}.yaml").exists()]
    own = [d for d in DATASETS if d not in plain]
    for dataset, cli_dataset in [(None, plain[0]), *((d, d) for d in [*own, *plain[:2]])]:
        cli = OmegaConf.to_container(compose_app(f"model={name}", f"dataset={cli_dataset}"), resolve=True)
        detector = create_detector(name, dataset=dataset)
        expected = detector_class(name).default_params() if dataset is None else cli["model"]["params"]
        assert detector.params == expected, (name, dataset)
        if is_deep(name):
            composed = type(detector.trainer).from_dict(cli["trainer"])
            assert dataclasses.asdict(detector.trainer) == dataclasses.asdict(composed), (name, dataset)


def test_model_parameters_are_declared_once_in_the_constructor():
    for path in (REPO / "conf" / "model").glob("*.yaml"):
        data = yaml.safe_load(path.read_text())
        model = data.get("model", data)
        # the defaults come from the constructor (model_params/<name>); a file keeps only values taken
        # from elsewhere in the config (OC-SVM's nu = the protocol's contamination)
        own = model.get("params") or {}
        assert all("${" in str(v) for v in own.values()), (path.name, own)
        assert {"/model_params@model.params": path.stem} in data["defaults"] or \
            {"/model_params@params": path.stem} in data["defaults"], path.name


def test_the_catalog_reads_every_constructor_as_python_does():
    """The configs take the parameters and defaults from the method files' source (`models.kit.catalog`),
    without importing them: the same names, defaults (in order), annotations and deep / classic split as the
    classes."""
    import importlib
    import inspect

    from ganad_bench.models.kit import registry
    from ganad_bench.models.kit.catalog import catalog
    from ganad_bench.models.kit.deep import DeepDetector

    for method in METHODS:
        importlib.import_module(f"ganad_bench.models.{method}")
    assert set(catalog()) == set(registry._DETECTORS)
    for name, entry in catalog().items():
        cls = registry._DETECTORS[name]
        assert list(entry.defaults.items()) == list(cls.default_params().items()), name
        parameters = inspect.signature(cls.__init__).parameters
        assert entry.annotations == {key: "" if parameters[key].annotation is inspect.Parameter.empty else
                                     parameters[key].annotation for key in cls.param_names()}, name
        assert entry.deep == issubclass(cls, DeepDetector) and entry.module == cls.__module__, name


@pytest.mark.parametrize("constructor, message", [
    ("def __init__(self, seed=0, *, width: int = int('8')): ...", "width=int('8')): a parameter's default must be a "
                                                                  "literal"),
    ("def __init__(self, seed=0, *, width: int): ...", "width): a parameter needs a default"),
])
def test_the_catalog_names_a_constructor_it_cannot_read(tmp_path, constructor, message):
    from ganad_bench.models.kit.catalog import read_method_file

    path = tmp_path / "toy.py"
    path.write_text(f'@register("toy")\nclass Toy(DeepDetector):\n    {constructor}\n')
    with pytest.raises(ValueError, match=re.escape(f"toy.py: Toy(..., {message}")):
        read_method_file(path, "toy")
    path.write_text('@register("toy")\nclass Toy(DeepDetector):\n'
                    '    def __init__(self, seed=0, *, width=(8, 16)): ...\n'
                    'class Other(Toy): ...\n@register("toy_too")\nclass ToyToo(Other): ...\n')
    assert [(e.name, e.defaults, e.deep) for e in read_method_file(path, "toy")] == \
        [("toy", {"width": (8, 16)}, True), ("toy_too", {"width": (8, 16)}, True)]


def test_composing_and_a_bad_key_load_no_method_file_nor_torch():
    """A mistyped key or a bad value is answered, a config composed and the deep models named without importing
    torch (seconds of CPU); a detector's class loads its own method file only."""
    script = """if True:
        import sys
        from ganad_bench.cli import _main
        from ganad_bench.config import compose_config
        from ganad_bench.models.kit.catalog import deep_detectors
        def exit_code(argv):
            try:
                return _main(argv)
            except SystemExit as stop:
                return stop.code
        code = exit_code(["model=alad", "trainer.epoch=3"])
        compose_config(["experiment=memgan_table1", "dataset.normal_class=3"])
        code_seed = exit_code(["model=alad", "seed=-1"])  # refused by the run's checks, after composition
        light = [m for m in ("torch", "sklearn", "ganad_bench.models.alad") if m in sys.modules]
        from ganad_bench.models.kit.registry import detector_class
        detector_class("iforest")
        methods = sorted(m for m in sys.modules if m.startswith("ganad_bench.models.") and ".kit" not in m)
        print(code, code_seed, light, methods, "memgan" in deep_detectors())"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.stdout.split("\n")[-2] == "2 2 [] ['ganad_bench.models.iforest'] True", done.stdout + done.stderr
    assert "trainer.epoch: not a setting of trainer" in done.stderr and "seed must be an integer" in done.stderr


def test_a_classic_run_loads_no_torch_and_a_finished_run_neither_library(tmp_path):
    """A classic run (its fit, scores, row, a sweep of them and `ganad-bench-score`) loads no torch; rerunning a
    finished run (resuming a sweep) answers "skip" without loading torch or scikit-learn."""
    args = ["model=iforest", f"paths.output_dir={tmp_path}", "plots=false"]
    script = f"""if True:
        import sys
        from ganad_bench.cli import _main
        try:
            _main({args!r})
        except SystemExit:
            pass
        print([m for m in ("torch", "sklearn") if m in sys.modules])"""
    first = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    again = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    # a classic run trains, scores and records its row (versions included) without torch
    assert "ok iforest" in first.stderr and first.stdout.split("\n")[-2] == "['sklearn']", first.stderr
    assert again.stdout.split("\n")[-2] == "[]" and "skip iforest" in again.stderr, again.stderr
    run_dir = next(tmp_path.rglob("result.json")).parent
    assert json.loads((run_dir / "result.json").read_text())["versions"]["torch"] == torch.__version__
    np.savetxt(tmp_path / "rows.csv", np.random.default_rng(0).random((3, 6)), delimiter=",")
    score = f"""if True:
        import sys
        from ganad_bench.cli import score_main
        score_main([{str(run_dir)!r}, {str(tmp_path / "rows.csv")!r}])
        print("torch" in sys.modules)"""
    scored = subprocess.run([sys.executable, "-c", score], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert scored.stdout.split("\n")[-2] == "False" and "wrote 3 scores" in scored.stderr, scored.stderr
    sweep = script.replace(repr(args), repr(["-m", "model=iforest,ocsvm", "seed=1", *args[1:]]))
    swept = subprocess.run([sys.executable, "-c", sweep], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert "torch" not in swept.stdout.split("\n")[-2] and swept.stderr.count("ok ") == 2, swept.stderr


def test_the_cli_and_the_python_api_build_the_same_memgan():
    out = subprocess.run([sys.executable, "-c", "from ganad_bench.cli import main; main()", "model=memgan",
                          "--cfg", "job"], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    cli = yaml.safe_load(out.stdout)
    detector = create_detector("memgan", dataset=cli["dataset"]["name"])
    assert detector.params == cli["model"]["params"]
    assert detector.trainer.epochs == cli["trainer"]["epochs"] and detector.trainer.lr == cli["trainer"]["lr"]


def test_every_package_is_in_the_distribution():
    """`pip install .` (not editable) ships exactly the packages pyproject.toml lists: a new sub-package that is
    not listed works in a checkout and fails after a plain install."""
    import tomllib

    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(REPO).parts) for p in PACKAGE.rglob("__init__.py")}
    plugins = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "hydra_plugins").rglob("__init__.py")}
    assert plugins == {"hydra_plugins.ganad_pack_launcher"}
    assert found | plugins | {"ganad_bench.conf"} == listed


def test_a_checkout_runs_without_an_install(tmp_path):
    """`PYTHONPATH=<checkout>` with no install (or with a plain `pip install .` elsewhere, which pytest's
    `pythonpath = ["."]` shadows): the configs, which an install maps from conf/ to `ganad_bench.conf`, are
    found in the checkout, and a run goes from the command line to its result. The editable install's finder is
    taken out first, so that the checkout's own fallback is what is tested."""
    script = ("import sys; sys.meta_path = [f for f in sys.meta_path if 'editable' not in repr(f).lower()]; "
              "import ganad_bench.conf, ganad_bench.cli; "
              "assert ganad_bench.conf.__file__ == sys.argv[2], ganad_bench.conf.__file__; "
              "sys.argv = ['ganad-bench', 'model=iforest', 'plots=false', 'paths.output_dir=' + sys.argv[1]]; "
              "ganad_bench.cli.main()")
    command = [sys.executable, "-c", script, str(tmp_path), str(REPO / "conf" / "__init__.py")]
    proc = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(list(tmp_path.rglob("result.json"))) == 1


def test_every_file_the_sources_and_docs_cite_exists():
    """Comments, configs and docs point readers to the file that holds a definition ("the constructor of the
    detector (ganad_bench/models/dsebm.py)"); a renamed or merged file must not leave them pointing nowhere.
    Paths under the project's own trees only (others name files of the papers' reference code)."""
    import re

    cited = re.compile(r"(?<![\w/.-])((?:ganad_bench|conf|docs)/[\w/.-]*\w\.(?:py|yaml|md|csv|png))")
    sources = [REPO / "README.md", REPO / "Makefile", *(REPO / "docs").rglob("*.md"), *(REPO / "conf").rglob("*.yaml"),
               *PACKAGE.rglob("*.py"), *PACKAGE.rglob("*.yaml"), *(REPO / "scripts").iterdir(),
               *(REPO / "tests").glob("*.py")]
    missing = {(path, str(source.relative_to(REPO))) for source in sources if source.is_file()
               for path in cited.findall(source.read_text()) if not (REPO / path).exists()}
    assert not missing, sorted(missing)
