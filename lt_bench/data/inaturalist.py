"""iNaturalist 2018 from the long-tail papers' split files (Decoupling / OLTR style).

``iNaturalist18_train.txt`` (437,513 images) and ``iNaturalist18_val.txt`` (24,426 images, 3
per class) list ``train_val2018/<kingdom>/<category id>/<hash>.jpg <category id>``; the label is
the official category id (0..8141). The protocol's test split is the official val file. There is
no val split: selection (finetune's best checkpoint, ``tune``) holds out a seeded stratified
slice of train, as for every dataset without one.

Class names come from the official annotation file, ``categories.json`` (a list of categories)
or the ``categories`` of ``train2018.json`` / ``val2018.json``, and are looked up by category
id: class c is the category whose ``id`` is c. Public code that sorts the names and enumerates
them gives every class another class's name; nothing here sorts.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import LTBenchError
from ..log import get_logger
from .base import LTDataset, Split
from .oltr import resolve_dirs
from .registry import register_dataset
from .splitfile import read_split_file, read_text_file

log = get_logger(__name__)

NAME = "inaturalist2018"
SPLIT_FILES = {"train": "iNaturalist18_train.txt", "test": "iNaturalist18_val.txt"}
ANNOTATION_FILES = ("categories.json", "train2018.json", "val2018.json")  # searched in this order
PATH_PREFIX_2018 = "train_val2018/"
PATH_PREFIX_2017 = "train_val_images/"  # the 2017 archive's folder
CLASSES_2017 = 5089
_WHERE = ("the iNaturalist 2018 annotation file (categories.json, or train2018.json / val2018.json of "
          "the competition download)")


def _annotation_path(annotations: str, dirs: list[Path]) -> Path:
    """``--option annotations=FILE`` when given, else the first ANNOTATION_FILES found in ``dirs``."""
    if annotations:
        path = Path(annotations).expanduser()
        if not path.is_file():
            raise LTBenchError(f"{NAME}: annotation file {path} does not exist: fix --option annotations=FILE "
                               f"({_WHERE})")
        return path
    for d in dirs:
        for f in ANNOTATION_FILES:
            if (d / f).is_file():
                return d / f
    looked = " or ".join(str(d) for d in dict.fromkeys(dirs))
    raise LTBenchError(f"{NAME}: no {', '.join(ANNOTATION_FILES)} in {looked}: class names come from {_WHERE}; "
                       "put it there or pass --option annotations=FILE")


def read_categories(path: Path) -> dict[int, str]:
    """Category id -> name from an annotation file: a list of categories or ``{"categories": [...]}``."""
    try:
        data = json.loads(read_text_file(path, "annotation file"))
    except json.JSONDecodeError as e:
        raise LTBenchError(f"{NAME}: annotation file {path} is not JSON ({e}): give {_WHERE}") from None
    cats = data.get("categories") if isinstance(data, dict) else data
    if not isinstance(cats, list) or not cats:
        raise LTBenchError(f"{NAME}: annotation file {path} has no `categories` list: give {_WHERE}")
    out: dict[int, str] = {}
    for k, cat in enumerate(cats):
        if not isinstance(cat, dict) or not isinstance(cat.get("id"), int) or not isinstance(cat.get("name"), str):
            raise LTBenchError(f"{NAME}: annotation file {path}: category {k} lacks an integer `id` and a "
                               f"string `name` (got {str(cat)[:80]!r})")
        if cat["id"] in out:
            raise LTBenchError(f"{NAME}: annotation file {path}: category id {cat['id']} is listed twice")
        out[cat["id"]] = cat["name"].strip()
    return out


def classnames_by_id(categories: dict[int, str], path: Path) -> list[str]:
    """Names in label order: ``names[c]`` is category ``c``'s; ids must be exactly 0..C-1."""
    c = len(categories)
    if c == CLASSES_2017:
        raise LTBenchError(f"{NAME}: annotation file {path} has {CLASSES_2017} categories, iNaturalist 2017's: "
                           f"give {_WHERE}")
    missing = [i for i in range(c) if i not in categories]
    if missing:
        raise LTBenchError(f"{NAME}: annotation file {path}: category id {missing[0]} is missing (ids must be "
                           f"0..{c - 1}, one per class; {len(missing)} missing): give the complete {_WHERE}")
    names = [categories[i] for i in range(c)]
    if all(n.isdigit() for n in names):  # an anonymised copy: numbers make useless prompts
        raise LTBenchError(f"{NAME}: annotation file {path} names its categories by number only: give "
                           "categories.json (species names) via --option annotations=FILE")
    return names


def _check_2018(path: Path) -> None:
    """Refuse a 2017 split file (5,089 classes, images under ``train_val_images/``) given as 2018's.

    Checked on the first image line, before the labels: a 2017 label can be a valid 2018 id.
    """
    with open(path, encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, start=1):
            if line.strip():
                break
    if line.strip().startswith(PATH_PREFIX_2017):
        raise LTBenchError(f"{NAME}: {path} line {lineno} lists an iNaturalist 2017 image ({PATH_PREFIX_2017}...; "
                           f"2018's are under {PATH_PREFIX_2018}): give the 2018 split files "
                           f"{' and '.join(SPLIT_FILES.values())}")


@register_dataset(
    NAME,
    location="--root INAT_DIR (holding train_val2018/); iNaturalist18_{train,val}.txt and categories.json "
             "in --splits-dir (default: root)",
)
def load_inaturalist2018(root=None, splits_dir=None, annotations: str = "") -> LTDataset:
    """iNaturalist 2018 (long-tail split files): 8,142 classes, 437,513 train images, 1000..2 per class.

    Splits: ``train`` (``iNaturalist18_train.txt``) and ``test`` (``iNaturalist18_val.txt``, the
    official val set, 3 images per class); no val split. Class names by category id from
    ``--option annotations=FILE``, default the first of categories.json, train2018.json,
    val2018.json found in --splits-dir, then --root.
    """
    explicit_splits = splits_dir is not None
    root, sdir = resolve_dirs(NAME, root, splits_dir,
                              "the split files' image paths are relative to (holding train_val2018/)")
    ann = _annotation_path(annotations, [sdir, root])
    names = classnames_by_id(read_categories(ann), ann)
    hint = f"(the categories of {ann})"
    splits = {}
    for split, fname in SPLIT_FILES.items():
        path = sdir / fname
        if not path.is_file():
            where = "check --splits-dir" if explicit_splits else "pass --splits-dir DIR or put them in --root"
            raise LTBenchError(f"{NAME}: split file {path} does not exist: {where} (the folder with "
                               f"{' and '.join(SPLIT_FILES.values())})")
        _check_2018(path)
        ids, labels = read_split_file(path, num_classes=len(names), range_hint=hint)
        if not ids:
            raise LTBenchError(f"{NAME}: split file {path} lists no images")
        splits[split] = Split(ids=ids, labels=labels, root=root)
    log.info("%s: %d class names by category id from %s", NAME, len(names), ann)
    return LTDataset(name=NAME, classnames=names, splits=splits, options={}, location=str(root))
