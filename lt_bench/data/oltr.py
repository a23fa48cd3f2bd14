"""ImageNet-LT and Places-LT from the OLTR split files (Liu et al. 2019).

The user has the split files (``ImageNet_LT_{train,val,test}.txt``,
``Places_LT_{train,val,test}.txt``) and the images; each split-file line is a path relative to
the image root and a label. Loading reads the split files only; no image is opened.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..errors import LTBenchError
from ..log import get_logger
from .base import LTDataset, Split
from .class_names import imagenet_classnames, places_lt_classnames
from .registry import register_dataset
from .splitfile import read_split_file

log = get_logger(__name__)


def resolve_dirs(name: str, root, splits_dir, what: str) -> tuple[Path, Path]:
    """The image root (required, must exist) and the split-file folder (default: root)."""
    if root is None:
        raise LTBenchError(f"{name} needs --root DIR: the folder {what}")
    root = Path(root).expanduser()
    if not root.is_dir():
        state = "is a file, not a folder" if root.exists() else "does not exist"
        raise LTBenchError(f"{name}: image root {root} {state}: pass --root DIR, the folder {what}")
    splits = root if splits_dir is None else Path(splits_dir).expanduser()
    if not splits.is_dir():
        state = "is a file, not a folder" if splits.exists() else "does not exist"
        raise LTBenchError(f"{name}: split-file folder {splits} {state}: pass --splits-dir DIR")
    return root, splits


def _load_oltr(name: str, prefix: str, classnames: Callable[[], list[str]], root, splits_dir,
               what: str) -> LTDataset:
    explicit_splits = splits_dir is not None
    root, splits_dir = resolve_dirs(name, root, splits_dir, what)
    names = classnames()
    splits = {}
    for split in ("train", "val", "test"):
        path = splits_dir / f"{prefix}_{split}.txt"
        if not path.is_file():
            if split == "val":
                log.info("%s: no %s, so the dataset has no val split", name, path)
                continue
            files = f"{prefix}_{{train,val,test}}.txt"
            hint = (f"check --splits-dir (the folder with {files})" if explicit_splits else
                    f"pass --splits-dir DIR (the folder with {files}) or put them in --root")
            raise LTBenchError(f"{name}: split file {path} does not exist: {hint}")
        ids, labels = read_split_file(path, num_classes=len(names),
                                      range_hint=f"({name} has {len(names)} classes)")
        if len(ids) == 0:
            raise LTBenchError(f"{name}: split file {path} lists no images")
        splits[split] = Split(ids=ids, labels=labels, root=root)
    return LTDataset(name=name, classnames=names, splits=splits, options={}, location=str(root))


@register_dataset(
    "imagenet_lt",
    location="--root IMAGENET_DIR; ImageNet_LT_{train,val,test}.txt in --splits-dir (default: root)",
)
def load_imagenet_lt(root=None, splits_dir=None) -> LTDataset:
    """ImageNet-LT (OLTR splits): 1000 classes, 115,846 train images, 1280..5 per class.

    ``ImageNet_LT_train.txt`` and ``ImageNet_LT_test.txt`` are required. ``ImageNet_LT_val.txt``
    is optional: without it the dataset has no val split (later steps that need one use a
    held-out slice of train). Class names are open_clip's ImageNet names.
    """
    return _load_oltr("imagenet_lt", "ImageNet_LT", imagenet_classnames, root, splits_dir,
                      "the split files' image paths are relative to (e.g. the ImageNet root "
                      "holding train/ and val/)")


@register_dataset(
    "places_lt",
    location="--root PLACES_DIR; Places_LT_{train,val,test}.txt in --splits-dir (default: root)",
)
def load_places_lt(root=None, splits_dir=None) -> LTDataset:
    """Places-LT (OLTR splits): 365 classes, 62,500 train images, 4980..5 per class.

    ``Places_LT_train.txt`` and ``Places_LT_test.txt`` are required; ``Places_LT_val.txt`` is
    optional (no val split without it). Class names are the packaged Places-365 folder names
    with ``_``, ``-`` and ``/`` turned into spaces.
    """
    return _load_oltr("places_lt", "Places_LT", places_lt_classnames, root, splits_dir,
                      "the split files' image paths are relative to (the Places-365 image root)")
