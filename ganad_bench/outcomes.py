"""How each job of a `ganad-bench` command ended, kept on disk so that the command's exit status comes from
what the jobs recorded, whichever launcher ran them (in this process, joblib workers, SLURM nodes).

Every job writes `outcome.json` into its Hydra job folder (`write_outcome`); `OutcomeCallback`, a Hydra
callback run in the launching process, notes the run or sweep folder; `read_outcomes` then reads every job
folder below it. A job folder without an outcome is a job that never finished (killed, or its worker died).
"""

from __future__ import annotations

import json
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from ganad_bench.atomic import write_atomic

OUTCOME_FILE = "outcome.json"
# statuses that leave a run finished: the command exits 0 when every job has one of them
FINE = ("ok", "skipped", "busy")
launched: list[Path] = []  # the run / sweep folders Hydra launched in this process


class OutcomeCallback(Callback):
    """Notes the folder of every run and sweep Hydra launches in this process (conf/config.yaml)."""

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        launched.append(Path(str(config.hydra.run.dir)))

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        launched.append(Path(str(config.hydra.sweep.dir)))


def write_outcome(job_dir: Path, outcome: dict) -> None:
    text = json.dumps(outcome, default=str) + "\n"
    write_atomic(Path(job_dir) / OUTCOME_FILE, lambda out: out.write(text))


def read_outcomes(folder: Path) -> list[dict]:
    """The outcome of every job under a run or sweep folder (`{"status": "unfinished"}` where a job folder
    holds none)."""
    folder = Path(folder)
    job_dirs = [folder] if (folder / ".hydra").is_dir() else sorted(p.parent for p in folder.glob("*/.hydra"))
    outcomes = []
    for job_dir in job_dirs:
        try:
            outcomes.append({**json.loads((job_dir / OUTCOME_FILE).read_text()), "job_dir": str(job_dir)})
        except (OSError, ValueError):
            outcomes.append({"status": "unfinished", "job_dir": str(job_dir)})
    return outcomes
