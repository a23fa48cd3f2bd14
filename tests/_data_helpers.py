"""Writers of tiny real dataset files for the data tests (no mocks: the real formats)."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
from PIL import Image


def write_png(path: Path, value: int = 0, size: int = 8, fmt: str = "PNG") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.full((size, size, 3), value % 256, dtype=np.uint8)
    Image.fromarray(arr).save(path, format=fmt)


def write_oltr(root: Path, prefix: str, num_classes: int, per_split: dict[str, list[int]],
               splits_dir: Path | None = None) -> dict[str, list[str]]:
    """Images ``root/<split>/c<label>/<k>.png|jpg`` and split files ``<prefix>_<split>.txt``."""
    splits_dir = splits_dir or root
    splits_dir.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, labels in per_split.items():
        lines = []
        for k, label in enumerate(labels):
            assert 0 <= label < num_classes
            ext = "jpg" if k % 2 else "png"
            rel = f"{split}/c{label}/img {k}.{ext}"  # a space in the path, on purpose
            write_png(root / rel, value=label * 7 + k, fmt="JPEG" if ext == "jpg" else "PNG")
            lines.append(f"{rel} {label}")
        (splits_dir / f"{prefix}_{split}.txt").write_text("\n".join(lines) + "\n\n")
        out[split] = lines
    return out


def write_cifar100(root: Path, train_per_class: int = 500, test_per_class: int = 100,
                   seed: int = 0) -> Path:
    """The CIFAR-100 python pickles (bytes keys, (N, 3072) uint8 data) in root/cifar-100-python."""
    d = root / "cifar-100-python"
    d.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for name, per in (("train", train_per_class), ("test", test_per_class)):
        labels = np.tile(np.arange(100), per)
        rng.shuffle(labels)
        n = len(labels)
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        obj = {b"filenames": [f"img_{i}.png".encode() for i in range(n)],
               b"batch_label": f"{name} batch".encode(),
               b"fine_labels": labels.tolist(),
               b"coarse_labels": (labels // 5).tolist(),
               b"data": data}
        with open(d / name, "wb") as f:
            pickle.dump(obj, f, protocol=2)
    names = [f"class_{i:02d}".encode() for i in range(100)]
    names[4] = b"aquarium_fish"
    with open(d / "meta", "wb") as f:
        pickle.dump({b"fine_label_names": names,
                     b"coarse_label_names": [f"super_{i}".encode() for i in range(20)]}, f, protocol=2)
    return d


def write_idx(path: Path, array: np.ndarray) -> None:
    """An IDX file of unsigned bytes, gzipped (as the Fashion-MNIST originals)."""
    array = np.asarray(array, dtype=np.uint8)
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + b"".join(
        struct.pack(">I", n) for n in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.tobytes())


def write_fashion(root: Path, train_per_class: int, test_per_class: int, seed: int = 0) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for prefix, per in (("train", train_per_class), ("t10k", test_per_class)):
        labels = np.tile(np.arange(10), per)
        rng.shuffle(labels)
        images = rng.integers(0, 256, size=(len(labels), 28, 28), dtype=np.uint8)
        write_idx(root / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return root
