"""The feature cache: HDF5, format version 2 (README "The feature cache"; a contract).

```
/                      attrs: format, format_version, model, pretrained, checkpoint_sha256,
                       dataset, num_classes, embed_dim, normalized, lt_bench_version,
                       created, config (JSON); optional: environment (JSON),
                       checksums ("fletcher32") and fingerprint (sha256 hex), together
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
cache without it). A complete split of a cache has exactly ``n_done`` rows, ``n_done + 1``
offsets and ``aug_offsets[n_done]`` augmented rows. The extraction's partial file
(``OUT.partial``) has the same layout, but its row datasets are contiguous (unchunked: rows go
in place, so a killed run resumes at ``n_done``) and allocated at the split's size, filled in
order, so they may be longer than ``n_done`` (``aug_offsets[n_done]`` augmented rows written),
also once the split is complete: the copy into the cache takes the first ``n_done``.

Integrity (additive in version 2: readers that ignore it lose nothing): a cache written now has
the root attributes ``checksums = "fletcher32"`` and ``fingerprint``. Every numeric
dataset is chunked (about 4 MiB a chunk) with HDF5's Fletcher32 filter, and the file uses
HDF5's v110+ object formats (``libver=("v110", "latest")``), whose metadata (superblock, object
headers, chunk indexes) carry checksums: a flipped byte in a feature, label or offset chunk, or
in the file's structure, fails the read, and ``FeatureCache`` reports it as one ``CacheError``
naming the file and the dataset. Variable-length strings (class names, templates, paths) live
in HDF5's global heap, which has no checksum; the fingerprint covers them. Reading such a file
takes HDF5 1.10 or later (h5py's wheels have it). A cache without ``checksums`` (format version
1, or version 2 written before) is read as it is, unchecked, as before
(benchmarks/test_bench_extract.py measures the read cost of the checksums).

``fingerprint``: sha256 (hex) of what the cache holds (``content_fingerprint``): the identity
attributes, the extraction's identity block of ``config`` (the whole ``config`` when it has
none), class names, train counts, the text classifier, and per complete split its labels,
paths, skipped paths, augmented-view offsets and a deterministic sample of feature and
augmented rows (up to ``FINGERPRINT_ROWS`` evenly spaced rows). Written once the cache is
complete; heads and results record it (``provenance``), and a head made on another cache is
refused even when model and dataset names agree. For a cache without the attribute it is
computed on first use (``FeatureCache.fingerprint``), the same function, so a cache has the
same fingerprint whether or not it was stored. Adding a split changes it.

Writers: ``writing.py`` (``root_attrs``, ``write_header``, ``write_cache``, and
``publish_checksummed``, the chunked copy of a finished partial into the cache) and the
extraction's partial file (``partial.py``). ``FeatureCache`` is the one reader every later
command uses, and the one place a cache is validated; every failure is a one-line
``CacheError`` naming the file, the thing and what to do:

- on open: every object's header readable (HDF5 checks its checksum), ``format``, an
  integer ``format_version`` it reads, every required attribute
  (``num_classes`` and ``embed_dim`` positive integers, ``config`` a JSON object), and
  ``/classes/names``, ``/classes/train_counts`` (integers >= 0), ``/text/classifier``,
  ``/text/features`` (and ``/text/templates`` when there) present with the dtype and shape above;
- on a split's first use: complete, and each of its datasets present with its dtype and shape
  (version 2 ``aug_offsets`` rising from 0 to M; version 1 ``aug_features`` (N, V, D));
- on each read: HDF5's checksums (a damaged chunk or object: "... is damaged"); labels
  within 0..C-1; features (center and augmented, and the text side) all finite, and in a
  ``normalized`` cache image features within [-1, 1] (``UNIT_BOUND``: every coordinate of a
  unit vector is), checked on the array as read in one vectorised pass (the refusal names the
  split and the number of bad rows); a split with 0 rows refused where its features are read.
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
CHECKSUMS = "fletcher32"  # the root attribute ``checksums`` of a checksummed cache
FINGERPRINT_ROWS = 256  # feature rows per dataset sampled into the fingerprint


def partial_path(path: str | Path) -> Path:
    """Where an unfinished extraction of ``path`` lives until it completes."""
    path = Path(path)
    return path.with_name(path.name + ".partial")


def _json_or_none(text) -> dict | None:
    try:
        return json.loads(text) if text is not None else None
    except (TypeError, ValueError):  # informational only: an unreadable one is as good as none
        return None


def _is_int(v) -> bool:
    """An integer attribute (Python or numpy; a bool is not one)."""
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


_FINITE_CHUNK = 1 << 20  # elements per np.isfinite pass: the bool temporary stays in cache
# |value| bound of an L2-normalised feature (every coordinate of a unit vector is within [-1, 1];
# float16 rounding adds less than 0.001): a value beyond it is damage, as NaN or inf are.
UNIT_BOUND = 1.01


def _ok(chunk: np.ndarray, bound: float | None) -> bool:
    """All finite (and within ``[-bound, bound]`` when given: min and max propagate NaN)."""
    if bound is None:
        return bool(np.isfinite(chunk).all())
    return bool(chunk.max() <= bound) and bool(chunk.min() >= -bound)


def _all_finite(x: np.ndarray, bound: float | None = None) -> bool:
    """Whether every element of ``x`` is finite (and within ``bound``): one vectorised pass, in
    chunks of rows."""
    flat = x.reshape(len(x), -1) if x.ndim > 1 else x.reshape(-1, 1)
    step = max(1, _FINITE_CHUNK // max(1, flat.shape[1]))
    return all(_ok(flat[s:s + step], bound) for s in range(0, len(flat), step))


def _float32_finite(x16: np.ndarray, bound: float | None = None) -> tuple[np.ndarray, bool]:
    """``x16.astype(float32)`` and whether it is all finite (and within ``bound``), in one pass
    of cache-sized chunks (the check reads each chunk while it is hot: ~4 % over the bare cast)."""
    out = np.empty(x16.shape, dtype=np.float32)
    step = max(1, (_FINITE_CHUNK // 4) // max(1, int(np.prod(x16.shape[1:]))))
    finite = True
    for s in range(0, len(x16), step):
        o = out[s:s + step]
        np.copyto(o, x16[s:s + step])
        finite &= _ok(o, bound)
    return out, finite


def _bad_rows(x: np.ndarray, bound: float | None = None) -> int:
    """Rows of ``x`` (first axis) holding any NaN or inf (or a value beyond ``bound``); only
    called once ``_all_finite`` failed."""
    flat = x.reshape(len(x), -1)
    bad = 0
    for s in range(0, len(flat), 65536):
        c = flat[s:s + 65536]
        wrong = ~np.isfinite(c) if bound is None else ~(np.abs(c.astype(np.float32)) <= bound)
        bad += int(wrong.any(axis=1).sum())
    return bad


def _strings(values) -> list[str]:
    return [s.decode("utf-8") if isinstance(s, bytes) else str(s) for s in values]


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:160] if text else type(e).__name__


# What h5py raises when HDF5 finds a checksum mismatch or an unreadable object.
_H5_FAILURES = (OSError, KeyError, RuntimeError, ValueError)


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
            raise CacheError(f"{self.path} is not an HDF5 file, or its superblock is damaged ({_first_line(e)}): "
                             "give a cache written by `ltbench extract`, or re-extract it") from None
        self._fingerprint: str | None = None
        try:
            self._validate_root()
        except _H5_FAILURES as e:  # HDF5 could not read the file's own structure
            self._h5.close()
            raise CacheError(f"{self.path}: the file's structure is damaged ({_first_line(e)}): "
                             "re-extract it with `ltbench extract`") from None
        except BaseException:
            self._h5.close()
            raise

    def _open_every_object(self) -> None:
        """Open each split's group and datasets once: HDF5 verifies an object's header checksum
        when it opens it, so a damaged one is found now, whichever split a command reads."""
        for split in SPLITS:
            try:
                if split not in self._h5:
                    continue
                g = self._h5[split]
                for name in g:
                    g[name]
            except _H5_FAILURES as e:
                raise CacheError(f"{self.path}: /{split} is damaged ({_first_line(e)}): "
                                 "re-extract it with `ltbench extract`") from None

    def _read(self, name: str, sel=()) -> np.ndarray:
        """``/name[sel]``; a failed read (HDF5's checksum, a damaged chunk) as one line naming it."""
        try:
            return self._h5[name][sel]
        except _H5_FAILURES as e:
            raise CacheError(f"{self.path}: /{name} is damaged ({_first_line(e)}; HDF5's checksum or a "
                             "damaged chunk): re-extract it with `ltbench extract`") from None

    def _validate_root(self) -> None:
        """Root attributes, classes and text side: present, typed and shaped as the format says."""
        a = self._h5.attrs
        if a.get("format") != FORMAT:
            raise CacheError(f"{self.path} is not an lt_bench feature cache (format={a.get('format')!r})")
        version = a.get("format_version", None)
        version = version.item() if isinstance(version, np.generic) else version
        if not _is_int(version):
            raise CacheError(f"{self.path}: attribute format_version is {version!r}, not an integer: "
                             "re-extract it with `ltbench extract`")
        version = int(version)
        if version not in READ_VERSIONS:
            raise CacheError(f"{self.path} has cache format version {version}; this lt_bench "
                             f"({__version__}) reads versions {' and '.join(map(str, READ_VERSIONS))}: re-extract it")
        self.format_version = version
        missing = [k for k in REQUIRED_ATTRS if k not in a]
        if missing:
            raise CacheError(f"{self.path} lacks attributes {', '.join(missing)}: re-extract it")
        self.attrs = {k: (v.item() if hasattr(v, "item") else v) for k, v in a.items()}
        for k in ("num_classes", "embed_dim"):
            if not _is_int(self.attrs[k]) or int(self.attrs[k]) < 1:
                raise CacheError(f"{self.path}: attribute {k} is {self.attrs[k]!r}, not a positive integer: "
                                 "re-extract it")
        self.attrs["normalized"] = bool(self.attrs["normalized"])
        try:
            self.config = json.loads(self.attrs["config"])
        except (TypeError, ValueError, UnicodeDecodeError):
            raise CacheError(f"{self.path}: attribute config is not valid JSON: re-extract it") from None
        if not isinstance(self.config, dict):
            raise CacheError(f"{self.path}: attribute config is JSON but not an object: re-extract it")
        # optional (additive in v1): what the file was made with; None for older caches
        self.environment = _json_or_none(self.attrs.get("environment"))
        self.num_classes = c = int(self.attrs["num_classes"])
        self.embed_dim = d = int(self.attrs["embed_dim"])
        self._checked: set[str] = set()
        names = self._dataset("classes/names", "string", (c,))
        counts = self._dataset("classes/train_counts", "int", (c,))
        self._dataset("text/classifier", "float32", (c, d))
        tf = self._dataset("text/features", "float32", (None, c, d))
        if "text/templates" in self._h5:  # in every cache lt_bench writes; checked when there
            self._dataset("text/templates", "string", (tf.shape[0],))
        self._open_every_object()
        self.classnames = _strings(self._read(names.name))
        self.train_counts = self._read(counts.name).astype(np.int64)
        if (self.train_counts < 0).any():
            raise CacheError(f"{self.path}: /classes/train_counts has {int((self.train_counts < 0).sum())} "
                             "negative entries: re-extract it")

    def _dataset(self, name: str, kind: str, shape: tuple) -> h5py.Dataset:
        """The dataset ``name`` (a path in the file), refused unless of ``kind`` and ``shape`` (None: any)."""
        where = f"{self.path}: /{name}"
        try:
            obj = self._h5[name]  # not .get(): it reports an object HDF5 cannot read as missing
        except _H5_FAILURES as e:
            if isinstance(e, KeyError) and ("doesn't exist" in str(e) or "not found" in str(e)):
                raise CacheError(f"{where} is missing: re-extract it with `ltbench extract`") from None
            raise CacheError(f"{where} is damaged ({_first_line(e)}): re-extract it with `ltbench extract`") from None
        if not isinstance(obj, h5py.Dataset):
            raise CacheError(f"{where} is not a dataset: re-extract it with `ltbench extract`")
        dt = obj.dtype
        ok = {"string": lambda: h5py.check_string_dtype(dt) is not None,
              "int": lambda: dt.kind in "iu",
              "float16": lambda: dt == np.float16,
              "float32": lambda: dt == np.float32}[kind]()
        if not ok:
            raise CacheError(f"{where} has dtype {dt}, expected {kind}: re-extract it with `ltbench extract`")
        if len(obj.shape) != len(shape) or any(w is not None and w != h for w, h in zip(shape, obj.shape)):
            want = "(" + ", ".join("*" if w is None else str(w) for w in shape) + ("," if len(shape) == 1 else "") + ")"
            raise CacheError(f"{where} has shape {obj.shape}, expected {want}: re-extract it with `ltbench extract`")
        return obj

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
        return _strings(self._read("text/templates"))

    @property
    def text_features(self) -> np.ndarray:
        return self._check_text(self._read("text/features").astype(np.float32), "text/features")

    @property
    def text_classifier(self) -> np.ndarray:
        return self._check_text(self._read("text/classifier").astype(np.float32), "text/classifier")

    def _check_text(self, x: np.ndarray, name: str) -> np.ndarray:
        if not _all_finite(x):
            raise CacheError(f"{self.path}: /{name} holds NaN or inf: re-extract it")
        return x

    # -- image side --------------------------------------------------------------------------
    @property
    def splits(self) -> list[str]:
        """Splits present in the file, complete or not."""
        return [s for s in SPLITS if s in self._h5]

    def is_complete(self, split: str) -> bool:
        return split in self._h5 and bool(self._h5[split].attrs.get("complete", False))

    def _group(self, split: str) -> h5py.Group:
        try:
            return self._checked_group(split)
        except _H5_FAILURES as e:
            raise CacheError(f"{self.path}: /{split} is damaged ({_first_line(e)}): "
                             "re-extract it with `ltbench extract`") from None

    def _checked_group(self, split: str) -> h5py.Group:
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
        d = self.embed_dim
        feats = self._dataset(f"{split}/features", "float16", (None, d))
        n = feats.shape[0]
        self._dataset(f"{split}/labels", "int", (n,))
        self._dataset(f"{split}/paths", "string", (n,))
        if "aug_features" in g:
            if self.format_version == 1:
                self._dataset(f"{split}/aug_features", "float16", (n, None, d))
            else:
                aug = self._dataset(f"{split}/aug_features", "float16", (None, d))
                off = self._read(self._dataset(f"{split}/aug_offsets", "int", (n + 1,)).name)
                if off[0] != 0 or off[-1] != aug.shape[0] or (np.diff(off) < 0).any():
                    raise CacheError(f"{self.path}: /{split}/aug_offsets do not cut {aug.shape[0]} augmented rows "
                                     f"into {n} images (must rise from 0 to {aug.shape[0]}): re-extract it")
        if "n_done" in g.attrs and int(g.attrs["n_done"]) != n:
            raise CacheError(f"split {split!r} of {self.path} is inconsistent (n_done={int(g.attrs['n_done'])} "
                             f"but {n} rows): re-extract it")

    def _rows(self, split: str, what: str = "features") -> h5py.Group:
        """The split's group, refused when it has no rows (``what`` the caller is about to read)."""
        g = self._group(split)
        if g["features"].shape[0] == 0:
            raise CacheError(f"split {split!r} of {self.path} has 0 rows: no {what} to train or evaluate on; "
                             f"extract images into it (or use another split)")
        return g

    @property
    def _bound(self) -> float | None:
        """The |value| bound of this cache's image features: ``UNIT_BOUND`` when normalised."""
        return UNIT_BOUND if self.attrs["normalized"] else None

    def _check_finite(self, x: np.ndarray, split: str, what: str = "features", finite: bool | None = None
                      ) -> np.ndarray:
        """Refuse NaN or inf anywhere in ``x``, or in a normalised cache a value beyond
        ``UNIT_BOUND`` (as read: one vectorised pass, chunked, unless the caller already made
        it: ``finite``); return ``x``."""
        if not (_all_finite(x, self._bound) if finite is None else finite):
            beyond = " or values outside [-1, 1] (the features are L2-normalised)" if self._bound else ""
            raise CacheError(f"split {split!r} of {self.path} has {_bad_rows(x, self._bound)} rows with NaN or "
                             f"inf{beyond} in its {what}: re-extract it")
        return x

    def __len__(self) -> int:  # pragma: no cover - convenience
        return sum(len(self.labels(s)) for s in self.splits)

    def features(self, split: str) -> np.ndarray:
        """(N, D) float32 center-view features, refused when empty or not all finite."""
        self._rows(split)
        x, finite = _float32_finite(self._read(f"{split}/features"), self._bound)
        return self._check_finite(x, split, finite=finite)

    def stored_features(self, split: str) -> np.ndarray:
        """(N, D) center-view features in their stored dtype (float16), refused when empty or not
        all finite: half the memory of ``features``, for a consumer that converts per batch
        (training, FAISS's chunked adds). iNaturalist's 437,513 x 768 is 0.67 GB so, 1.3 GB in float32."""
        self._rows(split)
        return self._check_finite(self._read(f"{split}/features"), split)

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
        g = self._rows(split, "augmented views")
        if "aug_features" not in g:
            return None
        aug = self._check_finite(self._read(f"{split}/aug_features"), split, "augmented view features")
        if self.format_version == 1:
            n, v, d = aug.shape
            return AugViews(aug.reshape(n * v, d), v * np.arange(n + 1, dtype=np.int64))
        return AugViews(aug, self._read(f"{split}/aug_offsets").astype(np.int64))

    def view_counts(self, split: str) -> np.ndarray:
        """(N,) int64 augmented views of each image of ``split`` (zeros when it has none)."""
        g = self._group(split)
        n = g["features"].shape[0]
        if "aug_features" not in g:
            return np.zeros(n, dtype=np.int64)
        if self.format_version == 1:
            return np.full(n, g["aug_features"].shape[1], dtype=np.int64)
        return np.diff(self._read(f"{split}/aug_offsets")).astype(np.int64)

    def num_views(self, split: str) -> int:
        """The most augmented views an image of ``split`` has (V of a flat layout; 0: none)."""
        counts = self.view_counts(split)
        return int(counts.max()) if len(counts) else 0

    def labels(self, split: str) -> np.ndarray:
        """(N,) int64 class indices, refused unless all within 0..C-1."""
        self._group(split)
        y = self._read(f"{split}/labels").astype(np.int64)
        if len(y) and (y.min() < 0 or y.max() >= self.num_classes):
            bad = int(((y < 0) | (y >= self.num_classes)).sum())
            worst = int(y.min()) if y.min() < 0 else int(y.max())
            raise CacheError(f"split {split!r} of {self.path} has {bad} labels outside 0..{self.num_classes - 1} "
                             f"(e.g. {worst}): re-extract it")
        return y

    def paths(self, split: str) -> list[str]:
        self._group(split)
        return _strings(self._read(f"{split}/paths"))

    def skipped_paths(self, split: str) -> list[str]:
        g = self._group(split)
        return _strings(self._read(f"{split}/skipped_paths")) if "skipped_paths" in g else []

    # -- provenance --------------------------------------------------------------------------
    def provenance(self) -> dict:
        """Identity of the cache, recorded in heads and results and checked against them."""
        p = {k: self.attrs[k] for k in IDENTITY_KEYS}
        p.update(path=str(self.path), format_version=self.format_version, created=self.attrs["created"],
                 classnames_hash=classnames_hash(self.classnames), fingerprint=self.fingerprint)
        return p

    @property
    def checksummed(self) -> bool:
        """Whether HDF5 checks this file's data and metadata on read (``checksums`` attribute)."""
        return self.attrs.get("checksums") == CHECKSUMS

    @property
    def fingerprint(self) -> str:
        """sha256 of the cache's content (module docstring): as recorded at completion, or, for a
        cache written before fingerprints, computed on first use (the same function)."""
        if self._fingerprint is None:
            stored = self.attrs.get("fingerprint")
            if isinstance(stored, bytes):
                stored = stored.decode("utf-8", "replace")
            if isinstance(stored, str) and stored:
                self._fingerprint = stored
            else:
                try:
                    self._fingerprint = content_fingerprint(self._h5)
                except _H5_FAILURES as e:
                    raise CacheError(f"{self.path} is damaged ({_first_line(e)}): re-extract it "
                                     "with `ltbench extract`") from None
        return self._fingerprint


class AugViews(NamedTuple):
    """Augmented views, ragged: image i's are ``rows[offsets[i]:offsets[i + 1]]``."""

    rows: np.ndarray  # (M, D)
    offsets: np.ndarray  # (N + 1,) int64

    @property
    def counts(self) -> np.ndarray:
        """(N,) views of each image."""
        return np.diff(self.offsets)


def _sample_rows(ds: h5py.Dataset) -> np.ndarray:
    """Up to ``FINGERPRINT_ROWS`` evenly spaced rows of ``ds`` (first axis), as stored."""
    n = ds.shape[0]
    if n <= FINGERPRINT_ROWS:
        return ds[()]
    idx = np.unique(np.linspace(0, n - 1, FINGERPRINT_ROWS).astype(np.int64))
    return ds[idx]


def content_fingerprint(h5: h5py.File) -> str:
    """sha256 (hex) of what a cache holds (module docstring): identity attributes, the
    extraction's identity (else its whole config), classes, text classifier, and per complete
    split its labels, paths, skipped paths, view offsets and a sample of feature rows."""
    import hashlib

    h = hashlib.sha256()

    def feed(tag: str, value) -> None:
        data = value.encode("utf-8") if isinstance(value, str) else np.ascontiguousarray(value).tobytes()
        h.update(f"{tag}:{len(data)}:".encode())
        h.update(data)

    attrs = h5.attrs
    for k in IDENTITY_KEYS:
        v = attrs.get(k)
        feed(k, str(v.item() if isinstance(v, np.generic) else v))
    config = _json_or_none(attrs.get("config")) or {}
    feed("config", json.dumps(config.get("identity", config), sort_keys=True, default=str))
    feed("classes/names", "\n".join(_strings(h5["classes/names"][()])))
    feed("classes/train_counts", h5["classes/train_counts"][()].astype("<i8"))
    feed("text/classifier", h5["text/classifier"][()].astype("<f4"))
    for split in SPLITS:
        if split not in h5 or not h5[split].attrs.get("complete", False):
            continue
        g = h5[split]
        feed(f"{split}/labels", g["labels"][()].astype("<i8"))
        feed(f"{split}/paths", "\n".join(_strings(g["paths"][()])))
        if "skipped_paths" in g:
            feed(f"{split}/skipped_paths", "\n".join(_strings(g["skipped_paths"][()])))
        feed(f"{split}/features", _sample_rows(g["features"]).astype("<f2"))
        if "aug_features" in g:
            feed(f"{split}/aug_features", _sample_rows(g["aug_features"]).astype("<f2"))
        if "aug_offsets" in g:
            feed(f"{split}/aug_offsets", g["aug_offsets"][()].astype("<i8"))
    return h.hexdigest()


def classnames_hash(names: list[str]) -> str:
    import hashlib

    return hashlib.sha256("\n".join(names).encode("utf-8")).hexdigest()[:16]


def _short(v):
    """A fingerprint's first 16 hex digits (enough to tell two apart in a message)."""
    return v[:16] + "..." if isinstance(v, str) and len(v) == 64 else v


def check_same_identity(expected: dict, actual: dict, what: str = "head") -> None:
    """Raise CacheError naming every identity field where a head/result and a cache disagree."""
    # a record from before fingerprints (no "fingerprint") is compared by the names alone
    keys = IDENTITY_KEYS + ("classnames_hash", "fingerprint")
    diffs = [f"{k}: {_short(expected.get(k))!r} vs {_short(actual.get(k))!r}" for k in keys
             if k in expected and k in actual and str(expected[k]) != str(actual[k])]
    if diffs == [d for d in diffs if d.startswith("fingerprint")] and diffs:
        raise CacheError(f"the {what} was made on another cache of the same model and dataset names but other "
                         f"content ({diffs[0]}): use the cache it was trained on, or retrain it on this one")
    if diffs:
        raise CacheError(f"the {what} was made on another cache ({'; '.join(diffs)}): "
                         f"use the cache it was trained on, or retrain it on this one")
