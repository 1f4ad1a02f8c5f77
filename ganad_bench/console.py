"""The terminal side of a run: one rich console on stderr for progress, and the one-line summary."""

from __future__ import annotations

from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

# no emoji codes: a message quoting user input such as `--paper memgan:x` must print ":x:" as typed, not an emoji
console = Console(stderr=True, highlight=False, emoji=False)


def error_exit(message: str, status: int = 2) -> SystemExit:
    """Print the one-line error of every command and script, `error: <message>` (taken as text, not markup), and
    return the exit to raise: status 2 for bad input, 1 for a valid input with nothing to show (no finished run
    under a folder)."""
    console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    return SystemExit(status)


def progress_bar() -> Progress:
    """The one bar layout: description, bar, done / total, elapsed time; removed when finished."""
    return Progress(TextColumn("[cyan]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, transient=True)


@contextmanager
def step(description: str):
    """A spinner while a long step runs (silent when stderr is not a terminal)."""
    if not console.is_terminal:
        yield
        return
    with console.status(f"[cyan]{description}"):
        yield


def progress(description: str, total: int):
    """A progress bar for chunked work; use as `with progress(...) as advance: advance(n)`."""

    @contextmanager
    def bar():
        if not console.is_terminal:
            yield lambda n=1: None
            return
        with progress_bar() as prog:
            task = prog.add_task(description, total=total)
            yield lambda n=1: prog.advance(task, n)

    return bar()


class EpochProgress:
    """The training bar: one row, reset at each epoch, its description the last epoch's losses. A no-op
    when disabled (`trainer.progress=false`) or when stderr is not a terminal.

        with EpochProgress(enabled=True) as bar:
            bar.start_epoch(n_batches, "epoch 1/10"); bar.advance(); bar.describe("epoch 1/10 loss ...")
    """

    def __init__(self, enabled: bool = True):
        self.progress = None
        if enabled and console.is_terminal:
            self.progress = progress_bar()
            self.task = self.progress.add_task("training", total=None)

    def __enter__(self) -> EpochProgress:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.progress is not None:
            self.progress.stop()

    def start_epoch(self, total: int, description: str) -> None:
        if self.progress is not None:
            self.progress.reset(self.task, total=total, description=description)

    def advance(self, steps: int = 1) -> None:
        if self.progress is not None:
            self.progress.advance(self.task, steps)

    def describe(self, description: str) -> None:
        if self.progress is not None:
            self.progress.update(self.task, description=description)
