"""The partial file of an extraction (``OUT.partial``): what it belongs to, how it is created,
resumed or extended, and how rows go into it. ``extract.py`` drives it; see its docstring for
why the file is written this way.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import torch

from ..data.base import LTDataset
from ..data.prompts import get_templates
from ..errors import CacheError
from ..io import atomic_path
from ..log import get_logger
from ..resources import check_disk
from .cache import FORMAT_VERSION, SPLITS, STR, FeatureCache, partial_path
from .options import ExtractOptions
from .text import encode_class_prompts
from .views import views_per_image
from .writing import ROW_DATASETS, root_attrs, write_header

log = get_logger(__name__)


# -- identity ------------------------------------------------------------------------------------

def identity(dataset: LTDataset, info, opts: ExtractOptions) -> dict:
    return {
        "dataset": dataset.name,
        "dataset_options": json.loads(json.dumps(dataset.options, sort_keys=True, default=str)),
        "model": info.model,
        # a checkpoint is identified by its hash, not the path it was given by
        "pretrained": "" if info.checkpoint_sha256 else info.pretrained,
        "checkpoint_sha256": info.checkpoint_sha256,
        # the same weights run with another activation are another function (open_clip #771)
        "quick_gelu": bool(info.arch.get("quick_gelu", False)),
        "templates": opts.templates,
        "views": int(opts.views),
        "view_budget": int(opts.view_budget),
        "seed": int(opts.seed),
        # fast and gpu give other pixels than the reference's PIL path (data/decode.py)
        "decode": opts.decode,
    }


def _fileidentity(attrs) -> dict | None:
    try:
        ident = json.loads(attrs["config"]).get("identity")
    except Exception:
        return None
    if isinstance(ident, dict):
        ident.setdefault("view_budget", 0)  # files from before view budgets had flat views only
        ident.setdefault("quick_gelu", False)  # files from before it was recorded were run with nn.GELU
        ident.setdefault("decode", "pil")  # files from before it was an option: PIL's pixels
    return ident


def differences(old: dict | None, new: dict) -> list[str]:
    if old is None:
        return ["settings unknown (not written by `ltbench extract`)"]
    return [f"{k}: {old.get(k)!r} there vs {new[k]!r} now" for k in new if old.get(k) != new[k]]


# -- writing one split -------------------------------------------------------------------------

class SplitWriter:
    """Rank 0's handle on ``/<split>`` of the partial file.

    Args:
        view_counts: (N,) augmented views of each image; all zeros (or None): no augmented views.
    """

    def __init__(self, f: h5py.File, name: str, n_total: int, dim: int, view_counts=None):
        self.f, self.name, self.n_total = f, name, n_total
        counts = np.zeros(n_total, np.int64) if view_counts is None else np.asarray(view_counts, np.int64)
        self.has_views = bool(counts.any())
        if name not in f:
            g = f.create_group(name)
            # contiguous (no chunks): rows go in place, and a resumed run writes where the killed
            # one stopped; allocated now (the file's end moves only here, never at a row's write,
            # so a write the disk refuses leaves the file's structure as it was), never filled
            # (a sparse file: the blocks are taken as rows are written)
            space = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
            space.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
            space.set_fill_time(h5py.h5d.FILL_TIME_NEVER)
            g.create_dataset("features", shape=(n_total, dim), dtype=np.float16, dcpl=space)
            if self.has_views:  # sized up front: every image's view count is known
                g.create_dataset("aug_features", shape=(int(counts.sum()), dim), dtype=np.float16, dcpl=space)
                g.create_dataset("aug_offsets", shape=(n_total + 1,), dtype=np.int64, dcpl=space)
                g["aug_offsets"][0] = 0
            g.create_dataset("labels", shape=(n_total,), dtype=np.int64, dcpl=space)
            refs = h5py.h5p.create(h5py.h5p.DATASET_CREATE)  # HDF5 fills a string dataset (heap references)
            refs.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
            g.create_dataset("paths", shape=(n_total,), dtype=STR, dcpl=refs)
            g.attrs["n_done"] = 0
            g.attrs["n_seen"] = 0
            g.attrs["complete"] = False
            f.flush()
        self.g = f[name]
        self._recover_compaction()
        # Handles and counters kept here, not looked up per batch: at 256 rows a batch the lookups
        # cost more than writing the rows (BENCHMARKS.md, writer vs raw h5py).
        self._ds = {k: self.g[k] for k in ROW_DATASETS if k in self.g}
        self._n_done = self.n_done
        self._a_done = int(self._ds["aug_offsets"][self._n_done]) if "aug_offsets" in self._ds else 0
        feats, aug = self.g["features"], self.g.get("aug_features")
        if feats.shape[1] != dim or (aug is not None) != self.has_views or (
                aug is not None and (aug.ndim != 2 or aug.shape[1] != dim or "aug_offsets" not in self.g)):
            raise CacheError(f"split {name!r} of {f.filename} has shape {feats.shape} "
                             f"(augmented views {aug.shape if aug is not None else 'none'}), "
                             f"expected D={dim}, {'ragged ' if self.has_views else 'no '}augmented views: "
                             "pass --overwrite to start again")

    @property
    def n_done(self) -> int:
        return int(self.g.attrs.get("n_done", 0))

    @property
    def n_seen(self) -> int:
        return int(self.g.attrs.get("n_seen", self.g.attrs.get("n_done", 0)))

    @property
    def complete(self) -> bool:
        return bool(self.g.attrs.get("complete", False))

    def append(self, feats: np.ndarray, aug: np.ndarray | None, aug_counts: np.ndarray, labels: np.ndarray,
               paths: list[str], skipped: list[str], n_seen: int) -> None:
        """Write rows at ``n_done`` (augmented rows at ``aug_offsets[n_done]``, ``aug_counts`` per
        row), flush, then advance ``n_done``/``n_seen`` (and flush again)."""
        ds = self._ds
        n0 = self._n_done
        n1 = n0 + len(labels)
        a1 = self._a_done
        if n1 > n0:
            ds["features"][n0:n1] = feats
            if self.has_views:
                a0 = self._a_done
                if len(aug):
                    ds["aug_features"][a0:a0 + len(aug)] = aug
                ends = a0 + np.cumsum(aug_counts)
                ds["aug_offsets"][n0 + 1:n1 + 1] = ends
                a1 = int(ends[-1])
            ds["labels"][n0:n1] = labels
            ds["paths"][n0:n1] = np.array(paths, dtype=object)
        if skipped:
            if "skipped_paths" not in self.g:
                self.g.create_dataset("skipped_paths", shape=(0,), maxshape=(None,), dtype=STR, chunks=(1024,))
            ds = self.g["skipped_paths"]
            k = ds.shape[0]
            ds.resize((k + len(skipped),))
            ds[k:] = np.array(skipped, dtype=object)
        self.f.flush()  # rows on disk before the counters say so
        self.g.attrs.modify("n_done", n1)  # in place: ``attrs[k] = v`` deletes and recreates
        self.g.attrs.modify("n_seen", n_seen)
        self.f.flush()
        self._n_done, self._a_done = n1, a1

    def _recover_compaction(self) -> None:
        # Partials of lt_bench before checksummed caches were compacted in place by finish(): a
        # kill during it may have left NAME.tmp beside or instead of NAME.
        for name in ROW_DATASETS:
            tmp = name + ".tmp"
            if tmp in self.g and name not in self.g:
                self.g.move(tmp, name)
            elif tmp in self.g:
                del self.g[tmp]

    def finish(self) -> None:
        """Mark the split complete. Its row datasets keep their full size: rows of images
        ``--skip-bad`` left out are dropped by the copy into OUT (``publish_checksummed``).
        The train split sets ``/classes/train_counts`` to what it holds (the shot groups come
        from it: an image left out is not a training image)."""
        if self.name == "train":
            counts = self.f["classes/train_counts"]
            labels = self.g["labels"][:self.n_done]
            counts[...] = np.bincount(labels, minlength=counts.shape[0])[:counts.shape[0]].astype(np.int64)
        self.f.flush()  # the counts on disk before the split says it is complete
        self.g.attrs["complete"] = True
        self.f.flush()


# -- the disk it takes -------------------------------------------------------------------------

ROW_BYTES = 128  # per image beside its features: label, offset, its path in HDF5's heap (a generous mean)
HEADER_BYTES = 1 << 20


def split_bytes(n: int, views: int, dim: int) -> int:
    """Bytes of a split of ``n`` images and ``views`` augmented rows of ``dim`` float16 features."""
    return (n + views) * dim * 2 + n * ROW_BYTES


def disk_needed(splits: list[str], dataset: LTDataset, opts: ExtractOptions, dim: int, progress: dict[str, int],
                existing: int = 0) -> int:
    """Disk an extraction of ``splits`` still needs: the rows still to write into ``OUT.partial``
    (``progress``: images already processed per split), plus the checksummed copy of the whole
    cache that replaces it at the end (``existing``: bytes of the complete splits carried over
    from OUT, which the partial holds a copy of too)."""
    left = total = HEADER_BYTES + existing
    for s in splits:
        split = dataset.split(s)
        n = len(split)
        views = views_per_image(split.labels, dataset.num_classes, views=opts.views,
                                view_budget=opts.view_budget) if s == "train" else np.zeros(0, np.int64)
        size = split_bytes(n, int(views.sum()), dim)
        total += size
        left += size * (n - min(progress.get(s, 0), n)) // max(n, 1)
    return int(left + total)


# -- the plan (rank 0) ---------------------------------------------------------------------------

def _open_existing_output(out: Path, ident: dict, opts: ExtractOptions) -> tuple[str, list[str]]:
    """Decide what to do with an existing OUT: "fresh", "extend" (missing splits) or "done"."""
    try:
        with FeatureCache(out) as c:
            diffs = differences(_fileidentity(c._h5.attrs), ident)
            have = [s for s in c.splits if c.is_complete(s)]
            version = c.format_version
    except CacheError as e:
        if opts.overwrite:
            return "fresh", []
        raise CacheError(f"{e}; pass --overwrite to replace {out}") from None
    if diffs:
        if opts.overwrite:
            return "fresh", []
        raise CacheError(f"{out} exists and belongs to another extraction ({'; '.join(diffs)}): "
                         "choose another --out, or pass --overwrite to replace it")
    if opts.overwrite:
        return "fresh", []
    missing = [s for s in opts.splits if s not in have]
    if missing and version != FORMAT_VERSION:
        raise CacheError(f"{out} is a cache of format version {version}, which this lt_bench reads but does not "
                         f"extend (it writes version {FORMAT_VERSION}): choose another --out, or pass --overwrite "
                         f"to re-extract it with splits {', '.join(opts.splits)}")
    return ("extend", have) if missing else ("done", have)


def _create_fresh(part: Path, dataset: LTDataset, bundle, opts: ExtractOptions, attrs: dict,
                  device: torch.device) -> None:
    templates = get_templates(opts.templates)
    text = encode_class_prompts(bundle, dataset.classnames, templates, device)
    # the header appears whole or not at all: a partial always says what it belongs to
    with atomic_path(part) as tmp, h5py.File(tmp, "w") as f:
        write_header(f, attrs, dataset.classnames, dataset.train_counts, templates, text)


def prepare(out: Path, dataset: LTDataset, bundle, opts: ExtractOptions, config: dict,
             device: torch.device) -> dict:
    """Rank 0: check OUT and OUT.partial, create or reuse the partial; return the plan."""
    part = partial_path(out)
    ident = config["identity"]
    info = bundle.info
    attrs = root_attrs(model=info.model, pretrained=info.pretrained, checkpoint_sha256=info.checkpoint_sha256,
                       dataset=dataset.name, num_classes=dataset.num_classes, embed_dim=info.embed_dim,
                       config=config, device=device)
    action, have = ("fresh", [])
    if out.exists():
        action, have = _open_existing_output(out, ident, opts)
        if action == "done":  # a leftover partial (another run's) does not matter then
            return {"status": "up-to-date", "have": have}
    resume = False
    if part.exists() and not opts.overwrite:
        try:
            with h5py.File(part, "r") as f:
                diffs = differences(_fileidentity(f.attrs), ident)
                if f.attrs.get("format_version") != attrs["format_version"]:
                    diffs.insert(0, f"format_version: {f.attrs.get('format_version')!r} there")
        except OSError as e:
            if isinstance(e, BlockingIOError) or "unable to lock file" in str(e):  # in use, not damaged
                raise CacheError(f"{part} is open in another process (HDF5's file lock): wait for it to end; "
                                 "it is not damaged") from None
            log.warning("partial file %s is unreadable (%s), probably killed mid-write: starting it again",
                        part, str(e).splitlines()[0][:120])
            diffs = None
        if diffs:
            raise CacheError(f"an unfinished extraction with other settings is at {part} ({'; '.join(diffs)}): "
                             "rerun it with its original options to finish it, or pass --overwrite to start again")
        resume = diffs is not None
    progress = {}
    if resume:
        with h5py.File(part, "r") as f:
            progress = {s: int(f[s].attrs.get("n_seen", f[s].attrs.get("n_done", 0))) for s in SPLITS if s in f}
    existing = 2 * out.stat().st_size if action == "extend" else 0  # copied into the partial, then into OUT
    needed = disk_needed([s for s in opts.splits if s not in have], dataset, opts, info.embed_dim, progress,
                         existing)
    check_disk(needed, out, f"extracting {', '.join(opts.splits)} into {out} (the partial file, then its "
                            "checksummed copy)")
    if resume:
        log.info("resuming %s", part)
        if have:  # complete splits of OUT that the partial lacks must survive the final move
            with h5py.File(part, "a") as f, h5py.File(out, "r") as src:
                for s in have:
                    if s not in f:
                        src.copy(src[s], f, name=s)
    elif action == "extend":
        log.info("%s is complete for %s: extracting the missing splits", out, ", ".join(have))
        shutil.copyfile(out, part)
    else:
        _create_fresh(part, dataset, bundle, opts, attrs, device)
    with h5py.File(part, "r") as f:
        present = [s for s in ("train", "val", "test") if s in f]
        done = {s: (int(f[s].attrs.get("n_seen", f[s].attrs.get("n_done", 0))), bool(f[s].attrs.get("complete")))
                for s in present}
    # finish every split the partial holds, plus the requested ones, in the canonical order
    todo = [s for s in ("train", "val", "test") if s in opts.splits or (s in done and not done[s][1])]
    return {"status": "run", "todo": todo, "disk_needed": needed,
            "start": {s: done.get(s, (0, False))[0] for s in todo},
            "complete": {s: done.get(s, (0, False))[1] for s in todo}}
