"""Fashion-MNIST-LT: a long-tailed train split from the original gzipped IDX files.

The one real image dataset available offline here: Debian's ``dataset-fashion-mnist`` installs
the four files in ``/usr/share/datasets/fashion-mnist``. Train is long-tailed (default 1000..10
per class, 2,478 images, all three shot groups); val is balanced, drawn from the train images the
long-tailed split did not take; test is the full balanced 10,000.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from ..errors import LTBenchError
from .base import LTDataset, Split, long_tail_counts
from .registry import register_dataset

DEFAULT_DIR = Path("/usr/share/datasets/fashion-mnist")
FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
CLASSNAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
              "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
_NEED = ", ".join(FILES.values())


def find_files_dir(root) -> Path:
    """The folder holding the four files: ``root`` if given, else Debian's; LTBenchError saying how to get them."""
    if root is not None:
        d = Path(root).expanduser()
        missing = [f for f in FILES.values() if not _exists(d / f)]
        if missing:
            raise LTBenchError(f"fashion_mnist_lt: {d} lacks the Fashion-MNIST file(s) {', '.join(missing)}: pass --root DIR "
                               f"with the four files ({_NEED}), or leave out --root after "
                               "`apt-get install dataset-fashion-mnist`")
        return d
    if all(_exists(DEFAULT_DIR / f) for f in FILES.values()):
        return DEFAULT_DIR
    raise LTBenchError(f"fashion_mnist_lt: no Fashion-MNIST files in {DEFAULT_DIR}: run "
                       f"`apt-get install dataset-fashion-mnist`, or pass --root DIR with the four "
                       f"files ({_NEED})")


def _exists(path: Path) -> bool:
    # The gzipped original, or the same file already gunzipped.
    return path.is_file() or path.with_suffix("").is_file()


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (gzipped or not) as a uint8 array: (N,) labels or (N, rows, cols) images."""
    if not path.is_file():
        path = path.with_suffix("")
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise LTBenchError(f"fashion_mnist_lt: cannot read {path}: {e}") from None
    if len(raw) < 8 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08 or raw[3] not in (1, 3):
        raise LTBenchError(f"fashion_mnist_lt: {path} is not an IDX file of unsigned bytes")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(raw[4 + 4 * k: 8 + 4 * k], "big") for k in range(ndim))
    if len(raw) != header + int(np.prod(shape)):
        raise LTBenchError(f"fashion_mnist_lt: {path} has {len(raw) - header} data bytes, "
                           f"its header says shape {shape}: truncated or corrupt")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


@register_dataset("fashion_mnist_lt",
                  location=f"{DEFAULT_DIR} (apt-get install dataset-fashion-mnist) or --root DIR")
def load_fashion_mnist_lt(root=None, splits_dir=None, max_per_class: int = 1000,
                          imbalance: float = 100.0, seed: int = 0,
                          val_per_class: int = 20) -> LTDataset:
    """Fashion-MNIST-LT: 10 classes, 1000..10 train per class (2,478), balanced val and test.

    Args:
        root: folder with the four IDX files; default ``/usr/share/datasets/fashion-mnist``.
        max_per_class: train images of the largest class (class 0).
        imbalance: largest / smallest class; counts follow ``long_tail_counts``.
        seed: picks which images (deterministic for a seed).
        val_per_class: balanced val images per class, disjoint from train.
    """
    max_per_class, val_per_class, seed = int(max_per_class), int(val_per_class), int(seed)
    imbalance = float(imbalance)
    if max_per_class < 1 or imbalance < 1 or val_per_class < 0:
        raise LTBenchError("fashion_mnist_lt: need max_per_class >= 1, imbalance >= 1, "
                           "val_per_class >= 0")
    d = find_files_dir(root)
    train_x, train_y = read_idx(d / FILES["train_images"]), read_idx(d / FILES["train_labels"])
    test_x, test_y = read_idx(d / FILES["test_images"]), read_idx(d / FILES["test_labels"])
    for x, y, what in ((train_x, train_y, "train"), (test_x, test_y, "t10k")):
        if x.ndim != 3 or len(x) != len(y) or (len(y) and y.max() > 9):
            raise LTBenchError(f"fashion_mnist_lt: {what} files in {d} disagree: images {x.shape}, "
                               f"{len(y)} labels (need 0..9)")
    counts = long_tail_counts(max_per_class, 10, imbalance)
    rng = np.random.default_rng(seed)
    train_idx, val_idx = [], []
    for c, n in enumerate(counts):
        idx = np.flatnonzero(train_y == c)
        if len(idx) < n + val_per_class:
            raise LTBenchError(f"fashion_mnist_lt: class {c} has {len(idx)} train images, fewer than "
                               f"max_per_class-profile {n} + val_per_class {val_per_class}")
        perm = rng.permutation(idx)
        train_idx.append(np.sort(perm[:n]))
        val_idx.append(np.sort(perm[n:n + val_per_class]))
    train_idx, val_idx = np.concatenate(train_idx), np.concatenate(val_idx)

    def split(x, y, idx, prefix):
        return Split(ids=[f"{prefix}/{i:05d}" for i in idx], labels=y[idx].astype(np.int64),
                     arrays=np.ascontiguousarray(x[idx]))

    splits = {"train": split(train_x, train_y, train_idx, "train")}
    if val_per_class:
        splits["val"] = split(train_x, train_y, val_idx, "train")
    splits["test"] = split(test_x, test_y, np.arange(len(test_y)), "test")
    options = dict(max_per_class=max_per_class, imbalance=imbalance, seed=seed,
                   val_per_class=val_per_class)
    return LTDataset(name="fashion_mnist_lt", classnames=list(CLASSNAMES), splits=splits,
                     options=options, location=str(d))
