"""Live per-epoch logging besides `metrics.csv`, chosen by one setting (`logger`): `tensorboard` (event
files in `<run folder>/tensorboard`) or `mlflow` (one MLflow run per ganad run, at `MLFLOW_TRACKING_URI` or
`<output dir>/mlruns`). Both are optional extras; `config.check_reporting` names the one to install.

Each logger is an engine callback `(engine, epoch)` that logs the epoch's record (losses, samples/s,
validation loss), and `finish(row)` logs the run's final metrics and closes it."""

from __future__ import annotations

from numbers import Number
from pathlib import Path


def epoch_loggers(config: dict, folder: Path) -> list:
    kind = config.get("logger")
    if kind == "tensorboard":
        return [TensorBoardLogger(Path(folder) / "tensorboard")]
    if kind == "mlflow":
        return [MLflowLogger(config, folder)]
    return []


def numbers(record: dict) -> dict[str, float]:
    return {k: float(v) for k, v in record.items() if isinstance(v, Number) and not isinstance(v, bool)}


class TensorBoardLogger:
    def __init__(self, log_dir: Path):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(log_dir))

    def __call__(self, engine, epoch: int) -> None:
        for key, value in numbers(engine.history[-1]).items():
            self.writer.add_scalar(f"train/{key}", value, epoch)
        self.writer.flush()

    def finish(self, row: dict) -> None:
        for key, value in numbers(row.get("metrics") or {}).items():
            self.writer.add_scalar(f"test/{key}", value, 0)
        self.writer.close()


class MLflowLogger:
    def __init__(self, config: dict, folder: Path):
        import os

        import mlflow

        if not os.environ.get("MLFLOW_TRACKING_URI"):
            mlflow.set_tracking_uri(Path(config["paths"]["output_dir"]).resolve().joinpath("mlruns").as_uri())
        self.mlflow = mlflow
        self.run = mlflow.start_run(run_name=Path(folder).name)
        mlflow.set_tags({"model": config["model"]["name"], "dataset": config["dataset"]["name"],
                         "seed": config["seed"], "run_dir": str(folder)})
        params = {f"model.params.{k}": v for k, v in (config["model"].get("params") or {}).items()}
        params.update({f"trainer.{k}": v for k, v in config["trainer"].items()})
        mlflow.log_params({k: str(v)[:250] for k, v in params.items()})

    def __call__(self, engine, epoch: int) -> None:
        self.mlflow.log_metrics(numbers(engine.history[-1]), step=epoch)

    def finish(self, row: dict) -> None:
        self.mlflow.log_metrics({f"test_{k}": v for k, v in numbers(row.get("metrics") or {}).items()})
        self.mlflow.end_run(status="FINISHED" if row.get("status") == "ok" else "FAILED")
