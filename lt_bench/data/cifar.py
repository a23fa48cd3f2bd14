"""CIFAR-100-LT (Cao et al. 2019) from the standard CIFAR-100 python pickles.

Class i keeps ``int(500 * (1/IF) ** (i / 99))`` training images, classes in natural label order;
which ones is the LDAM-DRW code's choice: seed numpy's legacy generator with 0 once, then for
each class shuffle that class's indices and keep the first n. The test set is untouched.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from ..errors import LTBenchError
from .base import LTDataset, Split, long_tail_counts
from .class_names import prompt_name
from .registry import register_dataset

IMBALANCE_FACTORS = (10, 50, 100)
_FILES = ("train", "test", "meta")


def _find_dir(root) -> Path:
    if root is None:
        raise LTBenchError("cifar100_lt needs --root DIR: the folder holding cifar-100-python/ "
                           "(the extracted CIFAR-100 python archive) or its train, test, meta files")
    root = Path(root).expanduser()
    if not root.is_dir():
        state = "is a file, not a folder" if root.exists() else "does not exist"
        raise LTBenchError(f"cifar100_lt: {root} {state}: pass --root DIR, the folder "
                           "holding cifar-100-python/ or its train, test, meta files")
    for d in (root / "cifar-100-python", root):
        if all((d / f).is_file() for f in _FILES):
            return d
    raise LTBenchError(f"cifar100_lt: no CIFAR-100 python pickles in {root} or {root / 'cifar-100-python'} "
                       "(need files train, test, meta): pass --root DIR of the extracted "
                       "cifar-100-python.tar.gz")


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            d = pickle.load(f, encoding="bytes")
    except Exception as e:  # truncated or foreign file: many exception kinds
        raise LTBenchError(f"cifar100_lt: cannot read pickle {path}: {e}") from None
    if not isinstance(d, dict):
        raise LTBenchError(f"cifar100_lt: {path} is not a CIFAR-100 pickle (not a dict)")
    # The official files have bytes keys; accept str keys too (re-pickled copies).
    return {(k.decode() if isinstance(k, bytes) else k): v for k, v in d.items()}


def _images_labels(path: Path) -> tuple[np.ndarray, np.ndarray]:
    d = _unpickle(path)
    if "data" not in d or "fine_labels" not in d:
        raise LTBenchError(f"cifar100_lt: {path} lacks 'data' or 'fine_labels': not a CIFAR-100 pickle")
    data = np.asarray(d["data"], dtype=np.uint8)
    labels = np.asarray(d["fine_labels"], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3072 or len(data) != len(labels):
        raise LTBenchError(f"cifar100_lt: {path}: data has shape {data.shape} for {len(labels)} "
                           "labels; expected (N, 3072)")
    # Rows are CHW, row-major: 1024 red, 1024 green, 1024 blue values.
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def cifar_lt_indices(labels: np.ndarray, counts: list[int], seed: int = 0) -> np.ndarray:
    """Indices kept per class, class by class, as in Cao et al.'s IMBALANCECIFAR100."""
    # RandomState(seed) draws exactly what np.random.seed(seed) + np.random.shuffle would,
    # without touching numpy's global state.
    rs = np.random.RandomState(seed)
    keep = []
    for c, n in enumerate(counts):
        idx = np.where(labels == c)[0]
        rs.shuffle(idx)
        keep.append(idx[:n])
    return np.concatenate(keep)


@register_dataset("cifar100_lt",
                  location="--root DIR holding cifar-100-python/{train,test,meta}")
def load_cifar100_lt(root=None, splits_dir=None, imbalance: int = 100) -> LTDataset:
    """CIFAR-100-LT (Cao et al. recipe): 100 classes, imbalance 10, 50 or 100 (10,847 train).

    Splits: ``train`` (long-tailed, 500..500/IF per class) and ``test`` (untouched, 10,000).
    There is no val split: later steps that need one hold out a slice of train. Images are
    32x32 RGB arrays in memory.
    """
    try:
        imb = int(imbalance)
    except (TypeError, ValueError):
        imb = None
    if imb not in IMBALANCE_FACTORS or float(imbalance) != imb:
        raise LTBenchError(f"cifar100_lt: imbalance must be one of {', '.join(map(str, IMBALANCE_FACTORS))}, "
                           f"got {imbalance!r}")
    d = _find_dir(root)
    meta = _unpickle(d / "meta")
    if "fine_label_names" not in meta:
        raise LTBenchError(f"cifar100_lt: {d / 'meta'} lacks 'fine_label_names'")
    raw = [n.decode() if isinstance(n, bytes) else str(n) for n in meta["fine_label_names"]]
    if len(raw) != 100:
        raise LTBenchError(f"cifar100_lt: {d / 'meta'} has {len(raw)} class names, expected 100")
    train_x, train_y = _images_labels(d / "train")
    test_x, test_y = _images_labels(d / "test")
    for name, y in (("train", train_y), ("test", test_y)):
        if len(y) and (y.min() < 0 or y.max() > 99):
            raise LTBenchError(f"cifar100_lt: {d / name} has fine labels outside 0..99")
    counts = long_tail_counts(500, 100, imb)
    have = np.bincount(train_y, minlength=100)
    if (have < counts).any():
        c = int(np.argmax(have < counts))
        raise LTBenchError(f"cifar100_lt: {d / 'train'} has {have[c]} images of class {c}, "
                           f"the recipe keeps {counts[c]}: not the full CIFAR-100 train set")
    keep = cifar_lt_indices(train_y, counts, seed=0)
    splits = {
        "train": Split(ids=[f"train/{i:05d}" for i in keep], labels=train_y[keep],
                       arrays=np.ascontiguousarray(train_x[keep])),
        "test": Split(ids=[f"test/{i:05d}" for i in range(len(test_y))], labels=test_y,
                      arrays=np.ascontiguousarray(test_x)),
    }
    return LTDataset(name="cifar100_lt", classnames=[prompt_name(n) for n in raw], splits=splits,
                     options={"imbalance": imb}, location=str(d))
