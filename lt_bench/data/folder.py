"""A user's own long-tailed dataset: split files + class names, or an ImageFolder tree.

Two layouts (``layout="auto"`` picks the first that is there):

- ``splitfile``: ``train.txt``, ``test.txt`` and optionally ``val.txt`` in ``splits_dir``
  (default: root), lines ``relative/path label`` with paths relative to ``root``; class names
  one a line in ``classnames.txt`` beside them or the file given as option ``classnames``.
- ``imagefolder``: ``root/{train,val,test}/<class>/<image>``; classes are train's sub-folders
  in sorted order (label = position), named by the folder name with ``_``, ``-``, ``/`` as
  spaces, or by the ``classnames`` file (one a line, in that sorted order).

``train`` and ``test`` are required, ``val`` optional. Only file names are read, no image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import LTBenchError
from .base import LTDataset, Split
from .class_names import prompt_name, read_classnames_file
from .oltr import resolve_dirs
from .registry import register_dataset
from .splitfile import read_split_file

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm",
                    ".pgm", ".pbm"}
LAYOUTS = ("auto", "splitfile", "imagefolder")
_WHAT = "with your images (split-file paths are relative to it) or with train/ and test/ class folders"


def _from_split_files(root: Path, splits_dir: Path, classnames) -> tuple[list[str], dict[str, Split]]:
    names_path = Path(classnames).expanduser() if classnames else splits_dir / "classnames.txt"
    if not names_path.is_file():
        raise LTBenchError(f"folder: class-names file {names_path} does not exist: write one class "
                           "name a line (label order) there or pass --option classnames=PATH")
    names = read_classnames_file(names_path)
    hint = f"({names_path} has {len(names)} class names)"
    splits, max_label = {}, -1
    for split in ("train", "val", "test"):
        path = splits_dir / f"{split}.txt"
        if not path.is_file():
            if split == "val":
                continue
            raise LTBenchError(f"folder: split file {path} does not exist: pass --splits-dir DIR "
                               "(the folder with train.txt, test.txt, optional val.txt)")
        ids, labels = read_split_file(path, num_classes=len(names), range_hint=hint)
        if len(labels):
            max_label = max(max_label, int(labels.max()))
        splits[split] = Split(ids=ids, labels=labels, root=root)
    if max_label + 1 != len(names):
        raise LTBenchError(f"folder: {names_path} has {len(names)} class names but the split files "
                           f"use labels 0..{max_label} ({max_label + 1} classes): the counts must match")
    return names, splits


def _images_under(d: Path) -> list[Path]:
    return sorted(p for p in d.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


def _from_image_folders(root: Path, classnames) -> tuple[list[str], dict[str, Split]]:
    classes = sorted(p.name for p in (root / "train").iterdir() if p.is_dir())
    if not classes:
        raise LTBenchError(f"folder: {root / 'train'} has no class sub-folders: expected "
                           "train/<class>/<image>")
    if classnames:
        names_path = Path(classnames).expanduser()
        names = read_classnames_file(names_path)
        if len(names) != len(classes):
            raise LTBenchError(f"folder: {names_path} has {len(names)} class names but "
                               f"{root / 'train'} has {len(classes)} class folders: the counts must match")
    else:
        names = [prompt_name(c) for c in classes]
    index = {c: i for i, c in enumerate(classes)}
    splits = {}
    for split in ("train", "val", "test"):
        d = root / split
        if not d.is_dir():
            if split == "val":
                continue
            raise LTBenchError(f"folder: {d} does not exist: expected {split}/<class>/<image> "
                               "under --root")
        ids, labels = [], []
        for cdir in sorted(p for p in d.iterdir() if p.is_dir()):
            if cdir.name not in index:
                raise LTBenchError(f"folder: class folder {cdir} is not among train's "
                                   f"{len(classes)} classes: every class needs a train/ folder")
            for p in _images_under(cdir):
                ids.append(p.relative_to(root).as_posix())
                labels.append(index[cdir.name])
        if not ids:
            raise LTBenchError(f"folder: no images under {d} (extensions: "
                               f"{', '.join(sorted(IMAGE_EXTENSIONS))})")
        splits[split] = Split(ids=ids, labels=np.asarray(labels, dtype=np.int64), root=root)
    return names, splits


@register_dataset("folder", location="--root DIR (split files + classnames.txt, or train/ test/ class folders)")
def load_folder(root=None, splits_dir=None, classnames: str | None = None,
                layout: str = "auto") -> LTDataset:
    """Your own data: split files plus class names, or root/{train,val,test}/<class>/<image>.

    Args:
        root: the image root.
        splits_dir: where train.txt, val.txt, test.txt are (split-file layout); default root.
        classnames: class-names file, one a line; default ``classnames.txt`` in splits_dir.
        layout: ``auto``, ``splitfile`` or ``imagefolder``.
    """
    if layout not in LAYOUTS:
        raise LTBenchError(f"folder: layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    root, sdir = resolve_dirs("folder", root, splits_dir, _WHAT)
    if layout == "auto":
        if (sdir / "train.txt").is_file() or splits_dir is not None:
            layout = "splitfile"
        elif (root / "train").is_dir():
            layout = "imagefolder"
        else:
            raise LTBenchError(f"folder: found neither {sdir / 'train.txt'} nor {root / 'train'}/: "
                               "pass --root DIR with split files (train.txt, test.txt, classnames.txt) "
                               "or with train/<class>/<image> and test/<class>/<image> folders")
    if layout == "splitfile":
        names, splits = _from_split_files(root, sdir, classnames)
    else:
        names, splits = _from_image_folders(root, classnames)
    options = {"layout": layout}
    if classnames:
        options["classnames"] = str(classnames)
    return LTDataset(name="folder", classnames=names, splits=splits, options=options,
                     location=str(root))
