"""What produced an artefact: recorded inside it, checked when it is read."""

from __future__ import annotations

import datetime as _dt
import platform
import sys

from . import __version__


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def environment() -> dict:
    import torch

    return {
        "lt_bench_version": __version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "platform": platform.platform(),
        "argv": list(sys.argv),
    }
