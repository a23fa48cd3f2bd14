"""``finetune --overwrite`` keeps the previous run until the new one has a checkpoint.

Deleting RUN_DIR's files when the new run started lost a finished run to one that diverged or
was killed in its first epoch (issue 15). Instead ``set_aside`` moves the previous run's files
into ``RUN_DIR/.previous/`` when the new run starts; ``commit`` deletes them once the new run has
written its first ``last.pt``; ``undo`` puts them back if it fails before that. A run killed in
between leaves them aside: the next run on RUN_DIR calls ``recover`` (under the run's lock),
which puts them back, or deletes them when the new run's ``last.pt`` is there.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..io import write_text
from ..log import get_logger
from .checkpoint import LAST, RUN_FILES

log = get_logger(__name__)

ASIDE = ".previous"
MOVED = "moved.txt"  # in ASIDE: the names set aside, so that an interrupted undo can be redone
# last.pt first: once it is aside, RUN_DIR/last.pt can only be the new run's
_ORDER = (LAST, *[n for n in RUN_FILES if n != LAST])


def set_aside(out: Path) -> None:
    """Move the previous run's files into ``out/.previous``."""
    aside = out / ASIDE
    aside.mkdir(exist_ok=True)
    names = [n for n in _ORDER if (out / n).exists()]
    write_text(aside / MOVED, "".join(n + "\n" for n in names))
    for name in names:
        os.replace(out / name, aside / name)


def commit(out: Path) -> None:
    """The new run has a checkpoint: delete the previous run's files (no-op when none are aside)."""
    aside = out / ASIDE
    if aside.exists():
        shutil.rmtree(aside)
        log.info("--overwrite: the new run has its first checkpoint; removed the previous run")


def undo(out: Path) -> None:
    """The new run failed before its first checkpoint: put the previous run's files back."""
    aside = out / ASIDE
    if not aside.exists():
        return
    try:
        moved = (aside / MOVED).read_text(encoding="utf-8").split()
    except FileNotFoundError:  # killed before anything was moved
        moved = []
    for name in RUN_FILES:
        if name not in moved and (out / name).exists():  # the new run's, where the previous run had none
            (out / name).unlink()
    for name in reversed(_ORDER):  # last.pt last: until it is back, `recover` undoes again
        if name in moved and (aside / name).exists():
            os.replace(aside / name, out / name)
    shutil.rmtree(aside)
    if moved:
        log.info("--overwrite: the new run ended before its first checkpoint; the previous run in %s is back", out)


def recover(out: Path) -> None:
    """Settle what a killed ``--overwrite`` run left aside (call holding the run's lock).

    A ``last.pt`` in RUN_DIR is the new run's first checkpoint (or, set_aside having been killed
    before moving it, the previous run's with nothing aside): keep it. Otherwise undo.
    """
    if not (out / ASIDE).exists():
        return
    if (out / LAST).exists():
        commit(out)
    else:
        undo(out)
