"""Disk and memory a step will need, checked before it starts (and a full disk reported in one
line when it happens anyway).

A step that would not fit is refused up front with what it needs, what is free and where,
instead of failing (or being killed by the kernel) after minutes of work: ``ltbench extract
--views 1000000000`` would otherwise try to allocate terabytes. The estimates are of the
step's own large arrays; they are lower bounds, so a refusal is never a false alarm by more
than the overhead they leave out.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from .errors import LTBenchError


class ResourceError(LTBenchError):
    """A step needs more disk or memory than there is."""


def human(n: float) -> str:
    """Bytes as ``12.3 GB`` (powers of 1000, as ``df -H``)."""
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} PB"  # pragma: no cover


def _existing(path: Path) -> Path:
    """``path`` or its nearest existing parent folder (where the bytes will go)."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path if path.is_dir() else path.parent


def free_disk(path: str | os.PathLike) -> tuple[int, Path]:
    """(free bytes for this user, the folder measured) of the file system ``path`` will be on."""
    where = _existing(Path(path))
    return shutil.disk_usage(where).free, where


def free_memory() -> int | None:
    """Memory available to a new allocation without swapping (Linux ``MemAvailable``); None when
    unknown (then memory is not checked)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return None


def check_disk(needed: int, path: str | os.PathLike, what: str) -> None:
    """Refuse ``what`` (e.g. "extracting train, test into f.h5") when the file system of ``path``
    has less than ``needed`` bytes free."""
    free, where = free_disk(path)
    if needed > free:
        raise ResourceError(f"{what} needs about {human(needed)} of disk, but {where} has {human(free)} free: "
                            "free some space or choose another --out")


def check_memory(needed: int, what: str, fix: str) -> None:
    """Refuse ``what`` when one of its steps needs more than the available memory (``fix``: the
    option to change)."""
    free = free_memory()
    if free is not None and needed > free:
        raise ResourceError(f"{what} needs about {human(needed)} of memory at once, but {human(free)} is "
                            f"available: {fix}")


def is_disk_full(e: BaseException) -> bool:
    """An OSError of a full disk (or quota), as the OS or HDF5 (whose messages carry no errno) says it."""
    if not isinstance(e, OSError):
        return False
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(e)
    return "No space left on device" in text or "errno = 28" in text or "Disk quota exceeded" in text


def disk_full_error(path: str | os.PathLike, what: str, needed: int | None = None,
                    then: str = "rerun the same command") -> ResourceError:
    """One line for a write that ran out of disk: what was being written, needed and free, where."""
    free, where = free_disk(path)
    need = f"needed about {human(needed)}, " if needed else ""
    return ResourceError(f"the disk filled up while {what} ({need}{human(free)} free on {where}): "
                         f"free some space and {then}")
