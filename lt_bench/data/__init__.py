"""Datasets: one registry, ``load_dataset(name, root=..., splits_dir=..., **options)``."""

from .base import (FEW_SHOT_MAX, MANY_SHOT_MIN, SPLITS, ImageSplitDataset, LTDataset, Split,
                   long_tail_counts, shot_groups)
from .registry import list_datasets, load_dataset, register_dataset

# Importing the loaders registers them.
from . import synthetic  # noqa: E402,F401

__all__ = [
    "FEW_SHOT_MAX", "MANY_SHOT_MIN", "SPLITS", "ImageSplitDataset", "LTDataset", "Split",
    "list_datasets", "load_dataset", "long_tail_counts", "register_dataset", "shot_groups",
]
