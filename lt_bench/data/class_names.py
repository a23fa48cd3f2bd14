"""Class names for prompts: ImageNet (open_clip's list), Places-LT (packaged), user files.

Named class_names.py because ``classnames/`` is the data folder beside it.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from ..errors import LTBenchError
from .splitfile import read_text_file


def prompt_name(raw: str) -> str:
    """A raw folder-style name as words: ``airplane_cabin`` -> ``airplane cabin``.

    ``_``, ``-`` and ``/`` become spaces (Places folder names such as ``church/outdoor``).
    """
    return re.sub(r"\s+", " ", re.sub(r"[_\-/]", " ", raw)).strip()


def imagenet_classnames() -> list[str]:
    """The 1000 ImageNet names CLIP uses (open_clip's ``IMAGENET_CLASSNAMES``), label order."""
    # Imported here: open_clip pulls in torch, which listing other datasets does not need.
    from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES

    return list(IMAGENET_CLASSNAMES)


def places_lt_classnames() -> list[str]:
    """The 365 Places-LT names in label order, as words for prompts.

    The packaged file has one class a line, ``raw_name raw_name`` (folder name twice); the
    first token is the raw name.
    """
    text = resources.files("lt_bench.data").joinpath("classnames", "places_lt.txt").read_text("utf-8")
    names = [prompt_name(line.split()[0]) for line in text.splitlines() if line.strip()]
    assert len(names) == 365, len(names)
    return names


def read_classnames_file(path: str | Path) -> list[str]:
    """One class name a line (label order); blank lines ignored, surrounding spaces stripped."""
    path = Path(path)
    text = read_text_file(path, "class-names file")
    names = [line.strip() for line in text.splitlines() if line.strip()]
    if not names:
        raise LTBenchError(f"class-names file {path} is empty: write one class name a line")
    return names
