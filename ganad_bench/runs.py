"""A finished run, kept so that it can be looked at and reused without training again.

Files in a run folder (beside `result.json`):

* `scores.npz` — the test scores and labels, the F1 threshold (where the protocol has a contamination), the
  fitted scaler;
* `metrics.csv` — one line per epoch: every loss, samples/s, validation loss (deep detectors);
* `detector.pt` — a deep detector's scoring network (`Detector.save`: tensors only, read with
  `weights_only=True`); a classic detector is refitted from the verified data files instead, which gives
  the same model (its fit is deterministic given the seed) without storing a training set per run;
* `evaluation.png`, `learning_curve.png`, `reconstructions.png` — the plots (`plots=true`, the default).

    run = load_run("outputs/results/thyroid/tabular/rcgan/all/seed0-…")
    scores = run.score(raw_rows)      # the run's own scaler, then the detector
    flags = run.flags(scores)         # score >= the run's threshold
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np

from ganad_bench.atomic import UnreadableArrays, read_npy, read_npz
from ganad_bench.errors import ConfigError, DataError, first_line

log = logging.getLogger("ganad_bench")

SCORES_FILE = "scores.npz"
METRICS_FILE = "metrics.csv"
DETECTOR_FILE = "detector.pt"
RECONSTRUCTIONS_SHOWN = 8


def save_run_files(folder: Path, config: dict, detector, data, scores: np.ndarray, curve: list[dict] = ()) -> dict:
    """Write the files of the module docstring; returns their names (recorded in the row). `curve`: the run's
    learning-curve points (`DeepDetector.learning_curve`), drawn beside the losses."""
    from ganad_bench.atomic import write_atomic
    from ganad_bench.metrics import contamination_threshold
    from ganad_bench.models.kit.catalog import is_deep

    folder = Path(folder)
    labels = np.asarray(data.split.test_labels).astype(np.int8)
    contamination = data.split.contamination
    threshold = np.nan if contamination is None else contamination_threshold(scores, contamination)
    scaler = {f"scaler_{k}": np.asarray(v) for k, v in data.scaler.state().items()}
    write_atomic(folder / SCORES_FILE, lambda out: np.savez(out, scores=scores, labels=labels,
                                                             threshold=np.float64(threshold), **scaler), binary=True)
    files = {"scores": SCORES_FILE}
    history = epoch_history(detector)
    if history:
        import pandas as pd

        text = pd.DataFrame.from_records(history).to_csv(index=False)
        write_atomic(folder / METRICS_FILE, lambda out: out.write(text))
        files["metrics"] = METRICS_FILE
    if is_deep(detector.name):
        detector.save(folder / DETECTOR_FILE)
        files["detector"] = DETECTOR_FILE
    if config.get("plots", True):
        try:
            files.update(draw_run_plots(folder, config, detector, data, scores, labels, threshold, history,
                                        curve))
        except Exception as err:  # a picture never costs a run its result
            log.warning("could not draw the plots of %s (%s: %s)", folder, type(err).__name__, err)
    return files


def epoch_history(detector) -> list[dict]:
    """The per-epoch records of every training stage (`stage` names them: Deep SVDD's pretraining first)."""
    stages = [("pretrain", getattr(detector, "pretrain_history", None)), ("train", getattr(detector, "history", None))]
    return [{"stage": stage, **record} for stage, records in stages for record in (records or [])]


def draw_run_plots(folder: Path, config: dict, detector, data, scores, labels, threshold, history,
                   curve: list[dict] = ()) -> dict:
    from ganad_bench.results.plots import plot_evaluation, plot_learning_curve

    what = f"{config['model']['name']} · {config['dataset']['name']} · seed {config['seed']}"
    if data.split.normal_class is not None:
        what += f" · class {data.split.normal_class}"
    files = {"evaluation_plot": plot_evaluation(labels, scores, folder / "evaluation.png", what,
                                                None if np.isnan(threshold) else threshold).name}
    drawn = plot_learning_curve([r for r in history if r["stage"] == "train"], curve, folder / "learning_curve.png",
                                what)
    if drawn is not None:
        files["learning_curve_plot"] = drawn.name
    grid = reconstruction_grid(detector, data.x_test, labels)
    if grid is not None:
        from ganad_bench.results.image_grid import write_png

        files["reconstructions_plot"] = write_png(folder / "reconstructions.png", grid).name
    return files


def reconstruction_grid(detector, x_test: np.ndarray, labels: np.ndarray) -> np.ndarray | None:
    """Test images (first row normal, then anomalous) over their reconstructions, where the model has them."""
    from ganad_bench.results.image_grid import image_grid

    if x_test.ndim != 4:
        return None
    shown = RECONSTRUCTIONS_SHOWN
    picks = np.r_[np.flatnonzero(labels == 0)[:shown], np.flatnonzero(labels == 1)[:shown]]
    recon = detector.reconstruct(x_test[picks])
    if recon is None or recon.shape != x_test[picks].shape:
        return None
    low = float(min(x_test[picks].min(), recon.min()))
    high = float(max(x_test[picks].max(), recon.max()))
    return image_grid(np.concatenate([x_test[picks], recon]), columns=len(picks), value_range=(low, high))


# ------------------------------------------------------------------------------------------- reuse
@dataclasses.dataclass
class TrainedRun:
    """A finished run, ready to score new data the way it scored its test split."""

    folder: Path
    row: dict
    detector: object
    scaler: object
    threshold: float | None
    resumed_at_row: int = 0  # where the last `score(..., partial=...)` went on from saved scores

    def score(self, raw: np.ndarray, partial: str | Path | None = None) -> np.ndarray:
        """Scores of rows or images in the dataset's raw form (the run's scaler, then its detector). `partial`:
        a file where a deep detector keeps the scores so far (every `trainer.checkpoint_seconds`), so that
        scoring the same inputs again after an interruption goes on from there (`resumed_at_row` says where);
        removed once the scores are whole."""
        from ganad_bench.models.kit.contract import check_samples

        expected = tuple(self.row.get("feature_shape") or ()) or None
        x = np.asarray(raw)
        if expected is not None and tuple(x.shape[1:]) != expected:
            one = f"row of {expected[0]} raw features" if len(expected) == 1 else f"image of shape {expected}"
            if tuple(x.shape) == expected:  # one input without the inputs' own axis
                raise ConfigError(f"inputs of shape {tuple(x.shape)}: one input without the axis that counts the "
                                  f"inputs; give an array of shape (n, {', '.join(map(str, expected))}), e.g. "
                                  f"x.reshape(1, {', '.join(map(str, expected))}) for this one")
            raise ConfigError(f"inputs of shape {tuple(x.shape)} (each of shape {tuple(x.shape[1:])}), but this run "
                              f"was trained on {expected}: give one {one} per input, as the run's dataset "
                              f"({self.row.get('dataset')}) has them")
        from ganad_bench.run import PartialScores, score_in_chunks
        from ganad_bench.training.settings import trainer_defaults

        # checked here too: after the scaler the detector could not say which raw value it was
        x = self.scaler.transform(check_samples(x, what="inputs"))
        # in the run's chunks, with the run's progress bar: AnoGAN's latent search takes hours on many inputs
        trainer, defaults = (self.row.get("config") or {}).get("trainer") or {}, trainer_defaults()
        chunk = trainer.get("score_batch_size") or defaults["score_batch_size"]
        kept = None
        if partial is not None and hasattr(self.detector, "scoring_digest"):  # the classic ones take seconds
            seconds = trainer.get("checkpoint_seconds", defaults["checkpoint_seconds"])
            kept = PartialScores(Path(partial), float(seconds))
        scores = score_in_chunks(self.detector, x, int(chunk), what="inputs", partial=kept)
        self.resumed_at_row = kept.resumed_at_row if kept is not None else 0
        return scores

    def flags(self, scores: np.ndarray) -> np.ndarray | None:
        """1 where a score reaches the run's threshold (its F1 threshold; the detector's `threshold_` when the
        protocol has no contamination). Scores must be finite numbers, as `score` returns them: a NaN is below
        every threshold and would read as "normal"."""
        values = np.asarray(scores)
        if not np.issubdtype(values.dtype, np.number) or np.issubdtype(values.dtype, np.complexfloating):
            raise ConfigError(f"scores of type {values.dtype}: give the real numbers this run's score() returned")
        if not np.isfinite(values).all():
            bad = int((~np.isfinite(values)).sum())
            raise ConfigError(f"{bad} of {values.size} scores are NaN or infinite: give the scores this run's "
                              f"score() returned (always finite)")
        threshold = self.threshold if self.threshold is not None else self.detector.threshold_
        return (values >= threshold).astype(np.int64)


def load_run(folder: str | Path, device: str = "cpu") -> TrainedRun:
    """The run in `folder` (a finished one), its detector and scaler restored without unpickling anything."""
    from ganad_bench.data.preprocessing import scaler_from_state
    from ganad_bench.models.kit.contract import Detector
    from ganad_bench.results.store import RESULT_FILE, read_result

    folder = Path(folder)
    if folder.name == RESULT_FILE and folder.is_file():  # the run's row named instead of its folder
        folder = folder.parent
    row = read_result(folder)
    if row is None or row.get("status") != "ok":
        raise ConfigError(f"{folder} holds no finished run (no result.json with status ok): pick a run folder "
                          f"under outputs/results")
    try:
        saved = read_npz(folder / SCORES_FILE, required=("threshold",))
    except UnreadableArrays as err:
        raise DataError(f"{folder / SCORES_FILE} is missing or unreadable ({err}): rerun the run "
                        f"with force=true") from None
    scaler_state = {k.removeprefix("scaler_"): v for k, v in saved.items() if k.startswith("scaler_")}
    threshold = float(saved["threshold"])
    if (folder / DETECTOR_FILE).is_file():
        detector = Detector.load(folder / DETECTOR_FILE, device=device)
    else:
        detector = refit_classic_detector(row["config"])
    threshold = None if np.isnan(threshold) else threshold
    return TrainedRun(folder, row, detector, scaler_from_state(scaler_state), threshold)


def refit_classic_detector(config: dict):
    """A classic detector of a run, fitted again on the run's own training rows (same data, same seed)."""
    from ganad_bench.models.kit.catalog import is_deep
    from ganad_bench.models.kit.registry import build_detector
    from ganad_bench.run import prepare_data

    if is_deep(config["model"]["name"]):
        raise DataError(f"the run's {DETECTOR_FILE} is missing: rerun it with force=true")
    data = prepare_data(config)
    detector = build_detector(config["model"]["name"], int(config["seed"]), config["model"].get("params"))
    detector.set_contamination(data.split.contamination)
    return detector.fit(data.x_train, data.x_val)


def read_inputs(path: str | Path) -> tuple[np.ndarray, list[str] | None]:
    """Rows or images to score: a `.npy` array, a `.csv` of numbers (a header row is skipped), or a folder
    of `.png` images (sorted by name; grey or RGB, 8-bit). Returns the array and the image names."""
    path = Path(path)
    kinds = "give a .npy array, a .csv of numbers or a folder of .png images"
    if path.is_dir():
        return read_png_folder(path)
    if not path.is_file():
        raise ConfigError(f"{path} is not a file: {kinds}" if path.exists() else f"no such file: {path}: {kinds}")
    if path.suffix not in (".npy", ".csv"):
        raise ConfigError(f"cannot read {path}: {kinds}")
    try:
        if path.suffix == ".npy":
            return read_npy(path), None
        import pandas as pd

        check_separator(path)
        frame = pd.read_csv(path, header=None)
        if not all(pd.api.types.is_numeric_dtype(t) for t in frame.dtypes):
            frame = pd.read_csv(path)  # the first row was a header
        if frame.empty:  # a header alone: no rows (the caller says so), not words among the numbers
            return np.zeros((0, frame.shape[1])), None
        words = [str(c) for c, t in frame.dtypes.items() if not pd.api.types.is_numeric_dtype(t)]
        if words:
            raise ConfigError(f"{path} holds values that are not numbers (column {words[0]}): give numbers only "
                              f"(one header row may come first)")
        if frame.isna().to_numpy().any():
            check_row_lengths(path)  # pandas fills a short line with NaN: say so rather than "not finite"
        return frame.to_numpy(dtype=np.float64), None
    except UnreadableArrays as err:
        raise ConfigError(f"cannot read {path} ({err}): {kinds}") from None
    except (OSError, ValueError, TypeError) as err:  # an empty .csv, a damaged one, words among the numbers
        raise ConfigError(f"cannot read {path} ({first_line(err)}): "
                          f"{kinds} (a .csv may have one header row)") from None


def check_separator(path: Path) -> None:
    """A CSV whose values are separated by semicolons or tabs (a spreadsheet's export in some locales) is read
    as one column of words: "not numbers" or, for one line, "no rows" would not say what to change."""
    with open(path, encoding="utf-8") as handle:
        first = handle.readline()
    other = next((name for mark, name in ((";", "semicolons"), ("\t", "tabs")) if mark in first), None)
    if other and "," not in first:
        raise ConfigError(f"{path} separates its values with {other}: give comma-separated values (e.g. "
                          f"pandas' to_csv, or save as CSV with the comma as separator)")


def check_row_lengths(path: Path) -> None:
    """A CSV whose lines hold different numbers of values is refused, naming the first short or long one."""
    import csv

    with open(path, newline="") as handle:
        lengths = [(number, len(fields)) for number, fields in enumerate(csv.reader(handle), 1) if fields]
    for number, length in lengths[1:]:
        if length != lengths[0][1]:
            raise ConfigError(f"{path} line {number} has {length} values where line {lengths[0][0]} has "
                              f"{lengths[0][1]}: give every row the same number of values")


def read_png_folder(folder: Path) -> tuple[np.ndarray, list[str]]:
    import matplotlib.image

    names = sorted(p.name for p in folder.glob("*.png"))
    if not names:
        raise ConfigError(f"{folder} holds no .png images")
    images = []
    for name in names:
        try:
            pixels = matplotlib.image.imread(folder / name)  # PNGs read as floats in [0, 1]
        except Exception as err:  # Pillow's own errors for a damaged or truncated file, not only OSError
            raise ConfigError(f"cannot read {folder / name} as a PNG image ({first_line(err)}): replace or remove "
                              f"it") from None
        pixels = np.round(pixels * 255.0).astype(np.uint8) if pixels.dtype != np.uint8 else pixels
        pixels = pixels[..., :3] if pixels.ndim == 3 and pixels.shape[2] == 4 else pixels
        images.append(pixels[None] if pixels.ndim == 2 else np.moveaxis(pixels, -1, 0))
        if images[-1].shape != images[0].shape:  # one array of images: every image alike
            raise ConfigError(f"{folder / name} is {describe_image(images[-1])} but {names[0]} is "
                              f"{describe_image(images[0])}: give images of one size and colour (the run's own)")
    return np.stack(images), names


def describe_image(pixels: np.ndarray) -> str:
    channels, height, width = pixels.shape
    return f"{width}x{height} {'grey' if channels == 1 else 'RGB'}"
