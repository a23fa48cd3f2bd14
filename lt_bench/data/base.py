"""What every dataset gives: class names, per-split (image, label) lists, train counts.

A dataset is a plain object, not a torch Dataset: ``ImageSplitDataset`` wraps one split with
a transform for a DataLoader. Images come back as RGB PIL images whatever is stored (grey
28x28 Fashion-MNIST, CIFAR arrays, JPEG files), so every model's own preprocessing applies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from ..errors import LTBenchError

SPLITS = ("train", "val", "test")

# Shot groups of the protocol (docs/protocol.md): by number of *training* images of the class.
MANY_SHOT_MIN = 101  # many-shot: > 100
FEW_SHOT_MAX = 19  # few-shot: < 20; medium: 20..100 inclusive


@dataclass
class Split:
    """One split: ``ids[i]`` names image i (a relative path or an id), ``labels[i]`` its class.

    Exactly one image source is set: ``root`` (files ``root / ids[i]``) or ``arrays``
    (an (N, H, W) or (N, H, W, C) uint8 array, row i is image i) or ``generator``
    (a function i -> PIL image, for synthetic data).
    """

    ids: list[str]
    labels: np.ndarray
    root: Path | None = None
    arrays: np.ndarray | None = None
    generator: Callable[[int], Image.Image] | None = None

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if len(self.ids) != len(self.labels):
            raise ValueError(f"{len(self.ids)} ids but {len(self.labels)} labels")
        sources = sum(x is not None for x in (self.root, self.arrays, self.generator))
        assert sources == 1, "a Split needs exactly one image source"

    def __len__(self) -> int:
        return len(self.labels)

    def load_image(self, i: int) -> Image.Image:
        """Image i as an RGB PIL image. Raises LTBenchError naming the image if it cannot be read."""
        if self.arrays is not None:
            a = self.arrays[i]
            img = Image.fromarray(a)
        elif self.generator is not None:
            img = self.generator(i)
        else:
            path = self.root / self.ids[i]
            try:
                with Image.open(path) as f:
                    f.load()
                    img = f.copy()
            except FileNotFoundError:
                raise LTBenchError(f"image not found: {path} (check --root)") from None
            except Exception as e:  # PIL raises many kinds for a broken file
                raise LTBenchError(f"cannot decode image {path}: {e}") from None
        return img if img.mode == "RGB" else img.convert("RGB")


@dataclass
class LTDataset:
    """A long-tailed dataset: class names, splits, and the options that built it."""

    name: str
    classnames: list[str]
    splits: dict[str, Split]
    options: dict = field(default_factory=dict)
    location: str = ""  # where the files were read from (resolved root), for display/provenance

    @property
    def num_classes(self) -> int:
        return len(self.classnames)

    def split(self, name: str) -> Split:
        if name not in self.splits:
            raise LTBenchError(
                f"dataset {self.name} has no {name!r} split; it has: {', '.join(self.splits)}"
            )
        return self.splits[name]

    @property
    def train_counts(self) -> np.ndarray:
        """Training images per class (defines the shot groups)."""
        return np.bincount(self.split("train").labels, minlength=self.num_classes).astype(np.int64)

    def validate(self) -> None:
        """Labels in 0..C-1 for every split; raise naming the split otherwise."""
        c = self.num_classes
        for name, s in self.splits.items():
            if len(s) and (s.labels.min() < 0 or s.labels.max() >= c):
                bad = int(s.labels[(s.labels < 0) | (s.labels >= c)][0])
                raise LTBenchError(
                    f"{self.name} {name} split has label {bad} outside 0..{c - 1} "
                    f"({c} class names): fix the split file or the class-names file"
                )


def shot_groups(train_counts: np.ndarray) -> dict[str, np.ndarray]:
    """Boolean masks over classes: many (>100 train images), medium (20..100), few (<20)."""
    counts = np.asarray(train_counts)
    return {
        "many": counts >= MANY_SHOT_MIN,
        "medium": (counts > FEW_SHOT_MAX) & (counts < MANY_SHOT_MIN),
        "few": counts <= FEW_SHOT_MAX,
    }


def long_tail_counts(max_per_class: int, num_classes: int, imbalance: float) -> list[int]:
    """Exponential profile of Cao et al.: class i keeps int(max * (1/IF) ** (i / (C-1)))."""
    if num_classes == 1:
        return [max_per_class]
    return [int(max_per_class * (1.0 / imbalance) ** (i / (num_classes - 1))) for i in range(num_classes)]


class ImageSplitDataset:
    """A torch-style dataset over one split: returns (transform(image), label, index)."""

    def __init__(self, split: Split, transform: Callable | None = None, indices=None):
        self.split = split
        self.transform = transform
        self.indices = np.arange(len(split)) if indices is None else np.asarray(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, k: int):
        i = int(self.indices[k])
        img = self.split.load_image(i)
        x = self.transform(img) if self.transform is not None else img
        return x, int(self.split.labels[i]), i
