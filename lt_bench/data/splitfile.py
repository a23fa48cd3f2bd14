"""Split files: one image a line, ``relative/path/to/image.jpg <label>``.

The label is the last whitespace-separated token, so paths may contain spaces. Blank lines are
ignored; an image listed twice is refused. Errors name the file and the line, so a user can
open it and fix it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import LTBenchError



def read_text_file(path: Path, what: str) -> str:
    """The text of a small input file (UTF-8); a missing or unreadable one is an LTBenchError naming it."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LTBenchError(f"{what} {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise LTBenchError(f"cannot read {what} {path}: {e}") from None

def read_split_file(
    path: str | Path, num_classes: int | None = None, range_hint: str = ""
) -> tuple[list[str], np.ndarray]:
    """Read a split file.

    Args:
        path: the text file.
        num_classes: if given, every label must lie in 0..num_classes-1.
        range_hint: appended to the out-of-range message (e.g. where the class count comes from).

    Returns:
        ``(ids, labels)``: the relative image paths and an int64 label array.

    Raises:
        LTBenchError: the file is missing or unreadable, a line has no integer label, a label
            is outside 0..num_classes-1, or an image is listed twice; the message names the file
            and line number.
    """
    path = Path(path)
    text = read_text_file(path, "split file")
    ids: list[str] = []
    labels: list[int] = []
    first_line: dict[str, int] = {}  # image -> the line it first appears on
    for lineno, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        parts = line.rsplit(None, 1)
        label = None
        if len(parts) == 2:
            try:
                label = int(parts[1])
            except ValueError:
                pass
        if label is None:
            raise LTBenchError(
                f"{path} line {lineno}: expected `relative/path/to/image <integer label>`, "
                f"got {_shorten(line)!r}"
            )
        if num_classes is not None and not 0 <= label < num_classes:
            hint = f" {range_hint}" if range_hint else ""
            raise LTBenchError(
                f"{path} line {lineno}: label {label} outside the valid range "
                f"0..{num_classes - 1}{hint}"
            )
        seen = first_line.setdefault(parts[0], lineno)
        if seen != lineno:  # counted twice it would distort the class counts and the shot groups
            raise LTBenchError(f"{path} line {lineno}: image {_shorten(parts[0])!r} is already on line {seen}: "
                               "list each image once")
        ids.append(parts[0])
        labels.append(label)
    return ids, np.asarray(labels, dtype=np.int64)


def _shorten(s: str, n: int = 80) -> str:
    return s if len(s) <= n else s[: n - 3] + "..."
