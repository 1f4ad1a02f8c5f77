"""Measure a GAN detector on a real dataset with `run.py`'s stages (compose the Hydra config, `prepare_data`:
split by the protocol and scale on the training rows; `build_detector`; fit; score; metrics), for a few seeds,
into one JSON file instead of result rows. With --all-scores it evaluates every ALAD score of Table VII on the
SAME trained model, which separate `ganad-bench model.params.score=...` runs cannot do (ALAD Table VII;
RCGAN's Eq. 11 and Eq. 12). With --eval-epochs it also records the test metrics after those epochs (a learning
curve, for reporting only: nothing is selected by it).

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

from ganad_bench.config import compose_config, to_container
from ganad_bench.errors import one_line_errors
from ganad_bench.metrics import evaluate
from ganad_bench.models.kit.deep import every_score
from ganad_bench.models.kit.registry import build_detector
from ganad_bench.run import prepare_data


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


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. model=alad dataset=kdd99")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-train", type=int, default=None, help="subsample the normal training rows")
    parser.add_argument("--max-test", type=int, default=None,
                        help="score a stratified subsample of the test split (same anomaly ratio; for AnoGAN's "
                             "costly latent search; every number from it says so)")
    parser.add_argument("--drop-train-above", type=float, default=None,
                        help="drop the training rows whose largest absolute feature (as scaled) exceeds this: an "
                             "outlier experiment, e.g. KDD99's one portsweep row of 693,375,640 source bytes")
    parser.add_argument("--checkpoint-root", default=None, help="per-seed checkpoint folders (resume)")
    parser.add_argument("--all-scores", action="store_true",
                        help="ALAD: also evaluate the other anomaly scores of Table VII on the same trained model")
    parser.add_argument("--eval-epochs", type=int, nargs="*", default=[],
                        help="also evaluate on the test split after these epochs (learning curve)")
    parser.add_argument("--out", required=True)
    return parser.parse_args()


def test_split(data, seed: int, max_train: int | None, max_test: int | None, drop_train_above: float | None = None):
    """The run's arrays, optionally without the training rows beyond `drop_train_above` and subsampled
    (training rows at random, test rows stratified)."""
    x_train, x_test, y_test = data.x_train, data.x_test, np.asarray(data.split.test_labels)
    if drop_train_above is not None:
        keep = np.abs(x_train.reshape(len(x_train), -1)).max(axis=1) <= drop_train_above
        print(f"--drop-train-above {drop_train_above:g}: {int((~keep).sum())} training row(s) dropped", flush=True)
        x_train = x_train[keep]
    if max_train and len(x_train) > max_train:
        x_train = x_train[np.random.default_rng(seed).choice(len(x_train), max_train, replace=False)]
    if max_test and len(x_test) > max_test:
        keep = stratified_subsample(y_test, max_test, seed)
        x_test, y_test = x_test[keep], y_test[keep]
    return x_train, x_test, y_test


def measure_seed(config: dict, seed: int, args) -> dict:
    """Train and evaluate one seed; with --eval-epochs, the learning curve of every score on the way."""
    data = prepare_data({**config, "seed": seed})
    x_train, x_test, y_test = test_split(data, seed, args.max_train, args.max_test, args.drop_train_above)
    contamination = data.split.contamination
    curve = []

    def evaluate_now(engine, epoch):
        """The learning-curve point of the run (`Engine.curve_point`: the detector's own scoring, training left
        as it was) after the chosen epochs, for every score of the module."""
        if epoch in args.eval_epochs:
            own = getattr(engine.scoring_module, "score_name", None)
            entry = {"epoch": epoch}
            for key, value in engine.curve_point().items():  # a module of several scores gives each: <metric>/<score>
                metric, _, name = key.removeprefix("test_").partition("/")
                if name in ("", own):
                    entry[metric] = value
                if name and metric in ("auroc", "f1"):
                    entry[f"{metric}_{name}"] = value
            curve.append(entry)
            print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in entry.items()}), flush=True)

    ckpt = str(Path(args.checkpoint_root) / f"seed{seed}") if args.checkpoint_root else None
    det = build_detector(config["model"]["name"], seed, config["model"].get("params"), config["trainer"],
                         checkpoint_dir=ckpt, callbacks=[evaluate_now] if args.eval_epochs else ())
    if args.eval_epochs:
        det.watch(x_test, y_test, contamination)
    tick = time.perf_counter()
    det.fit(x_train, data.x_val)
    fit_s = time.perf_counter() - tick
    tick = time.perf_counter()
    metrics = evaluate(y_test, det.score_samples(x_test), contamination)
    epochs = len(det.history)
    row = {"seed": seed, **metrics, "fit_s": round(fit_s, 1), "score_s": round(time.perf_counter() - tick, 2),
           "epochs": epochs, "s_per_epoch": round(fit_s / max(epochs, 1), 2), "n_train": len(x_train),
           "n_test": len(x_test), "last_epoch": det.history[-1] if det.history else None, "curve": curve}
    if args.all_scores:
        scores = every_score(det.scoring_module, lambda: evaluate(y_test, det.score_samples(x_test), contamination))
        row.update({f"score_{name}": value for name, value in scores.items()})
    return row


@one_line_errors
def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    config = to_container(compose_config(args.overrides))
    rows = []
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for seed in args.seeds:
        rows.append(measure_seed(config, seed, args))
        print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in rows[-1].items()
                          if k not in ("last_epoch", "curve")}), flush=True)
        summary = {k: [float(np.mean([r[k] for r in rows])), float(np.std([r[k] for r in rows]))]
                   for k in ("precision", "recall", "f1", "auroc", "auprc") if k in rows[0]}
        out.write_text(json.dumps({"overrides": args.overrides, "max_train": args.max_train, "max_test": args.max_test,
                                   "drop_train_above": args.drop_train_above,
                                   "config": config, "runs": rows, "mean_std": summary}, indent=1, default=str))
    print("mean ± std:", {k: f"{m:.4f} ± {s:.4f}" for k, (m, s) in summary.items()})


if __name__ == "__main__":
    main()
