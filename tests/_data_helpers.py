"""Writers of tiny real dataset files for the data tests (no mocks: the real formats)."""

from __future__ import annotations

import gzip
import json
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


def write_cifar10(root: Path, train_per_class: int = 5000, test_per_class: int = 1000, seed: int = 0) -> Path:
    """The CIFAR-10 python pickles (data_batch_1..5, test_batch, batches.meta; bytes keys) in
    root/cifar-10-batches-py, 10,000 images a batch as the originals."""
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    rng = np.random.default_rng(seed)

    def dump(name, labels):
        obj = {b"batch_label": name.encode(), b"labels": labels.tolist(),
               b"data": rng.integers(0, 256, size=(len(labels), 3072), dtype=np.uint8),
               b"filenames": [f"img_{i}.png".encode() for i in range(len(labels))]}
        with open(d / name, "wb") as f:
            pickle.dump(obj, f, protocol=2)

    train = np.tile(np.arange(10), train_per_class)
    rng.shuffle(train)
    for b, part in enumerate(np.array_split(train, 5), start=1):
        dump(f"data_batch_{b}", part)
    test = np.tile(np.arange(10), test_per_class)
    rng.shuffle(test)
    dump("test_batch", test)
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    with open(d / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": names, b"num_cases_per_batch": 10000, b"num_vis": 3072}, f, protocol=2)
    return d


INAT_KINGDOMS = ("Plantae", "Animalia", "Fungi")


def inat_categories(num_classes: int) -> list[dict]:
    """categories.json entries as the official file has them (id, name, taxonomy), in an order
    that is neither by id nor by name, so that a loader mapping by sorted names gets it wrong."""
    cats = [{"id": i, "name": f"Species {chr(ord('z') - i % 26)}{i:04d}", "kingdom": INAT_KINGDOMS[i % 3],
             "genus": f"Genus{i}"} for i in range(num_classes)]
    return cats[::-1]


def write_inaturalist(root: Path, train_counts: list[int], test_per_class: int = 3, annotation: str = "categories",
                      images: bool = False, year: int = 2018) -> dict[str, list[str]]:
    """iNaturalist18_{train,val}.txt (``train_val2018/<kingdom>/<id>/<hash>.jpg <id>``) and the
    annotation: ``categories.json`` (a list) or ``train2018.json`` ({"images", "annotations",
    "categories"}); tiny JPEGs at those paths when ``images``. ``year=2017`` writes 2017-style paths."""
    root.mkdir(parents=True, exist_ok=True)
    c = len(train_counts)
    folder = "train_val2018" if year == 2018 else "train_val_images"
    out = {}
    for split, counts in (("train", train_counts), ("val", [test_per_class] * c)):
        lines = []
        for label, n in enumerate(counts):
            for k in range(n):
                rel = f"{folder}/{INAT_KINGDOMS[label % 3]}/{label}/{split}{k:04d}{label:05d}.jpg"
                if images:
                    write_png(root / rel, value=label + k, fmt="JPEG")
                lines.append(f"{rel} {label}")
        np.random.default_rng(len(lines)).shuffle(lines)
        (root / f"iNaturalist18_{split}.txt").write_text("\n".join(lines) + "\n")
        out[split] = lines
    cats = inat_categories(c)
    if annotation == "categories":
        (root / "categories.json").write_text(json.dumps(cats))
    else:
        (root / f"{annotation}.json").write_text(json.dumps({"info": {"year": 2018}, "images": [], "annotations": [],
                                                            "categories": cats}))
    return out


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
