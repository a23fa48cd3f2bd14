"""CIFAR-10-LT and CIFAR-100-LT (Cao et al. 2019) from the standard CIFAR python pickles.

Class i keeps ``int(n_max * (1/IF) ** (i / (C - 1)))`` training images (n_max = 5000 for
CIFAR-10, 500 for CIFAR-100), classes in natural label order; which ones is the LDAM-DRW
code's choice (IMBALANCECIFAR10 / IMBALANCECIFAR100): seed numpy's legacy generator with 0
once, then for each class shuffle that class's indices and keep the first n. The test set is
untouched. The two families differ only in file names and keys (``CifarFiles``).
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import LTBenchError
from .base import LTDataset, Split, long_tail_counts
from .class_names import prompt_name
from .registry import register_dataset

IMBALANCE_FACTORS = (10, 50, 100)


@dataclass(frozen=True)
class CifarFiles:
    """Where one CIFAR family keeps what: the archive's folder, pickles and keys."""

    dataset: str  # the lt_bench name, for messages
    title: str  # the family's name, for messages
    folder: str  # what the python archive extracts to
    train: tuple[str, ...]  # train pickles, concatenated in this order (torchvision's)
    test: str
    meta: str
    label_key: str
    names_key: str
    num_classes: int
    max_per_class: int  # training images of the largest class (= the full set's per class)

    @property
    def files(self) -> tuple[str, ...]:
        return (*self.train, self.test, self.meta)


CIFAR10 = CifarFiles("cifar10_lt", "CIFAR-10", "cifar-10-batches-py", tuple(f"data_batch_{i}" for i in range(1, 6)),
                     "test_batch", "batches.meta", "labels", "label_names", 10, 5000)
CIFAR100 = CifarFiles("cifar100_lt", "CIFAR-100", "cifar-100-python", ("train",), "test", "meta", "fine_labels",
                      "fine_label_names", 100, 500)


def _find_dir(spec: CifarFiles, root) -> Path:
    need = f"the folder holding {spec.folder}/ (the extracted python archive) or its {', '.join(spec.files)} files"
    if root is None:
        raise LTBenchError(f"{spec.dataset} needs --root DIR: {need}")
    root = Path(root).expanduser()
    if not root.is_dir():
        state = "is a file, not a folder" if root.exists() else "does not exist"
        raise LTBenchError(f"{spec.dataset}: {root} {state}: pass --root DIR, {need}")
    for d in (root / spec.folder, root):
        if all((d / f).is_file() for f in spec.files):
            return d
    raise LTBenchError(f"{spec.dataset}: no {spec.title} python pickles in {root} or {root / spec.folder} "
                       f"(need files {', '.join(spec.files)}): pass --root DIR of the extracted {spec.folder} archive")


