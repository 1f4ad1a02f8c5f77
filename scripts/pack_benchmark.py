"""Packs against one run at a time: training samples/s of packs of K runs for every deep model, and our
packed autoencoder and Deep SVDD side by side with PyOD's on KDD99.

    python scripts/pack_benchmark.py --out ~/ganad-runs/packs                      # every deep model, K = 1 5 10 20
    python scripts/pack_benchmark.py --out ~/ganad-runs/packs --models alad dcae --shapes tab121 --packs 1 10
    python scripts/pack_benchmark.py --out ~/ganad-runs/packs --pyod --epochs 5    # vs PyOD (needs pyod, KDD99)
    python scripts/pack_benchmark.py --out /tmp --op-count alad tab121              # operations in one step

Speed (`packs.json`, `packs.md`): each (model, shape, K) case runs in a process of its own (so its peak
memory is its own): K members built with seeds 0..K-1 as `ganad-bench` builds them, `--warmup` untimed then
`--steps` timed training steps on random rows (speed does not depend on the data); K = 1 is the plain
single-run step, K > 1 the stacked step (`training.pack.StackedMembers`). Reported: aggregate samples/s,
ms per step, the speed-up over K single runs one after another (samples/s over K = 1's), peak memory (CPU:
the process's maximum RSS; CUDA: `max_memory_allocated`), and the member-equivalence error: the largest
score difference between member 0 of the pack and the same run stepped alone on the same batches (3 steps),
relative to the largest score. A model that cannot be stacked is reported as such.

PyOD (`pyod.json`, `pyod.md`): the KDD99 protocol's normal training rows (seed k's split for run k), batch
50, hidden layers 64-32, `--epochs` epochs, all in this process: our DCAE (121-64-32-64-121 MLP
autoencoder) and Deep SVDD (121-64-32, no pretraining) packed over `--seeds` seeds against PyOD's
AutoEncoder and DeepSVDD trained one seed after another; aggregate training samples/s and each run's test AUROC.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ganad_bench.console import error_exit
from ganad_bench.models.kit.catalog import deep_detectors

SHAPES = {"tab121": (121,), "img1x28x28": (1, 28, 28)}
BATCH = {"tab121": 50, "img1x28x28": 32}  # ALAD's KDD99 and image batch sizes
# every deep detector of the registry (sorted: the report's order), so a model added there is measured too
DEEP_MODELS = tuple(deep_detectors())


def build_members(model: str, shape: tuple, k: int, batch: int, device: str, image_width: int, variant: str = "plain"):
    """K engines as a run builds them (seeds 0..K-1), each at the start of an epoch on random rows."""
    from ganad_bench.models.kit.registry import create_detector, detector_class
    from ganad_bench.training.device import seed_everything
    from ganad_bench.training.engine import Engine

    params = {"width": image_width} if len(shape) == 3 and "width" in detector_class(model).param_names() else {}
    engines = []
    for seed in range(k):
        trainer = {"device": device, "epochs": 1, "batch_size": batch, "progress": False,
                   "bf16": variant == "bf16", "compile": variant == "compile"}
        det = create_detector(model, seed=seed, trainer=trainer, **params)
        det.input_shape = shape
        seed_everything(seed)
        engine = Engine(det.build(shape), det.trainer, seed=seed)
        rows = np.random.default_rng(seed).uniform(-1, 1, size=(batch * 4, *shape)).astype(np.float32)
        engine.start_epoch(engine.prepare(rows, None))
        engines.append(engine)
    return engines


def stepper(engines):
    from ganad_bench.training.pack import StackedMembers

    if len(engines) == 1:
        return lambda x: engines[0].train_step(x[0]), None
    stacked = StackedMembers(engines)
    return lambda x: stacked.step(x, x, [True] * len(engines)), stacked


def equivalence_error(model, shape, k, batch, device, image_width, variant) -> float:
    """How far member 0 of a fresh pack is from its run stepped alone on the same batches (3 steps): the largest
    difference of their anomaly scores on 64 rows, relative to the largest score. (Parameters are no good
    measure: Adam moves a parameter whose gradient is ~0 by +-lr on the gradient's sign, which rounding flips.)"""
    alone = build_members(model, shape, 1, batch, device, image_width, variant)
    pack = build_members(model, shape, k, batch, device, image_width, variant)
    step_alone, _ = stepper(alone)
    step_pack, stacked = stepper(pack)
    rng = np.random.default_rng(1)
    for _ in range(3):
        x = torch.as_tensor(rng.uniform(-1, 1, size=(k, batch, *shape)).astype(np.float32)).to(alone[0].device)
        step_alone(x[:1])
        step_pack(x)
    stacked.write_back()
    rows = rng.uniform(-1, 1, size=(64, *shape)).astype(np.float32)
    expected, got = alone[0].score(rows), pack[0].score(rows)
    return float(np.abs(got - expected).max() / max(np.abs(expected).max(), 1e-12))


def run_case(model: str, shape_name: str, k: int, variant: str, args) -> dict:
    from ganad_bench.training.device import peak_memory_mb, resolve_device, synchronize
    from ganad_bench.training.pack import NotPackable, stackable

    shape, batch = SHAPES[shape_name], BATCH[shape_name]
    device = resolve_device(args.device)
    case = {"model": model, "shape": shape_name, "k": k, "variant": variant, "batch": batch, "device": str(device),
            "torch": torch.__version__, "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
            "threads": torch.get_num_threads(),
            "steps": args.steps, "warmup": args.warmup, "image_width": args.image_width if len(shape) == 3 else None}
    if device.type == "cuda":
        # the previous case's engines sit in reference cycles: without a collection their tensors are still
        # allocated and count towards this case's peak
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    if variant == "compile":
        # a run compiles its losses for one shape in its own process; a second shape compiled in this one would
        # recompile them with dynamic shapes (slower to compile, and not what a run gets)
        torch.compiler.reset()
    first = build_members(model, shape, 1, batch, args.device, args.image_width, variant)
    if k > 1 and not stackable(first[0]):
        why = "a compiled loss is compiled for one run" if variant == "compile" else "its module is not packable"
        return {**case, "packable": False, "why": why}
    engines = first + build_members(model, shape, k, batch, args.device, args.image_width, variant)[1:]
    step, _ = stepper(engines)
    x = torch.as_tensor(np.random.default_rng(0).uniform(-1, 1, size=(k, batch, *shape)).astype(np.float32)).to(device)
    try:
        for _ in range(args.warmup):
            step(x)
    except NotPackable as err:
        return {**case, "packable": False, "why": str(err)}
    synchronize(device)
    tick = time.perf_counter()
    for _ in range(args.steps):
        step(x)
    synchronize(device)
    seconds = time.perf_counter() - tick
    case.update(packable=True, ms_per_step=1e3 * seconds / args.steps, samples_per_s=k * batch * args.steps / seconds,
                peak_mb=peak_memory_mb(device))
    if k > 1:
        case["equivalence_error"] = equivalence_error(model, shape, k, batch, args.device, args.image_width, variant)
    return case


def speed_report(cases: list[dict], args) -> str:
    cuda = any(str(c.get("device", "")).startswith("cuda") for c in cases) or args.device.startswith("cuda")
    threads = cases[0].get("threads", args.threads) if cases else args.threads  # a --report knows them from the rows
    where = (f"{cases[0].get('gpu') or 'CUDA'}, torch {cases[0].get('torch', torch.__version__)}" if cuda and cases
             else f"{platform.processor() or platform.machine()}, {threads} threads, device {args.device}")
    peak = ("peak MB = `torch.cuda.max_memory_allocated` during the case (the previous cases' tensors freed first)"
            if cuda else "peak MB = the case process's peak resident memory (about 345 MB of it is Python, torch "
            "and the package)")
    lines = [f"# Packs: training samples/s ({where})", "",
             "`python scripts/pack_benchmark.py`. Each case: timed steps after warm-up ones (column steps); speed-up = "
             f"samples/s of the pack / samples/s of one run (K runs one after another); {peak}; equivalence = max "
             "|score difference| of member 0 vs its run alone after 3 steps, relative to the largest score. Image "
             "networks at base width w (the papers': 64-128).", "",
             "| model | shape | variant | K | samples/s | ms/step | speed-up | peak MB | equivalence | steps |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    order = {"plain": 0, "bf16": 1, "compile": 2}  # cases of a resumed run come in the order they were measured
    cases = sorted(cases, key=lambda c: (DEEP_MODELS.index(c["model"]), list(SHAPES).index(c["shape"]),
                                         order[c.get("variant", "plain")], c["k"]))
    single = {(c["model"], c["shape"], c.get("variant", "plain")): c.get("samples_per_s") for c in cases if c["k"] == 1}
    for c in cases:
        variant = c.get("variant", "plain")
        shape = c["shape"] + (f" (w {c['image_width']})" if c.get("image_width") else "")
        head = f"| {c['model']} | {shape} | {variant} | {c['k']} |"
        if c.get("why", "").startswith("failed"):
            lines.append(f"{head} {c['why']} | | | | | |")
            continue
        if not c.get("packable", True) or "samples_per_s" not in c:
            lines.append(f"{head} not packable ({c.get('why', '')}): its runs train one by one | | | | | |")
            continue
        base = single.get((c["model"], c["shape"], variant))
        speedup = f"{c['samples_per_s'] / base:.2f}x" if base else ""
        error = f"{c['equivalence_error']:.1e}" if "equivalence_error" in c else ""
        steps = f"{c['steps']} after {c['warmup']}" if "steps" in c else ""
        lines.append(f"{head} {c['samples_per_s']:,.0f} | {c['ms_per_step']:.1f} | {speedup} | {c['peak_mb']:.0f} | "
                     f"{error} | {steps} |")
    return "\n".join(lines) + "\n"


def speed(args) -> None:
    out = Path(args.out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    results = out / f"{args.name}.json"
    cases = json.loads(results.read_text()) if results.exists() else []  # resumable: finished cases are kept
    done = {(c["model"], c["shape"], c["k"], c.get("variant", "plain")) for c in cases}
    todo = [(m, s, k, v) for m in args.models for s in args.shapes for v in args.variants for k in args.packs
            if (m, s, k, v) not in done]
    for model, shape, k, variant in todo:
        if variant == "compile" and k > 1:  # packs do not compile: nothing to measure
            case = {"model": model, "shape": shape, "k": k, "variant": variant, "packable": False,
                    "why": "a compiled loss is compiled for one run"}
        else:
            case = measure(model, shape, k, variant, args)
        if case is None:
            continue
        cases.append(case)
        print(speed_report([case], args).splitlines()[-1], flush=True)
        results.write_text(json.dumps(cases, indent=1))
    results.write_text(json.dumps(cases, indent=1))
    (out / f"{args.name}.md").write_text(speed_report(cases, args))
    print(f"wrote {out / args.name}.md")


def measure(model: str, shape: str, k: int, variant: str, args) -> dict | None:
    """One case: in this process on a GPU (peak memory is reset per case), in a process of its own on the CPU
    (its peak RSS is then its own)."""
    if args.device != "cpu" or args.in_process:
        try:
            return run_case(model, shape, k, variant, args)
        except Exception as err:  # e.g. out of memory at K = 50: recorded, the other cases go on
            return {"model": model, "shape": shape, "k": k, "variant": variant, "packable": True,
                    "why": f"failed: {type(err).__name__}: {str(err).splitlines()[0][:120]}"}
    command = [sys.executable, __file__, "--case", model, shape, str(k), "--variants", variant, "--out", args.out,
               "--device", args.device, "--steps", str(args.steps), "--warmup", str(args.warmup),
               "--threads", str(args.threads), "--image-width", str(args.image_width)]
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"{model} {shape} {variant} K={k}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------------------------- PyOD
def kdd99_splits(seeds: list[int]):
    from ganad_bench.config import compose_config, to_container
    from ganad_bench.run import prepare_data

    splits = []
    for seed in seeds:
        config = to_container(compose_config(["model=dcae", "dataset=kdd99", f"seed={seed}"]))
        data = prepare_data(config)
        splits.append((data.x_train.astype(np.float32), data.x_test.astype(np.float32), data.split.test_labels))
    return splits


def ours_packed(model: str, splits, epochs: int, lr: float, bias: bool = False) -> tuple[float, list[float]]:
    from sklearn.metrics import roc_auc_score

    from ganad_bench.models.kit.registry import create_detector
    from ganad_bench.training.pack import run_together

    params = {"hidden": [64], "rep_dim": 32, "contrast_norm": None}
    if model == "deep_svdd":
        params["pretrain_epochs"] = 0
    elif bias:
        params["bias"] = True
    trainer = {"device": "cpu", "epochs": epochs, "batch_size": 50, "lr": lr, "lr_milestones": [], "progress": False}
    detectors = [create_detector(model, seed=seed, trainer=trainer, **params) for seed in range(len(splits))]
    tick = time.perf_counter()
    run_together([lambda d=d, s=s: d.fit_model(s[0]) for d, s in zip(detectors, splits, strict=True)])
    seconds = time.perf_counter() - tick
    samples = sum(len(s[0]) // 50 * 50 for s in splits) * epochs
    return samples / seconds, [float(roc_auc_score(s[2], d.score_samples(s[1])))
                               for d, s in zip(detectors, splits, strict=True)]


def pyod_one_by_one(model: str, splits, epochs: int) -> tuple[float, list[float]]:
    from pyod.models.auto_encoder import AutoEncoder
    from pyod.models.deep_svdd import DeepSVDD
    from sklearn.metrics import roc_auc_score

    seconds, aurocs, samples = 0.0, [], 0
    for seed, (x, test, labels) in enumerate(splits):
        if model == "dcae":
            det = AutoEncoder(epoch_num=epochs, batch_size=50, hidden_neuron_list=[64, 32], random_state=seed,
                              verbose=0, device="cpu")
        else:
            det = DeepSVDD(n_features=x.shape[1], hidden_neurons=[64, 32], epochs=epochs, batch_size=50,
                           random_state=seed, verbose=0)
        tick = time.perf_counter()
        det.fit(x)
        seconds += time.perf_counter() - tick
        samples += len(x) * epochs
        aurocs.append(float(roc_auc_score(labels, det.decision_function(test))))
    return samples / seconds, aurocs


def versus_pyod(args) -> None:
    import pyod

    out = Path(args.out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    splits = kdd99_splits(list(range(args.seeds)))
    rows = []
    pairs = (("dcae", "AutoEncoder", 1e-3), ("deep_svdd", "DeepSVDD", 1e-4))
    for ours, pyod_name, lr in pairs[:1] if args.bias else pairs:  # --bias: the DCAE only
        ours_speed, ours_auroc = ours_packed(ours, splits, args.epochs, lr, args.bias)
        peer_speed, peer_auroc = pyod_one_by_one(ours, splits, args.epochs)
        label = ours + (" (bias=true)" if args.bias and ours == "dcae" else "")
        rows.append({"ours": label, "pyod": pyod_name, "epochs": args.epochs, "runs": args.seeds, "lr": lr,
                     "ours_samples_per_s": ours_speed, "pyod_samples_per_s": peer_speed,
                     "ours_auroc": ours_auroc, "pyod_auroc": peer_auroc})
        print(rows[-1], flush=True)
    name = "pyod-bias" if args.bias else "pyod"
    (out / f"{name}.json").write_text(json.dumps(rows, indent=1))
    lines = [f"# Packed vs PyOD {pyod.__version__} on KDD99 ({args.threads} threads, one process)", "",
             f"Normal training rows of seed k's split for run k, batch 50, hidden 64-32, {args.epochs} epochs; ours "
             f"packed over {args.seeds} seeds, PyOD one seed after another.", "",
             "| ours | PyOD | ours samples/s | PyOD samples/s | ratio | ours AUROC (mean, min-max) | "
             "PyOD AUROC (mean, min-max) |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        a, b = np.array(r["ours_auroc"]), np.array(r["pyod_auroc"])
        lines.append(f"| {r['ours']} | {r['pyod']} | {r['ours_samples_per_s']:,.0f} | {r['pyod_samples_per_s']:,.0f} | "
                     f"{r['ours_samples_per_s'] / r['pyod_samples_per_s']:.1f}x | {a.mean():.4f} ({a.min():.4f}-"
                     f"{a.max():.4f}) | {b.mean():.4f} ({b.min():.4f}-{b.max():.4f}) |")
    (out / f"{name}.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out / name}.md")


# ------------------------------------------------------------------------------------- CPU compile
def compiled_step_ms(model: str, compiled: bool, steps: int) -> tuple[float, float]:
    """ms per training step of one run on 121 features (batch 50) with its losses compiled or not (the engine
    compiles on CUDA only, so here by hand), and the seconds of the first 10 steps (compilation included)."""
    from ganad_bench.models.kit.registry import create_detector
    from ganad_bench.training.engine import Engine

    params = {"hidden": [64], "rep_dim": 32} if model == "dcae" else {}
    det = create_detector(model, seed=0, trainer={"device": "cpu", "epochs": 1, "batch_size": 50, "progress": False},
                          **params)
    engine = Engine(det.build((121,)), det.trainer, seed=0)
    engine.start_epoch(engine.prepare(np.random.default_rng(0).random((500, 121)).astype(np.float32), None))
    if compiled:
        engine.compile_losses()
    x = torch.rand(50, 121)
    tick = time.perf_counter()
    for _ in range(10):
        engine.train_step(x)
    first = time.perf_counter() - tick
    tick = time.perf_counter()
    for _ in range(steps):
        engine.train_step(x)
    return 1e3 * (time.perf_counter() - tick) / steps, first


def cpu_compile(args) -> None:
    out = Path(args.out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    lines = [f"# torch.compile on the CPU ({args.threads} threads, torch {torch.__version__})", "",
             "One run's training step on 121 features, batch 50 (`scripts/pack_benchmark.py --cpu-compile`): "
             "eager against the losses compiled by `torch.compile` (inductor). The engine compiles on CUDA only "
             "(`trainer.compile`).", "", "| model | eager ms/step | compiled ms/step | first 10 compiled steps |",
             "|---|---|---|---|"]
    for model in ("dcae", "alad"):
        eager, _ = compiled_step_ms(model, False, args.steps * 10)
        compiled, first = compiled_step_ms(model, True, args.steps * 10)
        lines.append(f"| {model} | {eager:.2f} | {compiled:.2f} | {first:.1f} s |")
        print(lines[-1], flush=True)
    (out / "compile_cpu.md").write_text("\n".join(lines) + "\n")


# ------------------------------------------------------------------------------------------- op count
def op_count(args) -> None:
    """The ATen operations one training step of one run dispatches (forward, backward, optimiser), grouped by the
    function of the package (or of torch's spectral norm / optimisers) that called them: on a GPU each is at least
    one kernel launch, and with networks this small the step's time is their count times the launch cost."""
    import collections
    import traceback

    from torch.utils._python_dispatch import TorchDispatchMode

    model, shape_name = args.op_count
    shape, batch = SHAPES[shape_name], BATCH[shape_name]
    engines = build_members(model, shape, 1, batch, "cpu", args.image_width)
    step, _ = stepper(engines)
    x = torch.as_tensor(np.random.default_rng(0).uniform(-1, 1, size=(1, batch, *shape)).astype(np.float32))
    for _ in range(args.warmup):
        step(x)
    callers = collections.Counter()

    class Count(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, call_args=(), kwargs=None):
            frames = [f for f in traceback.extract_stack()
                      if "ganad_bench" in f.filename or "torch/nn/utils" in f.filename or "torch/optim" in f.filename]
            callers[f"{Path(frames[-1].filename).name}:{frames[-1].name}" if frames else "(elsewhere)"] += 1
            return func(*call_args, **(kwargs or {}))

    with Count():
        step(x)
    total = sum(callers.values())
    print(f"{model} {shape_name} (batch {batch}): {total} ATen operations in one training step")
    for caller, n in callers.most_common():
        print(f"{n:6d} {100 * n / total:5.1f}%  {caller}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", help="output folder (finished cases are kept on a rerun); needed but with "
                        "--op-count, which writes nothing")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--models", nargs="+", default=list(DEEP_MODELS), choices=DEEP_MODELS)
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--packs", nargs="+", type=int, default=[1, 5, 10, 20])
    parser.add_argument("--variants", nargs="+", default=["plain"], choices=["plain", "bf16", "compile"],
                        help="trainer.bf16 / trainer.compile (CUDA only; on the CPU they are ignored)")
    parser.add_argument("--name", default="packs", help="report file name (<out>/<name>.json, .md)")
    parser.add_argument("--in-process", action="store_true", help="CPU cases in this process too (peak RSS is "
                        "then the process's so far)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--image-width", type=int, default=32, help="base width of the image networks")
    parser.add_argument("--pyod", action="store_true", help="the PyOD comparison on KDD99 instead")
    parser.add_argument("--epochs", type=int, default=5, help="--pyod: epochs of every run")
    parser.add_argument("--seeds", type=int, default=10, help="--pyod: runs (seeds) of each model")
    parser.add_argument("--bias", action="store_true", help="--pyod: our DCAE with biases (Ruff's has none)")
    parser.add_argument("--cpu-compile", action="store_true", help="torch.compile of one run's step on the CPU")
    parser.add_argument("--op-count", nargs=2, metavar=("MODEL", "SHAPE"), help="the ATen operations of one "
                        "training step of one run, by calling function (on the CPU)")
    parser.add_argument("--report", action="store_true", help="only write <out>/<name>.md from <out>/<name>.json "
                        "(e.g. after a run that was stopped before its end)")
    parser.add_argument("--case", nargs=3, metavar=("MODEL", "SHAPE", "K"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.out is None and not args.op_count:
        parser.error("--out is required: the folder of the report (and of the finished cases a rerun keeps)")
    torch.set_num_threads(args.threads)
    if args.case:
        print(json.dumps(run_case(args.case[0], args.case[1], int(args.case[2]), args.variants[0], args)))
    elif args.pyod:
        versus_pyod(args)
    elif args.cpu_compile:
        cpu_compile(args)
    elif args.op_count:
        op_count(args)
    elif args.report:
        results = Path(args.out).expanduser() / f"{args.name}.json"
        if not results.is_file():
            raise error_exit(f"no {results}: no case has finished yet", status=1)
        results.with_suffix(".md").write_text(speed_report(json.loads(results.read_text()), args))
        print(f"wrote {results.with_suffix('.md')}")
    else:
        speed(args)


if __name__ == "__main__":
    main()
