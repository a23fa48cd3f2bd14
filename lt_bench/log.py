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
