"""Synthetic feature caches with class structure, for tests and benchmarks (no model, no images).

Each class c has a random unit mean ``mu_c``; an image feature is ``norm(mu_c + noise * g / sqrt(D))``
with ``g`` standard normal, so ``noise`` is the ratio of noise norm to signal norm. The text
classifier is ``norm(mu_c + text_noise * g' / sqrt(D))``: zero-shot is good but not perfect, and a
head trained on the images can beat it. Augmented views are ``norm(center + view_noise * g'' /
sqrt(D))``, flat (``views`` per image) or ragged (``view_budget``: each image as many as
``ltbench extract --view-budget`` gives it, ``views.py``). Everything is stored through
:func:`write_cache`, so the file is a real (version 2) cache.
Generation works in float32 chunks and stores float16, so an ImageNet-LT-sized cache (115,846 x
1024) needs about the size of its float16 arrays in memory.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.base import long_tail_counts
from .writing import root_attrs, write_cache
from .views import views_per_image

_CHUNK = 16384


def _normalize(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _samples(rng: np.random.Generator, means: np.ndarray, labels: np.ndarray, noise: float) -> np.ndarray:
    """float16 ``norm(means[labels] + noise * g / sqrt(D))``, generated in chunks."""
    n, d = len(labels), means.shape[1]
    out = np.empty((n, d), dtype=np.float16)
    scale = np.float32(noise / np.sqrt(d))
    for s in range(0, n, _CHUNK):
        lab = labels[s:s + _CHUNK]
        x = means[lab] + scale * rng.standard_normal((len(lab), d), dtype=np.float32)
        out[s:s + _CHUNK] = _normalize(x)
    return out


def make_synthetic_cache(path: str | Path, num_classes: int = 10, dim: int = 64, *,
                         train_counts=None, max_per_class: int = 100, imbalance: float = 10.0,
                         test_per_class: int = 20, val_per_class: int = 0, views: int = 0,
                         view_budget: int = 0, seed: int = 0, noise: float = 1.0, text_noise: float = 0.5,
                         view_noise: float = 0.3, model: str = "synthetic-features",
                         pretrained: str = "none", dataset: str = "synthetic-lt") -> Path:
    """Write a class-structured feature cache and return its path.

    Args:
        path: the ``.h5`` file to write (atomically).
        num_classes: number of classes C.
        dim: feature dimension D.
        train_counts: training images per class; default the exponential long-tail profile
            ``long_tail_counts(max_per_class, num_classes, imbalance)``.
        max_per_class: head-class count of the default profile.
        imbalance: max/min ratio of the default profile.
        test_per_class: balanced test images per class (0: no test split).
        val_per_class: balanced val images per class (0: no val split).
        views: augmented views per training image stored as ``aug_features`` (0: none).
        view_budget: instead of ``views``, ragged views by expected Phase B draws, capped at
            this many per image (``views.views_per_image``).
        seed: everything is a function of it.
        noise: noise-to-signal norm ratio of image features (higher: classes overlap more).
        text_noise: the same for the text classifier (zero-shot quality).
        view_noise: perturbation of an augmented view around its center view.
        model, pretrained, dataset: identity attributes of the cache.
    """
    rng = np.random.default_rng(seed)
    if train_counts is None:
        train_counts = long_tail_counts(max_per_class, num_classes, imbalance)
    train_counts = np.asarray(train_counts, dtype=np.int64)
    if len(train_counts) != num_classes:
        raise ValueError(f"train_counts has {len(train_counts)} entries for {num_classes} classes")
    means = _normalize(rng.standard_normal((num_classes, dim), dtype=np.float32))
    text = _normalize(means + np.float32(text_noise / np.sqrt(dim))
                      * rng.standard_normal((num_classes, dim), dtype=np.float32)).astype(np.float32)
    splits: dict[str, dict] = {}
    labels = np.repeat(np.arange(num_classes), train_counts)
    rng.shuffle(labels)
    train = {"features": _samples(rng, means, labels, noise), "labels": labels}
    counts = views_per_image(labels, num_classes, views=views, view_budget=view_budget)
    if counts.any():
        offsets = np.concatenate([[0], np.cumsum(counts)])
        aug = np.empty((int(offsets[-1]), dim), dtype=np.float16)
        scale = np.float32(view_noise / np.sqrt(dim))
        for s in range(0, len(labels), _CHUNK):  # image-major, then view: the same draws as (k, V, D)
            e = min(len(labels), s + _CHUNK)
            c = np.repeat(train["features"][s:e].astype(np.float32), counts[s:e], axis=0)
            aug[offsets[s]:offsets[e]] = _normalize(c + scale * rng.standard_normal(c.shape, dtype=np.float32))
        train["aug_features"], train["aug_offsets"] = aug, offsets
    splits["train"] = train
    for name, per in (("val", val_per_class), ("test", test_per_class)):
        if per:
            lab = np.repeat(np.arange(num_classes), per)
            splits[name] = {"features": _samples(rng, means, lab, noise), "labels": lab}
    attrs = root_attrs(model=model, pretrained=pretrained, checkpoint_sha256="", dataset=dataset,
                       num_classes=num_classes, embed_dim=dim,
                       config={"synthetic": True, "seed": seed, "noise": noise, "text_noise": text_noise,
                               "view_noise": view_noise, "views": views, "view_budget": view_budget},
                       device="cpu")  # generated with numpy
    return write_cache(path, attrs=attrs, classnames=[f"class_{c:04d}" for c in range(num_classes)],
                       train_counts=train_counts, templates=["a photo of a {}."], text_features=text[None],
                       splits=splits)
