"""Writing the feature cache (format ``cache.FORMAT_VERSION``; the layout is in ``cache.py``):
root attributes, the header (classes and text side) and whole caches at once."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

from .. import __version__
from ..io import atomic_path
from ..provenance import environment as _environment
from ..provenance import now_iso
from .cache import FORMAT, FORMAT_VERSION, STR


def root_attrs(*, model: str, pretrained: str, checkpoint_sha256: str, dataset: str, num_classes: int,
               embed_dim: int, config: dict, normalized: bool = True, created: str | None = None,
               device=None) -> dict:
    """The root attributes of a cache (format version ``FORMAT_VERSION``).

    Args:
        device: where the features are computed (``torch.device`` or string), recorded in the
            ``environment`` attribute; None records it as unknown.
    """
    return dict(format=FORMAT, format_version=FORMAT_VERSION, model=model, pretrained=pretrained,
                checkpoint_sha256=checkpoint_sha256, dataset=dataset, num_classes=int(num_classes),
                embed_dim=int(embed_dim), normalized=bool(normalized), lt_bench_version=__version__,
                created=created or now_iso(), config=json.dumps(config, sort_keys=True),
                environment=json.dumps(_environment(device)))


def write_header(f: h5py.File, attrs: dict, classnames: list[str], train_counts, templates: list[str],
                 text_features: np.ndarray) -> None:
    """Write root attributes, classes and the text side (classifier = normalised template mean)."""
    for k, v in attrs.items():
        f.attrs[k] = v
    f.create_dataset("classes/names", data=np.array(classnames, dtype=object), dtype=STR)
    f.create_dataset("classes/train_counts", data=np.asarray(train_counts, dtype=np.int64))
    tf = np.asarray(text_features, dtype=np.float32)
    f.create_dataset("text/templates", data=np.array(templates, dtype=object), dtype=STR)
    f.create_dataset("text/features", data=tf)
    mean = tf.mean(axis=0)
    f.create_dataset("text/classifier", data=mean / np.linalg.norm(mean, axis=-1, keepdims=True))


def write_cache(path: str | Path, *, attrs: dict, classnames: list[str], train_counts, templates: list[str],
                text_features: np.ndarray, splits: dict[str, dict]) -> Path:
    """Write a whole cache at once, atomically (tests, benchmarks, converted features).

    ``splits[name]`` holds ``features`` (N, D), ``labels`` (N,), optional ``paths`` and
    augmented views: ``aug_features`` (N, V, D) (flat), or ``aug_features`` (M, D) with
    ``aug_offsets`` (N + 1,) (ragged). Written as format version 2 whatever the input.
    Features are stored as given (normalise first if ``attrs['normalized']``).
    """
    path = Path(path)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        write_header(f, attrs, classnames, train_counts, templates, text_features)
        for name, s in splits.items():
            n = len(s["labels"])
            g = f.create_group(name)
            g.create_dataset("features", data=np.asarray(s["features"], dtype=np.float16))
            if s.get("aug_features") is not None:
                rows, offsets = ragged_views(s["aug_features"], s.get("aug_offsets"))
                g.create_dataset("aug_features", data=np.asarray(rows, dtype=np.float16))
                g.create_dataset("aug_offsets", data=offsets)
            g.create_dataset("labels", data=np.asarray(s["labels"], dtype=np.int64))
            paths = s.get("paths")
            if paths is None:
                paths = [f"{name}/{i}" for i in range(n)]
            g.create_dataset("paths", data=np.array(paths, dtype=object), dtype=STR)
            g.attrs["n_done"] = n
            g.attrs["complete"] = True
    return path


def ragged_views(aug, offsets=None) -> tuple[np.ndarray, np.ndarray]:
    """(rows (M, D), offsets (N + 1,) int64) of flat (N, V, D) views, or of ragged ones as given."""
    if offsets is not None:
        return aug, np.asarray(offsets, dtype=np.int64)
    aug = np.asarray(aug)
    n, v, d = aug.shape
    return aug.reshape(n * v, d), v * np.arange(n + 1, dtype=np.int64)
