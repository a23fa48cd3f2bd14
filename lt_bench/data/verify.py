"""Check that every image of a dataset exists and decodes (``ltbench datasets --verify``)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

from ..errors import LTBenchError
from .base import LTDataset, Split


@dataclass(frozen=True)
class BadImage:
    split: str
    index: int
    id: str
    reason: str  # "missing" or "undecodable: <why>"


def _check(split: Split, i: int) -> str | None:
    if split.root is not None and not (split.root / split.ids[i]).is_file():
        return "missing"
    try:
        split.load_image(i)
    except LTBenchError as e:
        msg = str(e)
        return "missing" if msg.startswith("image not found") else f"undecodable: {msg}"
    except Exception as e:  # a generator or array that fails: still the user's data
        return f"undecodable: {e}"
    return None


def verify_images(ds: LTDataset, splits=None, workers: int | None = None,
                  progress: Callable[[int], None] | None = None) -> list[BadImage]:
    """Open and decode every image of ``splits`` (default: all); return the bad ones.

    Args:
        ds: the dataset.
        splits: split names to check.
        workers: threads (PIL decodes outside the GIL); default min(8, CPU count).
        progress: called with the number of images just checked, for a progress bar.
    """
    workers = workers or min(8, os.cpu_count() or 1)
    bad: list[BadImage] = []
    chunk = 256
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for name in splits or list(ds.splits):
            split = ds.split(name)
            for start in range(0, len(split), chunk):
                idx = range(start, min(start + chunk, len(split)))
                for i, reason in zip(idx, pool.map(lambda i: _check(split, i), idx)):
                    if reason is not None:
                        bad.append(BadImage(name, i, split.ids[i], reason))
                if progress is not None:
                    progress(len(idx))
    return bad
