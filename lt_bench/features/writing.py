"""Writing the feature cache (format ``cache.FORMAT_VERSION``; the layout is in ``cache.py``):
root attributes, the header (classes and text side), whole caches at once, and the checksummed
copy of a finished extraction (``publish_checksummed``).

Why a copy: the extraction's partial file must take rows in place, in any order of kills, and
resume at ``n_done``; contiguous datasets do that (a chunk half written by a killed run would
fail its own checksum on resume). Once every split is complete the partial is copied, chunk
by chunk, into a fresh file with checksums (``checksummed_layout``), without the rows of images
``--skip-bad`` left out, and that copy is moved onto OUT. It costs one sequential read and write
of the cache at the end of an extraction that took a forward pass per row, and the disk for a
second copy until the partial is removed (counted by ``extract``'s disk check).
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

from .. import __version__
from ..io import atomic_path
from ..provenance import environment as _environment
from ..provenance import now_iso
from .cache import CHECKSUMS, FORMAT, FORMAT_VERSION, SPLITS, STR, content_fingerprint

LIBVER = ("v110", "latest")  # HDF5 object formats whose metadata carry checksums
CHUNK_BYTES = 4 << 20  # a chunk: big enough that a whole read runs at the checksum's speed
COPY_CHUNKS = 8  # chunks copied per read/write


def checksummed_layout(shape: tuple, dtype) -> dict:
    """``create_dataset`` keywords of a checksummed dataset: chunks of about ``CHUNK_BYTES`` rows
    with HDF5's Fletcher32 filter. Strings and empty datasets stay as they are: HDF5 filters
    neither (the fingerprint covers the strings)."""
    dtype = np.dtype(dtype)
    if h5py.check_string_dtype(dtype) is not None or not shape or 0 in shape:
        return {}
    row = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
    rows = max(1, min(int(shape[0]), CHUNK_BYTES // max(1, row)))
    return {"chunks": (rows, *shape[1:]), "fletcher32": True}


def _create(f: h5py.Group, name: str, data, checksums: bool, dtype=None) -> h5py.Dataset:
    data = np.asarray(data) if dtype is None else data
    layout = checksummed_layout(np.shape(data), dtype or data.dtype) if checksums else {}
    return f.create_dataset(name, data=data, dtype=dtype, **layout)


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
                 text_features: np.ndarray, checksums: bool = False) -> None:
    """Write root attributes, classes and the text side (classifier = normalised template mean);
    ``checksums``: chunked with Fletcher32 (``checksummed_layout``)."""
    for k, v in attrs.items():
        f.attrs[k] = v
    _create(f, "classes/names", np.array(classnames, dtype=object), checksums, dtype=STR)
    _create(f, "classes/train_counts", np.asarray(train_counts, dtype=np.int64), checksums)
    tf = np.asarray(text_features, dtype=np.float32)
    _create(f, "text/templates", np.array(templates, dtype=object), checksums, dtype=STR)
    _create(f, "text/features", tf, checksums)
    mean = tf.mean(axis=0)
    _create(f, "text/classifier", mean / np.linalg.norm(mean, axis=-1, keepdims=True), checksums)


def write_cache(path: str | Path, *, attrs: dict, classnames: list[str], train_counts, templates: list[str],
                text_features: np.ndarray, splits: dict[str, dict], checksums: bool = True) -> Path:
    """Write a whole cache at once, atomically (tests, benchmarks, converted features).

    ``splits[name]`` holds ``features`` (N, D), ``labels`` (N,), optional ``paths`` and
    augmented views: ``aug_features`` (N, V, D) (flat), or ``aug_features`` (M, D) with
    ``aug_offsets`` (N + 1,) (ragged). Written as format version 2 whatever the input.
    Features are stored as given (normalise first if ``attrs['normalized']``).
    ``checksums=False`` writes a cache as lt_bench did before checksums and fingerprints
    (contiguous, no ``checksums``/``fingerprint`` attributes): for tests of older caches.
    """
    path = Path(path)
    with atomic_path(path) as tmp, h5py.File(tmp, "w", **({"libver": LIBVER} if checksums else {})) as f:
        write_header(f, attrs, classnames, train_counts, templates, text_features, checksums)
        for name, s in splits.items():
            n = len(s["labels"])
            g = f.create_group(name)
            _create(g, "features", np.asarray(s["features"], dtype=np.float16), checksums)
            if s.get("aug_features") is not None:
                rows, offsets = ragged_views(s["aug_features"], s.get("aug_offsets"))
                _create(g, "aug_features", np.asarray(rows, dtype=np.float16), checksums)
                _create(g, "aug_offsets", offsets, checksums)
            _create(g, "labels", np.asarray(s["labels"], dtype=np.int64), checksums)
            paths = s.get("paths")
            if paths is None:
                paths = [f"{name}/{i}" for i in range(n)]
            _create(g, "paths", np.array(paths, dtype=object), checksums, dtype=STR)
            g.attrs["n_done"] = n
            g.attrs["complete"] = True
        if checksums:
            seal(f)
    return path


def seal(f: h5py.File) -> None:
    """Mark a complete checksummed cache: the ``checksums`` and ``fingerprint`` attributes."""
    f.attrs["checksums"] = CHECKSUMS
    f.attrs["fingerprint"] = content_fingerprint(f)


ROW_DATASETS = ("features", "aug_features", "aug_offsets", "labels", "paths")


def _copy(src: h5py.Dataset, dst: h5py.Group, name: str, rows: int) -> None:
    """The first ``rows`` rows of ``src`` into a new checksummed ``dst[name]``, a few chunks at a time."""
    shape = (rows, *src.shape[1:])
    layout = checksummed_layout(shape, src.dtype)
    ds = dst.create_dataset(name, shape=shape, dtype=src.dtype, **layout)
    step = layout["chunks"][0] * COPY_CHUNKS if layout else max(rows, 1)
    for s in range(0, rows, step):
        ds[s:min(s + step, rows)] = src[s:min(s + step, rows)]


def publish_checksummed(part: str | Path, out: str | Path) -> None:
    """Copy the finished partial ``part`` into a checksummed cache at ``out`` (atomically, with
    what ``io.written_before`` registered for ``out``), then remove ``part``.

    Each split's row datasets are cut to ``n_done`` rows (``aug_offsets`` to ``n_done + 1``,
    ``aug_features`` to ``aug_offsets[n_done]``): the rows of images ``--skip-bad`` left out
    are not copied. A kill during the copy leaves ``part`` as it was: rerun, it is copied again.
    """
    part, out = Path(part), Path(out)
    with atomic_path(out) as tmp:
        with h5py.File(part, "r") as src, h5py.File(tmp, "w", libver=LIBVER) as dst:
            for k, v in src.attrs.items():
                dst.attrs[k] = v
            for group in ("classes", "text"):
                for name, ds in src[group].items():
                    _copy(ds, dst, f"{group}/{name}", ds.shape[0])
            for split in SPLITS:
                if split not in src:
                    continue
                g, h = src[split], dst.create_group(split)
                for k, v in g.attrs.items():
                    h.attrs[k] = v
                n = int(g.attrs["n_done"])
                rows = {"aug_offsets": n + 1, "aug_features": int(g["aug_offsets"][n]) if "aug_offsets" in g else 0}
                for name in ROW_DATASETS:
                    if name in g:
                        _copy(g[name], h, name, rows.get(name, n))
                if "skipped_paths" in g:
                    _copy(g["skipped_paths"], h, "skipped_paths", g["skipped_paths"].shape[0])
            seal(dst)
    part.unlink()


def ragged_views(aug, offsets=None) -> tuple[np.ndarray, np.ndarray]:
    """(rows (M, D), offsets (N + 1,) int64) of flat (N, V, D) views, or of ragged ones as given."""
    if offsets is not None:
        return aug, np.asarray(offsets, dtype=np.int64)
    aug = np.asarray(aug)
    n, v, d = aug.shape
    return aug.reshape(n * v, d), v * np.arange(n + 1, dtype=np.int64)
