"""The terminal side of a run: one rich console on stderr for progress, and the one-line summary."""

from __future__ import annotations

from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

console = Console(stderr=True, highlight=False)


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
        with Progress(TextColumn("[cyan]{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console, transient=True) as prog:
            task = prog.add_task(description, total=total)
            yield lambda n=1: prog.advance(task, n)

    return bar()
