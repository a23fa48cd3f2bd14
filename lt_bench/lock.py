"""One writer per output: an advisory lock held for a whole run.

Two runs writing one output interleave their work (issue 15: two extracts on one ``--out``
left one run's rows under the other's success message). Every pipeline step that writes an
output holds ``output_lock(out)`` from its first check to its last write; a second run is
refused at once, naming the holder.

The lock is ``fcntl.flock`` on a file beside the output: ``OUT.lock`` for a file,
``RUN_DIR/.lock`` for a folder. The kernel drops it when the holder dies, kill -9 included, so a
lock file left by a killed run never blocks the rerun. The holder writes its pid and host into
the file for the refusal's message. Under torchrun only rank 0 locks (the other ranks write
nothing, and torchrun stops them when rank 0 exits on a refusal).

Holding the lock also makes the step the only one that can have left temporaries of this
output (``io.atomic_path``'s ``.NAME.XXXXXXXX.tmp``): those still there are from a killed run and
are removed.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import fcntl
import os
import re
import socket
from pathlib import Path
from typing import Iterator

from .errors import LTBenchError
from .log import get_logger

log = get_logger(__name__)

# locks this process holds: path -> depth (a step inside `demo` or `reproduce` may lock again)
_HELD: dict[str, int] = {}

# beside a file output: its atomic_path temporaries and those of its companions
_COMPANIONS = ("", ".config.toml", ".partial")
_TMP = r"\.{name}\.[A-Za-z0-9_]{{8}}\.tmp"  # tempfile.mkstemp's 8 random characters


def lock_path(out: str | os.PathLike, directory: bool = False) -> Path:
    """The lock file of an output: ``OUT.lock``, or ``RUN_DIR/.lock`` for a folder."""
    out = Path(out)
    return out / ".lock" if directory else out.with_name(out.name + ".lock")


@contextlib.contextmanager
def output_lock(out: str | os.PathLike | None, *, directory: bool = False, flag: str = "--out",
                stale: tuple[str, ...] = ()) -> Iterator[Path | None]:
    """Hold the output's lock for the block; refuse at once if another process holds it.

    Args:
        out: the output file or folder (None: nothing to lock).
        directory: ``out`` is a folder (the lock goes inside it; the folder is made, and removed
            again if it is still empty at the end).
        flag: the option that named ``out``, for the message.
        stale: for a folder, the file names whose leftover temporaries to remove (a file's own
            and its companions' always are).

    Yields:
        The lock file's path (None when nothing was locked: no ``out``, or not rank 0).

    Raises:
        LTBenchError: another process holds the lock (the message names it).
    """
    from .distributed import env_rank

    if out is None or env_rank() != 0:
        yield None
        return
    path = lock_path(out, directory).absolute()
    key = str(path)
    if key in _HELD:  # re-entered in this process: flock would refuse our own second open
        _HELD[key] += 1
        try:
            yield path
        finally:
            _HELD[key] -= 1
        return
    made = directory and not Path(out).exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = _acquire(path, Path(out), flag)  # None: this filesystem has no locks (run unprotected)
    _HELD[key] = 1
    try:
        if fd is not None:
            _write_holder(fd)
        remove_stale_temporaries(Path(out), stale if directory else None)
        yield path
    finally:
        del _HELD[key]
        if fd is not None:
            # unlink before unlocking: a process that opened the old file then sees it is gone
            with contextlib.suppress(OSError):
                path.unlink()
            os.close(fd)
        if made:
            with contextlib.suppress(OSError):  # not empty (the run wrote there): keep it
                Path(out).rmdir()


def _acquire(path: Path, out: Path, flag: str) -> int | None:
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                raise LTBenchError(f"{out} is being written by another run ({_holder(path)}): wait for it to end, "
                                   f"or choose another {flag}") from None
            # a filesystem without locks: run unprotected rather than not at all
            log.warning("cannot lock %s (%s): not protected against a second run on %s", path, e.strerror, out)
            with contextlib.suppress(OSError):
                path.unlink()  # a lock file that locks nothing would only mislead
            return None
        # the previous holder may have unlinked the file between our open and flock: then we
        # locked a file nobody else will see; try again on the one at the path
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)


def _write_holder(fd: int) -> None:
    os.ftruncate(fd, 0)  # a killed holder's line may still be there
    since = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
    os.write(fd, f"pid {os.getpid()} on host {socket.gethostname()} since {since}\n".encode())


def _holder(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError:
        text = ""
    return text or "pid and host not yet written"


def remove_stale_temporaries(out: Path, names: tuple[str, ...] | None = None) -> list[Path]:
    """Remove temporaries a killed run left of ``out`` (call only while holding its lock).

    Args:
        out: the output file, or a folder when ``names`` is given.
        names: the files in the folder whose temporaries to remove.

    Returns:
        The files removed.
    """
    if names is None:
        folder, pattern = out.parent, "|".join(_TMP.format(name=re.escape(out.name + c)) for c in _COMPANIONS)
    else:
        folder, pattern = out, "|".join(_TMP.format(name=re.escape(n)) for n in names)
    if not pattern or not folder.is_dir():
        return []
    rx = re.compile(f"^(?:{pattern})$")
    removed = []
    for p in folder.iterdir():
        if rx.match(p.name) and p.is_file():
            with contextlib.suppress(OSError):
                p.unlink()
                removed.append(p)
    if removed:
        log.info("removed %d temporary file(s) a killed run left: %s", len(removed),
                 ", ".join(p.name for p in removed))
    return removed
