"""Logging to stderr (results go to stdout, so `ltbench eval ... > table.md` works)."""

from __future__ import annotations

import logging
import os

from rich.console import Console
from rich.logging import RichHandler

stderr_console = Console(stderr=True)

logger = logging.getLogger("lt_bench")


def setup_logging(level: str | int | None = None) -> None:
    """Route lt_bench's log records to stderr through rich, once."""
    if logger.handlers:
        return
    level = level or os.environ.get("LTBENCH_LOG", "INFO")
    handler = RichHandler(console=stderr_console, show_path=False, show_time=False, markup=False)
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False


def get_logger(name: str) -> logging.Logger:
    return logger.getChild(name.removeprefix("lt_bench."))


def progress_bar(description: str, *, transient: bool = True):
    """A rich progress bar on stderr with lt_bench's columns (text, bar, n/total, time left).

    Args:
        description: the text column; may use rich's ``{task.description}`` field.
        transient: erase the bar when done (per-epoch bars), or leave it (one bar per split).
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn(description), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=stderr_console, transient=transient)
