"""Generated long-tailed images with learnable class structure; no files needed.

Class c has its own colour and stripe orientation/frequency; each image adds a random phase,
brightness jitter and pixel noise, so a small model can learn the classes from a handful of
examples while no two images are equal. Image i of a split is a pure function of
(seed, split, i): the same everywhere, and cheap enough to regenerate on every read.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from .base import LTDataset, Split, long_tail_counts
from .registry import register_dataset


def _class_params(num_classes: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    colours = rng.uniform(0.15, 0.85, size=(num_classes, 3))
    angles = np.linspace(0, np.pi, num_classes, endpoint=False)
    rng.shuffle(angles)
    freqs = rng.uniform(1.0, 4.0, size=num_classes)
    return np.concatenate([colours, angles[:, None], freqs[:, None]], axis=1)


def _make_image(params: np.ndarray, label: int, size: int, rng: np.random.Generator) -> Image.Image:
    r, g, b, angle, freq = params[label]
    yy, xx = np.mgrid[0:size, 0:size] / size
    phase = rng.uniform(0, 2 * np.pi)
    wave = np.sin(2 * np.pi * freq * (xx * np.cos(angle) + yy * np.sin(angle)) + phase)
    base = np.array([r, g, b]) * rng.uniform(0.8, 1.2)
    img = base[None, None, :] + 0.25 * wave[..., None] + rng.normal(0, 0.08, size=(size, size, 3))
    return Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8), mode="RGB")


@register_dataset("synthetic", location="generated in memory, no files")
def load_synthetic(
    root=None,
    splits_dir=None,
    num_classes: int = 10,
    max_per_class: int = 150,
    imbalance: float = 30.0,
    val_per_class: int = 5,
    test_per_class: int = 20,
    image_size: int = 32,
    seed: int = 0,
) -> LTDataset:
    """Synthetic long-tailed dataset (train long-tailed; val and test balanced).

    The defaults give 150..5 train images per class: 2 many-, 4 medium-, 4 few-shot classes.
    """
    params = _class_params(num_classes, seed)
    counts = {
        "train": long_tail_counts(max_per_class, num_classes, imbalance),
        "val": [val_per_class] * num_classes,
        "test": [test_per_class] * num_classes,
    }
    splits = {}
    for k, (name, per_class) in enumerate(counts.items()):
        if sum(per_class) == 0:
            continue
        labels = np.repeat(np.arange(num_classes), per_class)
        split_seed = seed * 1000 + k

        def gen(i, labels=labels, split_seed=split_seed):
            rng = np.random.default_rng((split_seed, i))
            return _make_image(params, int(labels[i]), image_size, rng)

        ids = [f"{name}/{i:06d}" for i in range(len(labels))]
        splits[name] = Split(ids=ids, labels=labels, generator=gen)
    names = [f"class {c}" for c in range(num_classes)]
    options = dict(num_classes=num_classes, max_per_class=max_per_class, imbalance=imbalance,
                   val_per_class=val_per_class, test_per_class=test_per_class,
                   image_size=image_size, seed=seed)
    return LTDataset(name="synthetic", classnames=names, splits=splits, options=options)


def write_image_folder(root, per_class: int, num_classes: int = 4, size: tuple[int, int] = (500, 375),
                       quality: int = 90, test_per_class: int = 2, seed: int = 0) -> None:
    """Write the synthetic images as JPEG files in a ``folder`` dataset's imagefolder layout
    (``root/{train,test}/<class>/<i>.jpg``), at ImageNet's typical size and quality by default:
    what input-path benchmarks and tests decode. Width x height is ``size``."""
    from pathlib import Path

    root = Path(root)
    params = _class_params(num_classes, seed)
    w, h = size
    for split, n in (("train", per_class), ("test", test_per_class)):
        for c in range(num_classes):
            d = root / split / f"class_{c}"
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                rng = np.random.default_rng((seed, c, i, split == "test"))
                img = _make_image(params, c, max(w, h), rng).crop((0, 0, w, h))
                img.save(d / f"{i:05d}.jpg", "JPEG", quality=quality)
