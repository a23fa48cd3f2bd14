"""One registry of datasets; ``load_dataset`` is the public factory."""

from __future__ import annotations

from typing import Callable

from ..errors import LTBenchError, known
from .base import LTDataset

_REGISTRY: dict[str, Callable[..., LTDataset]] = {}


def register_dataset(name: str):
    """Register a loader ``fn(root=None, splits_dir=None, **options) -> LTDataset``."""

    def deco(fn):
        if name in _REGISTRY:
            raise RuntimeError(f"dataset {name!r} registered twice")
        _REGISTRY[name] = fn
        return fn

    return deco


def list_datasets() -> list[str]:
    return sorted(_REGISTRY)


def load_dataset(name: str, root=None, splits_dir=None, **options) -> LTDataset:
    """Build dataset ``name``. Options a loader does not know are an error naming them."""
    if name not in _REGISTRY:
        raise LTBenchError(f"unknown dataset {name!r}; known: {known(_REGISTRY)}")
    ds = _REGISTRY[name](root=root, splits_dir=splits_dir, **options)
    ds.validate()
    return ds
