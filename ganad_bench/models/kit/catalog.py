"""What each method file declares, read from its source without importing it: the names it registers
(`@register("alad")`), each detector's parameters (the keyword-only arguments of its constructor) with
their defaults, and whether it trains with the engine (a `DeepDetector`) or not (a `ShallowDetector`).

Composing a config needs every detector's defaults (`model_params/<model>`, `ganad_bench.config`), and
the table commands ask which models are deep. Importing the method files for that imports torch,
scikit-learn and SciPy: seconds of a laptop's CPU before a mistyped key can be answered, `--help`
printed or a table drawn. The constructors stay the one declaration of the parameters: this reads them
as the interpreter would (a default must be a literal, which every one is), and the tests check the
catalog against `inspect.signature` of every registered class. `registry.detector_class` imports only
the method file of the detector asked for."""

from __future__ import annotations

import ast
import dataclasses
from functools import cache
from pathlib import Path

from ganad_bench.errors import ConfigError

METHODS_FOLDER = Path(__file__).resolve().parents[1]  # ganad_bench/models: one file per method
# the kit's base class of the detectors that train with the engine (`deep.DeepDetector`)
DEEP_BASE = "DeepDetector"


@dataclasses.dataclass(frozen=True)
class CatalogEntry:
    name: str  # the registered name (`model=<name>`)
    module: str  # the method file, as a module (`ganad_bench.models.alad`)
    defaults: dict  # parameter -> default, in the constructor's order
    annotations: dict  # parameter -> its annotation as written ("int", "float | None"; "" where it has none)
    deep: bool  # trains networks with the engine (and takes a `trainer` config)


@cache
def catalog() -> dict[str, CatalogEntry]:
    """Every registered detector, by name, from the method files in `ganad_bench/models/`."""
    entries = {}
    for path in sorted(METHODS_FOLDER.glob("*.py")):
        if path.stem != "__init__":
            for entry in read_method_file(path, f"{METHODS_FOLDER.parent.name}.{METHODS_FOLDER.name}.{path.stem}"):
                if entry.name in entries:
                    raise ValueError(f"detector '{entry.name}' registered twice ({entries[entry.name].module}, "
                                     f"{entry.module})")
                entries[entry.name] = entry
    return entries


def read_method_file(path: Path, module: str) -> list[CatalogEntry]:
    """The detectors one method file registers: each class decorated with `@register("<name>")`."""
    tree = ast.parse(path.read_text(), filename=str(path))
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    entries = []
    for node in classes.values():
        name = registered_name(node)
        if name is not None:
            init = constructor(node, classes)
            entries.append(CatalogEntry(name, module, constructor_defaults(node.name, init, path),
                                        parameter_annotations(init), trains_with_engine(node, classes)))
    return entries


def registered_name(node: ast.ClassDef) -> str | None:
    for decorator in node.decorator_list:
        if isinstance(decorator, ast.Call) and getattr(decorator.func, "id", None) == "register" and \
                decorator.args and isinstance(decorator.args[0], ast.Constant):
            return str(decorator.args[0].value)
    return None


def base_names(node: ast.ClassDef) -> list[str]:
    return [base.id if isinstance(base, ast.Name) else getattr(base, "attr", "") for base in node.bases]


def constructor(node: ast.ClassDef, classes: dict[str, ast.ClassDef]) -> ast.FunctionDef | None:
    """The class's `__init__`: its own, else the nearest base's in the same file (DSEBM's two scores share one
    constructor); None where only the kit's bases, which declare no parameters, define it."""
    init = next((item for item in node.body if isinstance(item, ast.FunctionDef) and item.name == "__init__"), None)
    if init is not None:
        return init
    parent = next((classes[name] for name in base_names(node) if name in classes), None)
    return None if parent is None else constructor(parent, classes)


def constructor_defaults(class_name: str, init: ast.FunctionDef | None, path: Path) -> dict:
    """The keyword-only arguments of the constructor and their literal defaults."""
    defaults = {}
    for argument, default in zip(init.args.kwonlyargs if init else [], init.args.kw_defaults if init else [],
                                 strict=True):
        if default is None:
            raise ValueError(f"{path.name}: {class_name}(..., {argument.arg}): a parameter needs a default "
                             f"(model_params/<model> holds them all)")
        try:
            defaults[argument.arg] = ast.literal_eval(default)
        except ValueError:
            raise ValueError(f"{path.name}: {class_name}(..., {argument.arg}={ast.unparse(default)}): a parameter's "
                             f"default must be a literal (the configs read it without importing the file)") from None
    return defaults


def parameter_annotations(init: ast.FunctionDef | None) -> dict[str, str]:
    """The keyword-only arguments' annotations as written, which is what `inspect` gives under the method files'
    `from __future__ import annotations` (`config.whole_numbers_as_ints` reads them)."""
    arguments = init.args.kwonlyargs if init else []
    return {a.arg: ast.unparse(a.annotation) if a.annotation is not None else "" for a in arguments}


def trains_with_engine(node: ast.ClassDef, classes: dict[str, ast.ClassDef]) -> bool:
    names = base_names(node)
    if DEEP_BASE in names:
        return True
    return any(trains_with_engine(classes[name], classes) for name in names if name in classes)


def available_detectors() -> list[str]:
    return sorted(catalog())


def catalog_entry(name: str) -> CatalogEntry:
    if name not in catalog():
        raise ConfigError(f"unknown model '{name}': choose one of {', '.join(available_detectors())}")
    return catalog()[name]


def is_deep(name: str) -> bool:
    """Whether the detector trains networks with the engine (and so takes a `trainer` config)."""
    return catalog_entry(name).deep


def deep_detectors() -> list[str]:
    """Every registered detector that trains with the engine, sorted: what the speed benchmarks measure, so a
    method file added to the registry is benchmarked without a list to keep by hand."""
    return [name for name in available_detectors() if is_deep(name)]
