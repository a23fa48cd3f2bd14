"""Datasets: one registry, ``load_dataset(name, root=..., splits_dir=..., **options)``."""

from .base import (FEW_SHOT_MAX, MANY_SHOT_MIN, SPLITS, ImageSplitDataset, LTDataset, Split,
                   long_tail_counts, shot_groups)
from .registry import (DatasetInfo, dataset_info, list_datasets, load_dataset,
                       parse_dataset_options, register_dataset)
from .splitfile import read_split_file
from .verify import verify_images

# Importing the loaders registers them.
from . import synthetic  # noqa: E402,F401
from . import cifar, fashion_mnist, folder, inaturalist, oltr  # noqa: E402,F401

__all__ = [
    "FEW_SHOT_MAX", "MANY_SHOT_MIN", "SPLITS", "DatasetInfo", "ImageSplitDataset", "LTDataset",
    "Split", "dataset_info", "list_datasets", "load_dataset", "long_tail_counts",
    "parse_dataset_options", "read_split_file", "register_dataset", "shot_groups", "verify_images",
]