def _unpickle(spec: CifarFiles, path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            d = pickle.load(f, encoding="bytes")
    except Exception as e:  # truncated or foreign file: many exception kinds
        raise LTBenchError(f"{spec.dataset}: cannot read pickle {path}: {e}") from None
    if not isinstance(d, dict):
        raise LTBenchError(f"{spec.dataset}: {path} is not a {spec.title} pickle (not a dict)")
    # The official files have bytes keys; accept str keys too (re-pickled copies).
    return {(k.decode() if isinstance(k, bytes) else k): v for k, v in d.items()}


def _images_labels(spec: CifarFiles, path: Path) -> tuple[np.ndarray, np.ndarray]:
    d = _unpickle(spec, path)
    if "data" not in d or spec.label_key not in d:
        raise LTBenchError(f"{spec.dataset}: {path} lacks 'data' or '{spec.label_key}': not a "
                           f"{spec.title} pickle")
    data = np.asarray(d["data"], dtype=np.uint8)
    labels = np.asarray(d[spec.label_key], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3072 or len(data) != len(labels):
        raise LTBenchError(f"{spec.dataset}: {path}: data has shape {data.shape} for {len(labels)} "
                           "labels; expected (N, 3072)")
    if len(labels) and (labels.min() < 0 or labels.max() >= spec.num_classes):
        raise LTBenchError(f"{spec.dataset}: {path} has labels outside 0..{spec.num_classes - 1}")
    # Rows are CHW, row-major: 1024 red, 1024 green, 1024 blue values.
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def _read_split(spec: CifarFiles, d: Path, files) -> tuple[np.ndarray, np.ndarray]:
    parts = [_images_labels(spec, d / f) for f in files]
    return np.concatenate([x for x, _ in parts]), np.concatenate([y for _, y in parts])


def cifar_lt_indices(labels: np.ndarray, counts: list[int], seed: int = 0) -> np.ndarray:
    """Indices kept per class, class by class, as in Cao et al.'s IMBALANCECIFAR10/100."""
    # RandomState(seed) draws exactly what np.random.seed(seed) + np.random.shuffle would,
    # without touching numpy's global state.
    rs = np.random.RandomState(seed)
    keep = []
    for c, n in enumerate(counts):
        idx = np.where(labels == c)[0]
        rs.shuffle(idx)
        keep.append(idx[:n])
    return np.concatenate(keep)


def _imbalance(spec: CifarFiles, imbalance) -> int:
    try:
        imb = int(imbalance)
    except (TypeError, ValueError):
        imb = None
    if imb not in IMBALANCE_FACTORS or float(imbalance) != imb:
        raise LTBenchError(f"{spec.dataset}: imbalance must be one of {', '.join(map(str, IMBALANCE_FACTORS))}, "
                           f"got {imbalance!r}")
    return imb


def load_cifar_lt(spec: CifarFiles, root, imbalance) -> LTDataset:
    """The long-tailed train split and the untouched test split of one CIFAR family."""
    imb = _imbalance(spec, imbalance)
    d = _find_dir(spec, root)
    meta = _unpickle(spec, d / spec.meta)
    if spec.names_key not in meta:
        raise LTBenchError(f"{spec.dataset}: {d / spec.meta} lacks '{spec.names_key}'")
    raw = [n.decode() if isinstance(n, bytes) else str(n) for n in meta[spec.names_key]]
    if len(raw) != spec.num_classes:
        raise LTBenchError(f"{spec.dataset}: {d / spec.meta} has {len(raw)} class names, "
                           f"expected {spec.num_classes}")
    train_x, train_y = _read_split(spec, d, spec.train)
    test_x, test_y = _read_split(spec, d, (spec.test,))
    counts = long_tail_counts(spec.max_per_class, spec.num_classes, imb)
    have = np.bincount(train_y, minlength=spec.num_classes)
    if (have < counts).any():
        c = int(np.argmax(have < counts))
        files = spec.train[0] if len(spec.train) == 1 else "{" + ",".join(spec.train) + "}"
        raise LTBenchError(f"{spec.dataset}: {d / files} has {have[c]} images of class {c}, "
                           f"the recipe keeps {counts[c]}: not the full {spec.title} train set")
    keep = cifar_lt_indices(train_y, counts, seed=0)
    splits = {
        "train": Split(ids=[f"train/{i:05d}" for i in keep], labels=train_y[keep],
                       arrays=np.ascontiguousarray(train_x[keep])),
        "test": Split(ids=[f"test/{i:05d}" for i in range(len(test_y))], labels=test_y,
                      arrays=np.ascontiguousarray(test_x)),
    }
    return LTDataset(name=spec.dataset, classnames=[prompt_name(n) for n in raw], splits=splits,
                     options={"imbalance": imb}, location=str(d))


@register_dataset("cifar100_lt",
                  location="--root DIR holding cifar-100-python/{train,test,meta}")
def load_cifar100_lt(root=None, splits_dir=None, imbalance: int = 100) -> LTDataset:
    """CIFAR-100-LT (Cao et al. recipe): 100 classes, imbalance 10, 50 or 100 (10,847 train).

    Splits: ``train`` (long-tailed, 500..500/IF per class) and ``test`` (untouched, 10,000).
    There is no val split: later steps that need one hold out a slice of train. Images are
    32x32 RGB arrays in memory.
    """
    return load_cifar_lt(CIFAR100, root, imbalance)


@register_dataset("cifar10_lt",
                  location="--root DIR holding cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}")
def load_cifar10_lt(root=None, splits_dir=None, imbalance: int = 100) -> LTDataset:
    """CIFAR-10-LT (Cao et al. recipe): 10 classes, imbalance 10, 50 or 100 (12,406 train).

    Splits: ``train`` (long-tailed, 5000..5000/IF per class, from data_batch_1..5 in order) and
    ``test`` (untouched ``test_batch``, 10,000). No val split: later steps that need one hold
    out a slice of train. Images are 32x32 RGB arrays in memory.
    """
    return load_cifar_lt(CIFAR10, root, imbalance)
