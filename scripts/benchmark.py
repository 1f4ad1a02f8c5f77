"""Speed of the GAN detectors on the device present: training samples/s and scoring ms per batch for every
model on every input shape, peak memory, and AnoGAN's scoring time against ALAD's (ALAD Table IV).

    python scripts/benchmark.py --out outputs/benchmark             # full Table IX widths, Gamma = 500
    python scripts/benchmark.py --out outputs/benchmark --quick     # CPU smoke: narrow nets, short search

Writes <out>/benchmark.json and <out>/benchmark.md. Random inputs in [-1, 1] (speed does not depend on
the data); `--train-steps` timed generator+discriminator steps after `--warmup` untimed ones; scoring
times `--score-repeats` calls of `score_samples` on one batch (ALAD Table IV: 50 rows for KDD99, 32 for
the others). CUDA: times after `torch.cuda.synchronize()`, peak = `max_memory_allocated` per case;
CPU: peak = the process's maximum RSS so far (monotonic over the cases).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from ganad_bench.models.kit.catalog import deep_detectors
from ganad_bench.models.kit.registry import create_detector, detector_class
from ganad_bench.training.device import peak_memory_mb, resolve_device, synchronize
from ganad_bench.training.engine import Engine

# every deep detector of the registry, so a model added there is benchmarked too (the classic ones have no steps)
MODELS = tuple(deep_detectors())
SHAPES = {"tab121": (121,), "tab274": (274,), "tab6": (6,), "img1x28x28": (1, 28, 28), "img3x32x32": (3, 32, 32)}
TABLE_IV_BATCH = {"tab121": 50, "tab274": 32}


def bench_case(model: str, shape_name: str, args) -> dict:
    shape = SHAPES[shape_name]
    device = resolve_device(args.device)
    params = {}
    if args.quick and len(shape) == 3 and "width" in detector_class(model).param_names():
        params["width"] = 16
    if model == "anogan":
        params["search_steps"] = args.anogan_steps
    trainer = {"device": args.device, "epochs": 0, "batch_size": args.batch_size, "progress": False,
               "bf16": args.bf16, "compile": args.compile}
    det = create_detector(model, seed=0, trainer=trainer, **params)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(max(args.batch_size, 64), *shape)).astype(np.float32)
    det.fit(x)  # builds the networks (0 epochs)
    engine: Engine = det.engine
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    xb = torch.as_tensor(x[:args.batch_size], device=device)
    engine.module.train()
    engine.reset_step_stats()
    for _ in range(args.warmup):
        engine.train_step(xb)
    synchronize(device)
    tick = time.perf_counter()
    for _ in range(args.train_steps):
        engine.train_step(xb)
    synchronize(device)
    train_s = time.perf_counter() - tick
    score_batch = TABLE_IV_BATCH.get(shape_name, 32)
    xs = x[:score_batch] if len(x) >= score_batch else np.resize(x, (score_batch, *shape))
    det.score_samples(xs)  # warm-up
    synchronize(device)
    tick = time.perf_counter()
    for _ in range(args.score_repeats):
        det.score_samples(xs)
    synchronize(device)
    score_ms = (time.perf_counter() - tick) / args.score_repeats * 1000
    n_params = sum(p.numel() for p in engine.module.parameters())
    samples_per_s = args.train_steps * args.batch_size / train_s
    return {"model": model, "shape": shape_name, "params_m": round(n_params / 1e6, 3),
            "train_batch": args.batch_size, "train_samples_per_s": round(samples_per_s, 1),
            "score_batch": score_batch, "score_ms_per_batch": round(score_ms, 3),
            "peak_mb": round(peak_memory_mb(device), 1), "finite": not engine.diverged()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--train-steps", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--score-repeats", type=int, default=5)
    parser.add_argument("--anogan-steps", type=int, default=500, help="AnoGAN latent search steps (Gamma)")
    parser.add_argument("--quick", action="store_true", help="image width 16 (CPU smoke test)")
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    rows = []
    for shape_name in args.shapes:
        for model in args.models:
            row = bench_case(model, shape_name, args)
            rows.append(row)
            print(json.dumps(row), flush=True)
    ratios = {}
    for shape_name in args.shapes:
        by = {r["model"]: r for r in rows if r["shape"] == shape_name}
        if "alad" in by and "anogan" in by:
            ratios[shape_name] = round(by["anogan"]["score_ms_per_batch"] / by["alad"]["score_ms_per_batch"], 1)
    info = {"device": str(device), "device_name": torch.cuda.get_device_name(device) if device.type == "cuda"
            else platform.processor() or platform.machine(), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "args": vars(args)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "benchmark.json").write_text(json.dumps({"info": info, "rows": rows, "anogan_over_alad": ratios},
                                                   indent=1))
    lines = [f"# GAN detector benchmark ({info['device']}, {info['device_name']}, torch {info['torch']}, "
             f"{info['threads']} threads)", "",
             f"quick={args.quick}, train batch {args.batch_size}, AnoGAN Gamma={args.anogan_steps}", "",
             "| model | shape | params (M) | train samples/s | score batch | score ms/batch | peak MB |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['shape']} | {r['params_m']} | {r['train_samples_per_s']} | "
                     f"{r['score_batch']} | {r['score_ms_per_batch']} | {r['peak_mb']} |")
    lines += ["", "AnoGAN / ALAD scoring time (ALAD Table IV: ~900 KDD99, ~30 Arrhythmia, ~1000 images):", ""]
    lines += [f"- {k}: {v}x" for k, v in ratios.items()]
    (out / "benchmark.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
