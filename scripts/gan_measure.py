"""Measure a GAN detector on a real dataset the way `run.py` does (compose the Hydra config, split by the
protocol, scale on the training rows, fit, score in chunks, metrics), for a few seeds, into one JSON file
instead of result rows. With --all-scores it evaluates every ALAD score of Table VII on the SAME trained
model, which separate `ganad-bench model.params.score=...` runs cannot do (ALAD Table VII; RCGAN's Eq. 11
and Eq. 12). With --eval-epochs it also records the test metrics after those epochs (a learning curve,
for reporting only: nothing is selected by it).

    GANAD_DATA_DIR=../shared/data python scripts/gan_measure.py --seeds 0 1 2 --out outputs/alad_arr.json \
        model=alad dataset=arrhythmia trainer.epochs=100 trainer.device=cpu
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from ganad_bench.data.files import DataSettings
from ganad_bench.data.preprocessing import make_scaler
from ganad_bench.data.protocols import make_split
from ganad_bench.data.registry import load_raw
from ganad_bench.metrics import evaluate
from ganad_bench.models.registry import create_detector
from ganad_bench.training.device import seed_everything


def stratified_subsample(labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Sorted indices of `size` test rows drawn without replacement, separately among normal and anomalous
    rows, so that the anomaly ratio is kept (to within one row)."""
    rng = np.random.default_rng(seed)
    anomalous = np.flatnonzero(labels == 1)
    normal = np.flatnonzero(labels != 1)
    n_anomalous = int(round(size * len(anomalous) / len(labels)))
    keep = np.concatenate([rng.choice(anomalous, n_anomalous, replace=False),
                           rng.choice(normal, size - n_anomalous, replace=False)])
    return np.sort(keep)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. model=alad dataset=kdd99")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-train", type=int, default=None, help="subsample the normal training rows")
    parser.add_argument("--max-test", type=int, default=None,
                        help="score a stratified subsample of the test split (same anomaly ratio; for AnoGAN's "
                             "costly latent search; every number from it says so)")
    parser.add_argument("--checkpoint-root", default=None, help="per-seed checkpoint folders (resume)")
    parser.add_argument("--all-scores", action="store_true",
                        help="ALAD: also evaluate the other anomaly scores of Table VII on the same trained model")
    parser.add_argument("--eval-epochs", type=int, nargs="*", default=[],
                        help="also evaluate on the test split after these epochs (learning curve)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with initialize_config_module("ganad_bench.conf", version_base=None):
        cfg = compose("config", overrides=[*args.overrides])
    config = OmegaConf.to_container(cfg, resolve=True)
    settings = DataSettings.from_config(config["paths"])
    raw = load_raw(config["dataset"]["name"], config["dataset"].get("source"), settings)
    rows = []
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for seed in args.seeds:
        split = make_split(cfg.protocol, raw, seed, normal_class=config["dataset"].get("normal_class"))
        seed_everything(seed)
        scaler = make_scaler(config["dataset"])
        scaler.fit(raw.features[split.train])
        x_train = scaler.transform(raw.features[split.train]).astype(np.float32)
        if args.max_train and len(x_train) > args.max_train:
            x_train = x_train[np.random.default_rng(seed).choice(len(x_train), args.max_train, replace=False)]
        x_val = scaler.transform(raw.features[split.val]).astype(np.float32) if len(split.val) else None
        x_test = scaler.transform(split.test_features(raw.features)).astype(np.float32)
        y_test = np.asarray(split.test_labels)
        if args.max_test and len(x_test) > args.max_test:
            keep = stratified_subsample(y_test, args.max_test, seed)
            x_test, y_test = x_test[keep], y_test[keep]
        ckpt = str(Path(args.checkpoint_root) / f"seed{seed}") if args.checkpoint_root else None
        curve = []

        def evaluate_now(engine, epoch, x_test=x_test, y_test=y_test, split=split, curve=curve):
            if epoch in args.eval_epochs:
                entry = {"epoch": epoch, **evaluate(y_test, engine.score(x_test), split.contamination)}
                module = engine.scoring_module
                for name in getattr(module, "score_names", ()):
                    chosen, module.score_name = module.score_name, name
                    other = evaluate(y_test, engine.score(x_test), split.contamination)
                    entry[f"auroc_{name}"], entry[f"f1_{name}"] = other["auroc"], other["f1"]
                    module.score_name = chosen
                curve.append(entry)
                print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in entry.items()}),
                      flush=True)

        det = create_detector(config["model"]["name"], seed=seed, trainer=config["trainer"], checkpoint_dir=ckpt,
                              callbacks=[evaluate_now] if args.eval_epochs else (),
                              **(config["model"].get("params") or {}))
        tick = time.perf_counter()
        det.fit(x_train, x_val)
        fit_s = time.perf_counter() - tick
        tick = time.perf_counter()
        scores = det.score_samples(x_test)  # the engine scores in chunks of trainer.score_batch_size
        score_s = time.perf_counter() - tick
        metrics = evaluate(y_test, scores, split.contamination)
        epochs = len(det.history)
        row = {"seed": seed, **metrics, "fit_s": round(fit_s, 1), "score_s": round(score_s, 2), "epochs": epochs,
               "s_per_epoch": round(fit_s / max(epochs, 1), 2), "n_train": len(x_train), "n_test": len(x_test),
               "last_epoch": det.history[-1] if det.history else None, "curve": curve}
        if args.all_scores and hasattr(det.module, "score_names"):
            chosen = det.module.score_name
            for name in det.module.score_names:
                det.module.score_name = name
                row[f"score_{name}"] = evaluate(y_test, det.score_samples(x_test), split.contamination)
            det.module.score_name = chosen
        rows.append(row)
        print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()
                          if k not in ("last_epoch", "curve")}), flush=True)
        summary = {k: [float(np.mean([r[k] for r in rows])), float(np.std([r[k] for r in rows]))]
                   for k in ("precision", "recall", "f1", "auroc", "auprc") if k in rows[0]}
        out.write_text(json.dumps({"overrides": args.overrides, "max_train": args.max_train, "max_test": args.max_test,
                                   "config": config,
                                   "runs": rows, "mean_std": summary}, indent=1, default=str))
    print("mean ± std:", {k: f"{m:.4f} ± {s:.4f}" for k, (m, s) in summary.items()})


if __name__ == "__main__":
    main()
