"""Atomic writes: an output is either the old file or the complete new one, never half."""

from __future__ import annotations

import contextlib
import enum
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place only if the block succeeds.

    The temporary is ``.NAME.XXXXXXXX.tmp``; one a killed run left is removed by the next run
    that holds the output's lock (``lt_bench.lock``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        if tmp.exists():  # mkstemp makes 0600 files; give the output the usual umask mode
            os.chmod(tmp, 0o666 & ~_UMASK)
        publish(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


# Files to write right before an output is published (``written_before``), by the output's path.
_BEFORE: dict[str, list[tuple[Path, str]]] = {}


@contextlib.contextmanager
def written_before(out: str | os.PathLike, path: str | os.PathLike, text: str) -> Iterator[None]:
    """Within the block, publishing ``out`` first writes ``text`` to ``path`` (atomically).

    For an output and its resolved config (``OUT.config.toml``), which must agree after any
    kill. Written after the output, a kill between the two left the previous run's config beside
    the new output. Written once the new output is complete, just before the rename that
    publishes it, a kill leaves both old or both new, except between the two renames (two
    system calls apart): then the new config stands beside the old output, i.e. the config of
    the run that was asked for, and rerunning it completes the pair. If the block ends without
    publishing ``out`` (an error), ``path`` is not written.
    """
    key = os.path.abspath(out)
    _BEFORE.setdefault(key, []).append((Path(path), text))
    try:
        yield
    finally:
        _BEFORE[key].pop()
        if not _BEFORE[key]:
            del _BEFORE[key]


def publish(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """``os.replace(src, dst)``, after writing what ``written_before`` registered for ``dst``."""
    for path, text in _BEFORE.get(os.path.abspath(dst), ()):
        write_text(path, text)
    os.replace(src, dst)


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Read once: setting it to 0 and back on every write would race with threads creating files.
_UMASK = _read_umask()


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def save_torch(path: str | os.PathLike, obj: Any) -> None:
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def to_toml(d: dict[str, Any]) -> str:
    """A flat dict as TOML (values: str, bool, int, float, lists of those, dicts of scalars as
    inline tables; None skipped)."""
    lines = []
    for k, v in d.items():
        if v is None:
            continue
        lines.append(f"{k.replace('_', '-')} = {_toml_value(v)}")
    return "\n".join(lines) + "\n"


def _toml_value(v: Any) -> str:
    if isinstance(v, os.PathLike):
        v = os.fspath(v)
    if isinstance(v, enum.Enum):
        v = v.value
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {_toml_value(x)}" for k, x in v.items()) + "}"
    return json.dumps(str(v))


def check_output(path: str | os.PathLike | None, *, inputs=(), flag: str = "--out", directory: bool = False) -> None:
    """Refuse an output path before any work is done, with one line naming it.

    The path must not be one of ``inputs`` (compared as files: symlinks and hard links
    included), must not be a directory (or, with ``directory``, a file), and its folder must exist
    or be creatable, and be writable.
    """
    from .errors import LTBenchError

    if path is None:
        return
    p = Path(path)
    for src in inputs:
        if src is not None and _same_file(p, Path(src)):
            raise LTBenchError(f"{flag} {p} is the input {src}: writing it would destroy the input; choose "
                               "another path")
    if directory and p.exists() and not p.is_dir():
        raise LTBenchError(f"{flag} {p} is a file, not a folder: choose a folder")
    if not directory and p.is_dir():
        raise LTBenchError(f"{flag} {p} is a folder: give a file path (e.g. {p / 'out'}{p.suffix})")
    parent = p if directory else p.parent
    existing = parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise LTBenchError(f"{flag} {p}: {existing} is a file, so the folder {parent} cannot be made")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise LTBenchError(f"{flag} {p}: cannot write in the folder {existing} (no write permission)")
    try:  # what access() cannot tell (root, read-only or special file systems): write a file there
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as e:
        raise LTBenchError(f"{flag} {p}: cannot write in the folder {existing} ({e.strerror or e})") from None


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False
