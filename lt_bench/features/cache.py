"""The feature cache: HDF5, format version 2 (README "The feature cache"; a contract).

```
/                      attrs: format, format_version, model, pretrained, checkpoint_sha256,
                       dataset, num_classes, embed_dim, normalized, lt_bench_version,
                       created, config (JSON); optional: environment (JSON)
/classes/names         (C,)      utf-8        /classes/train_counts (C,) int64
/text/templates        (T,)      utf-8        /text/features (T, C, D) float32
/text/classifier       (C, D)    float32 normalised mean over templates
/<split>/features      (N, D)    float16 center view, L2-normalised
/<split>/aug_features  (M, D)    float16 optional augmented views, all images' rows in image order
/<split>/aug_offsets   (N+1,)    int64   with aug_features: image i's views are rows
                                         aug_offsets[i] : aug_offsets[i+1]
/<split>/labels (N,) int64       /<split>/paths (N,) utf-8
/<split>/skipped_paths (K,) utf-8, optional: images left out by --skip-bad
/<split> attrs: n_done, complete; optional n_seen
```

Version 2 (ragged views): each image holds its own number of augmented views
(``ltbench extract --view-budget M``: by expected Phase B draws, ``views.py``); a flat
``--views V`` is the case ``aug_offsets = V * arange(N + 1)``. ``aug_offsets`` starts at 0,
never decreases and ends at M. Every new cache is written as version 2.

Version 1 differs only there: ``/<split>/aug_features (N, V, D)`` float16, V views per image,
no ``aug_offsets``. ``FeatureCache`` reads both versions (``format_version`` says which) and
gives augmented views in one shape either way (``aug_features``: ``AugViews(rows, offsets)``).

Additive in both versions (readers that ignore them lose nothing): ``/<split>/skipped_paths``
(ids of images ``ltbench extract --skip-bad`` left out, so N = split size - K), the split
attribute ``n_seen`` (images processed, written or skipped: where a resumed extraction starts
reading; ``n_done`` stays the number of rows written) and the root attribute ``environment``
(``provenance.environment()`` as JSON: the lt_bench, torch, open_clip, faiss, h5py and python
versions, the platform and the device the file was created on; a resumed or extended file
keeps its first run's, as it keeps ``created``; ``FeatureCache.environment`` is None for a
cache without it). While a split is incomplete its row datasets may be longer than
``n_done`` (allocated at the split's size, filled in order; ``aug_offsets[n_done]`` augmented
rows are written); a complete split has exactly ``n_done`` rows, ``n_done + 1`` offsets and
``aug_offsets[n_done]`` augmented rows. ``ltbench extract`` writes the row datasets contiguous
(unchunked), which reads back as fast as a raw file (benchmarks/test_bench_extract.py).

Writers: ``writing.py`` (``root_attrs``, ``write_header``, ``write_cache``) and the extraction's
partial file (``partial.py``). ``FeatureCache`` is the one reader every later command uses: it validates format, version and
attributes on open, and refuses an incomplete split when asked for its rows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

import h5py
import numpy as np

from .. import __version__
from ..errors import CacheError

FORMAT = "lt_bench.features"
FORMAT_VERSION = 2  # what is written
READ_VERSIONS = (1, 2)  # what FeatureCache reads
SPLITS = ("train", "val", "test")
REQUIRED_ATTRS = ("format", "format_version", "model", "pretrained", "checkpoint_sha256", "dataset",
                  "num_classes", "embed_dim", "normalized", "lt_bench_version", "created", "config")
# What must agree between a cache and anything trained on another cache (a head, a result).
IDENTITY_KEYS = ("model", "pretrained", "checkpoint_sha256", "dataset", "num_classes", "embed_dim")
STR = h5py.string_dtype("utf-8")


def partial_path(path: str | Path) -> Path:
    """Where an unfinished extraction of ``path`` lives until it completes."""
    path = Path(path)
    return path.with_name(path.name + ".partial")


def _json_or_none(text) -> dict | None:
    try:
        return json.loads(text) if text is not None else None
    except (TypeError, ValueError):  # informational only: an unreadable one is as good as none
        return None


def _strings(ds) -> list[str]:
    return [s.decode("utf-8") if isinstance(s, bytes) else str(s) for s in ds[()]]


class FeatureCache:
    """Read-only view of a validated cache. Arrays are loaded on demand, as float32 for features.

    Args:
        path: the ``.h5`` file.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.exists():
            part = partial_path(self.path)
            if part.exists():
                raise CacheError(f"cache {self.path} is incomplete (extraction killed or still running): "
                                 "rerun the same `ltbench extract` command to finish it")
            raise CacheError(f"no feature cache at {self.path}: run `ltbench extract ... --out {self.path}` first")
        try:
            self._h5 = h5py.File(self.path, "r")
        except OSError as e:
            raise CacheError(f"{self.path} is not an HDF5 file ({e}); give a cache written by `ltbench extract`") from None
        a = self._h5.attrs
        if a.get("format") != FORMAT:
            raise CacheError(f"{self.path} is not an lt_bench feature cache (format={a.get('format')!r})")
        version = int(a.get("format_version", -1))
        if version not in READ_VERSIONS:
            raise CacheError(f"{self.path} has cache format version {version}; this lt_bench "
                             f"({__version__}) reads versions {' and '.join(map(str, READ_VERSIONS))}: re-extract it")
        self.format_version = version
        missing = [k for k in REQUIRED_ATTRS if k not in a]
        if missing:
            raise CacheError(f"{self.path} lacks attributes {', '.join(missing)}: re-extract it")
        self.attrs = {k: (v.item() if hasattr(v, "item") else v) for k, v in a.items()}
        self.attrs["normalized"] = bool(self.attrs["normalized"])
        self.config = json.loads(self.attrs["config"])
        # optional (additive in v1): what the file was made with; None for older caches
        self.environment = _json_or_none(self.attrs.get("environment"))
        self.num_classes = int(self.attrs["num_classes"])
        self.embed_dim = int(self.attrs["embed_dim"])
        self._checked: set[str] = set()
        self.classnames = _strings(self._h5["classes/names"])
        self.train_counts = self._h5["classes/train_counts"][()].astype(np.int64)
        if len(self.classnames) != self.num_classes or len(self.train_counts) != self.num_classes:
            raise CacheError(f"{self.path}: num_classes={self.num_classes} but {len(self.classnames)} names "
                             f"and {len(self.train_counts)} train counts")

    # -- context manager -------------------------------------------------------------------
    def close(self) -> None:
        self._h5.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- text side ---------------------------------------------------------------------------
    @property
    def templates(self) -> list[str]:
        return _strings(self._h5["text/templates"])

    @property
    def text_features(self) -> np.ndarray:
        return self._h5["text/features"][()].astype(np.float32)

    @property
    def text_classifier(self) -> np.ndarray:
        return self._h5["text/classifier"][()].astype(np.float32)

    # -- image side --------------------------------------------------------------------------
    @property
    def splits(self) -> list[str]:
        """Splits present in the file, complete or not."""
        return [s for s in SPLITS if s in self._h5]

    def is_complete(self, split: str) -> bool:
        return split in self._h5 and bool(self._h5[split].attrs.get("complete", False))

    def _group(self, split: str) -> h5py.Group:
        if split not in self._h5:
            have = ", ".join(self.splits) or "none"
            raise CacheError(f"cache {self.path} holds no {split!r} split (it has: {have}); "
                             f"extract it with `--splits {split}`")
        g = self._h5[split]
        if not g.attrs.get("complete", False):
            raise CacheError(f"split {split!r} of {self.path} is incomplete ({int(g.attrs.get('n_done', 0))} rows "
                             "done): rerun the same `ltbench extract` command to finish it")
        if split not in self._checked:
            self._check_split(split, g)
            self._checked.add(split)
        return g

    def _check_split(self, split: str, g: h5py.Group) -> None:
        missing = [k for k in ("features", "labels", "paths") if k not in g]
        if missing:
            raise CacheError(f"split {split!r} of {self.path} lacks {', '.join(missing)}: re-extract it")
        shape = g["features"].shape
        n, d = shape if len(shape) == 2 else (None, None)
        problems = []
        if d != self.embed_dim:
            problems.append(f"features shape {g['features'].shape}, expected (N, {self.embed_dim})")
        if g["labels"].shape != (n,) or g["paths"].shape != (n,):
            problems.append(f"{n} feature rows but labels {g['labels'].shape}, paths {g['paths'].shape}")
        if "aug_features" in g:
            problems += self._check_views(g, n)
        if "n_done" in g.attrs and int(g.attrs["n_done"]) != n:
            problems.append(f"n_done={int(g.attrs['n_done'])} but {n} rows")
        if problems:
            raise CacheError(f"split {split!r} of {self.path} is inconsistent ({'; '.join(problems)}): re-extract it")

    def _check_views(self, g: h5py.Group, n: int | None) -> list[str]:
        aug, d = g["aug_features"], self.embed_dim
        if self.format_version == 1:
            ok = aug.ndim == 3 and aug.shape[0] == n and aug.shape[2] == d
            return [] if ok else [f"aug_features shape {aug.shape}, expected ({n}, V, {d})"]
        if aug.ndim != 2 or aug.shape[1] != d:
            return [f"aug_features shape {aug.shape}, expected (M, {d})"]
        if "aug_offsets" not in g:
            return ["aug_features without aug_offsets"]
        off = g["aug_offsets"][()]
        if off.shape != ((n or 0) + 1,) or off[0] != 0 or off[-1] != aug.shape[0] or (np.diff(off) < 0).any():
            return [f"aug_offsets (shape {off.shape}) do not cut {aug.shape[0]} augmented rows into {n} images"]
        return []

    def __len__(self) -> int:  # pragma: no cover - convenience
        return sum(len(self.labels(s)) for s in self.splits)

    def features(self, split: str) -> np.ndarray:
        """(N, D) float32 center-view features."""
        return self._group(split)["features"][()].astype(np.float32)

    def features_raw(self, split: str) -> h5py.Dataset:
        """The on-disk float16 dataset, for streaming reads."""
        return self._group(split)["features"]

    def aug_features(self, split: str) -> AugViews | None:
        """The augmented views of ``split`` as ``AugViews(rows, offsets)``, or None when it has none.

        ``rows`` (M, D) float16, as stored (cast per batch: an ImageNet-LT-sized budget is
        gigabytes in float32); ``offsets`` (N + 1,) int64, image i's views are
        ``rows[offsets[i]:offsets[i + 1]]``. A version 1 cache's (N, V, D) array comes as
        ``rows = aug.reshape(N * V, D)``, ``offsets = V * arange(N + 1)``.
        """
        g = self._group(split)
        if "aug_features" not in g:
            return None
        aug = g["aug_features"][()]
        if self.format_version == 1:
            n, v, d = aug.shape
            return AugViews(aug.reshape(n * v, d), v * np.arange(n + 1, dtype=np.int64))
        return AugViews(aug, g["aug_offsets"][()].astype(np.int64))

    def view_counts(self, split: str) -> np.ndarray:
        """(N,) int64 augmented views of each image of ``split`` (zeros when it has none)."""
        g = self._group(split)
        n = g["features"].shape[0]
        if "aug_features" not in g:
            return np.zeros(n, dtype=np.int64)
        if self.format_version == 1:
            return np.full(n, g["aug_features"].shape[1], dtype=np.int64)
        return np.diff(g["aug_offsets"][()]).astype(np.int64)

    def num_views(self, split: str) -> int:
        """The most augmented views an image of ``split`` has (V of a flat layout; 0: none)."""
        counts = self.view_counts(split)
        return int(counts.max()) if len(counts) else 0

    def labels(self, split: str) -> np.ndarray:
        return self._group(split)["labels"][()].astype(np.int64)

    def paths(self, split: str) -> list[str]:
        return _strings(self._group(split)["paths"])

    def skipped_paths(self, split: str) -> list[str]:
        g = self._group(split)
        return _strings(g["skipped_paths"]) if "skipped_paths" in g else []

    # -- provenance --------------------------------------------------------------------------
    def provenance(self) -> dict:
        """Identity of the cache, recorded in heads and results and checked against them."""
        p = {k: self.attrs[k] for k in IDENTITY_KEYS}
        p.update(path=str(self.path), format_version=self.format_version, created=self.attrs["created"],
                 classnames_hash=classnames_hash(self.classnames))
        return p


class AugViews(NamedTuple):
    """Augmented views, ragged: image i's are ``rows[offsets[i]:offsets[i + 1]]``."""

    rows: np.ndarray  # (M, D)
    offsets: np.ndarray  # (N + 1,) int64

    @property
    def counts(self) -> np.ndarray:
        """(N,) views of each image."""
        return np.diff(self.offsets)


def classnames_hash(names: list[str]) -> str:
    import hashlib

    return hashlib.sha256("\n".join(names).encode("utf-8")).hexdigest()[:16]


def check_same_identity(expected: dict, actual: dict, what: str = "head") -> None:
    """Raise CacheError naming every identity field where a head/result and a cache disagree."""
    keys = IDENTITY_KEYS + ("classnames_hash",)
    diffs = [f"{k}: {expected.get(k)!r} vs {actual.get(k)!r}" for k in keys
             if k in expected and k in actual and str(expected[k]) != str(actual[k])]
    if diffs:
        raise CacheError(f"the {what} was made on another cache ({'; '.join(diffs)}): "
                         f"use the cache it was trained on, or retrain it on this one")
