"""Feature extraction: images -> the HDF5 cache (format v2), resumable, atomic, shardable.

``extract_features(out, dataset, bundle, ExtractOptions(...))`` runs the backbone once over
the requested splits and writes what ``FeatureCache`` reads.

How the file is written (and why):

- Everything goes into ``OUT.partial`` (``cache.partial_path``); only when every requested
  split is complete is it copied into a checksummed cache that ``os.replace`` moves onto
  ``OUT`` (``writing.publish_checksummed``), so a failed or killed run never damages an
  existing good output.
- Before any of it, the disk the run still needs (rows left plus the final copy) is compared
  with the free space of OUT's file system, and one batch's images with the available memory
  (``lt_bench.resources``): ``--views 1000000000`` is refused at once. A disk that fills up
  anyway (``ENOSPC``) stops the run with one line; the partial holds every round up to its
  last ``n_done`` and the same command resumes it once there is space.
- Each train image's augmented views are known before the first batch (``views.py``:
  ``--views K`` flat, or ``--view-budget M`` by expected Phase B draws, from the split's labels).
- Per split, ``features`` (N, D) float16, ``labels`` and ``paths``, and for train with views
  ``aug_features`` (sum of the view counts, D) float16 and ``aug_offsets`` (N + 1,) int64
  are created in the partial at their full size as *contiguous* datasets (allocated at once,
  written in place: ``partial.SplitWriter``) and filled in order, one round of batches at a
  time: a round's augmented rows go to ``aug_offsets[n_done]`` onwards and the offsets of its
  images after them. After each round the rows are flushed (``f.flush()``) and only then the
  split's attributes advance: ``n_done`` (rows written) and ``n_seen`` (images processed,
  written or skipped). ``aug_offsets[n_done]`` is where the next augmented row goes, so a
  rerun of the same command resumes at image ``n_seen`` / row ``n_done`` / augmented row
  ``aug_offsets[n_done]``.
- ``--skip-bad``: a missing or undecodable image gets no row (and no augmented rows); its id is
  appended to ``/<split>/skipped_paths`` (resizable, optional). When the split completes with K
  skipped images, ``/classes/train_counts`` is set to the rows written (the shot groups come
  from what is cached), then ``complete=True``; the copy into OUT takes the first N - K rows
  (``aug_offsets`` N - K + 1, ``aug_features`` up to its last offset).
- Identity: the root ``config`` attribute (JSON) carries the resolved options and an
  ``identity`` block (dataset + options, model, weights, templates, views, view budget, seed).
  A partial or an existing output with another identity is refused with the differences named,
  unless ``overwrite``. An existing complete output with the same identity is extended with the
  missing splits (copied to the partial first), or reported up to date; a version 1 output is
  reported up to date when complete but not extended (that would mix formats).
- Determinism: batches are planned from the split's resume point (``views.plan_batches``:
  contiguous, at most ``batch_size`` images and ``4 x batch_size`` augmented views, greedy, so
  a resume continues the same plan), the center view is deterministic, and augmented view v of
  image i is drawn from RNGs seeded by ``(seed, i, v)`` inside ``__getitem__``; so DataLoader
  workers, resume and sharding do not change the file's arrays. The batch size is not part of
  the identity: resuming with another one continues correctly, but its rows may differ in the
  last bits from an uninterrupted run.
- Under torchrun each round holds ``world_size`` batches, batch r computed by rank r; rank 0
  gathers them (``all_gather``; every rank pads to the round's largest batch, known to all from
  the plan) and writes. Bad images are seen by every rank in the gathered metadata, so every
  rank stops with the same error.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import h5py
import numpy as np
import torch
import torch.nn.functional as F

from .. import distributed as dist_
from ..data.base import LTDataset, Split
from ..data.decode import resolve_decode
from ..device import amp_policy
from ..errors import CacheError, LTBenchError
from ..log import get_logger
from ..resources import check_memory, disk_full_error, is_disk_full
from .cache import partial_path
from .items import Items, finish_batch, image_path, loader, raise_bad_image
from .options import SPLIT_NAMES, ExtractOptions
from .partial import SplitWriter, identity, prepare
from .views import plan_batches, views_per_image
from .writing import publish_checksummed

log = get_logger(__name__)


@dataclass
class ExtractResult:
    path: Path
    status: str  # "written" | "up-to-date"
    rows: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    images: int = 0  # images processed by this run
    seconds: float = 0.0

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0


# -- the main loop -------------------------------------------------------------------------------

def _encode_images(model, x: torch.Tensor, device: torch.device, batch: int) -> torch.Tensor:
    """L2-normalised float16 image features on CPU, computed ``batch`` rows at a time (``x``:
    the normalised input, already on ``device``)."""
    out = []
    amp = amp_policy(device)
    for s in range(0, len(x), batch):
        xb = x[s:s + batch]
        if device.type == "cuda":
            xb = xb.contiguous(memory_format=torch.channels_last)
        with amp.autocast():
            f = model.encode_image(xb)
        out.append(F.normalize(f.float(), dim=-1).half().cpu())
    return torch.cat(out) if out else torch.empty(0)


@torch.inference_mode()
def _run_split(name: str, split: Split, bundle, opts: ExtractOptions, start: int, writer: SplitWriter | None,
               ctx: dist_.DistContext, progress, dim: int, counts: np.ndarray) -> int:
    """Extract images ``start..N`` of one split (``counts``: each image's augmented views);
    returns how many images this run processed."""
    n = len(split)
    b, w, r = opts.batch_size, ctx.world_size, ctx.rank
    batches = plan_batches(counts, start, b)  # [(s, e), ...]; round j is batches[j*w : (j+1)*w]
    cum = np.concatenate([[0], np.cumsum(counts)])
    rounds = math.ceil(len(batches) / w)
    mine = [list(range(s, e)) for s, e in batches[r::w]]
    path = image_path(bundle, opts.decode, ctx.device)
    items = Items(split, path, counts, opts.seed)
    it = iter(loader(items, mine, opts.workers, ctx.device)) if mine else iter(())
    task = progress.add_task(f"{name}", total=n, completed=start) if progress is not None else None
    processed = 0
    for j in range(rounds):
        here = batches[j * w:(j + 1) * w]
        a_max = max(int(cum[e] - cum[s]) for s, e in here)  # the round's most augmented views in a batch
        packed = torch.zeros(b + a_max, dim, dtype=torch.float16)  # rows :b center views, b: augmented
        meta = torch.zeros(b, 2, dtype=torch.int64)  # (image index, ok)
        if j < len(mine):
            x, xs, idx, ok = finish_batch(path, next(it), ctx.device)
            k, a = len(idx), len(xs)
            packed[:k] = _encode_images(bundle.model, x, ctx.device, b)
            if a:
                packed[b:b + a] = _encode_images(bundle.model, xs, ctx.device, b)
            meta[:k, 0] = idx
            meta[:k, 1] = ok
        # float16 travels as bytes: bit-exact, and gloo has no 16-bit integer type
        parts = dist_.all_gather_tensor(packed.view(torch.uint8))
        metas = dist_.all_gather_tensor(meta)
        blocks = [p.view(torch.float16).numpy() for p in parts]
        meta_all = np.concatenate([m[:e - s].numpy() for m, (s, e) in zip(metas, here)])
        centers = np.concatenate([blk[:e - s] for blk, (s, e) in zip(blocks, here)])
        aug_all = np.concatenate([blk[b:b + cum[e] - cum[s]] for blk, (s, e) in zip(blocks, here)])
        bad = meta_all[meta_all[:, 1] == 0, 0]
        if len(bad) and not opts.skip_bad:
            raise_bad_image(split, name, int(bad[0]))  # every rank raises the same error
        good = meta_all[:, 1] == 1
        rows = meta_all[good, 0]
        covered = here[-1][1]
        processed += len(meta_all)
        if writer is not None:
            aug = None
            if writer.has_views:
                aug = aug_all[np.repeat(good, counts[meta_all[:, 0]])]
            writer.append(centers[good], aug, counts[rows], split.labels[rows], [split.ids[i] for i in rows],
                          [split.ids[i] for i in bad], covered)
        if task is not None:
            progress.update(task, completed=covered)
    if writer is not None:
        writer.finish()
    if path.fallbacks:
        log.info("decode: %d %s images are not JPEGs nvJPEG takes (PNG, CMYK...): decoded on the CPU",
                 path.fallbacks, name)
    return processed


def extract_features(out: str | Path, dataset: LTDataset, bundle, opts: ExtractOptions | None = None, *,
                     config: dict | None = None, ctx: dist_.DistContext | None = None) -> ExtractResult:
    """Extract ``opts.splits`` of ``dataset`` with ``bundle``'s model into the cache ``out``.

    Args:
        out: the ``.h5`` file to write (via ``out.partial``; see the module docstring).
        dataset: the dataset (``load_dataset(...)`` or any ``LTDataset``).
        bundle: ``create_model(...)``'s result, already on ``ctx.device``.
        opts: what and how to extract.
        config: the resolved options to record in the cache's ``config`` attribute
            (an ``identity`` block is added).
        ctx: the distributed context (``distributed.init_distributed``); single-process CPU when
            omitted. Under torchrun every rank calls this with the same arguments.

    Returns:
        What was written (rows and skipped images per split), or ``status="up-to-date"``.
    """
    opts = opts or ExtractOptions()
    ctx = ctx or dist_.DistContext(device=next(bundle.model.parameters()).device)
    out = Path(out)
    # checks every rank makes alike, before anything is touched
    opts.validate()
    unknown = [s for s in opts.splits if s not in SPLIT_NAMES]
    if unknown or not opts.splits:
        raise LTBenchError(f"--splits takes train, val and/or test, comma-separated; got {','.join(opts.splits)!r}")
    for s in opts.splits:
        if len(dataset.split(s)) == 0:  # an empty split file: a cache of it would train or score nothing
            raise LTBenchError(f"split {s!r} of dataset {dataset.name} has no images (is its split file empty?): "
                               f"nothing to extract; list its images, or leave {s} out of --splits")
    opts = replace(opts, decode=resolve_decode(opts.decode, ctx.device))  # auto / gpu without CUDA resolved
    config = dict(config or {k: v for k, v in asdict(opts).items() if k not in ("overwrite", "progress")})
    config.pop("overwrite", None)
    config["identity"] = identity(dataset, bundle.info, opts)
    if ctx.device.type == "cuda":
        bundle.model.to(memory_format=torch.channels_last)

    check_batch_memory(dataset, bundle.info.image_size, opts)
    plan, err = None, None
    if ctx.is_main:
        try:
            plan = prepare(out, dataset, bundle, opts, config, ctx.device)
        except LTBenchError as e:
            err = e
    plan = dist_.broadcast_object(plan if err is None else {"status": "error", "message": str(err)})
    if err is not None:
        raise err
    if plan["status"] == "error":
        raise CacheError(plan["message"])
    if plan["status"] == "up-to-date":
        if ctx.is_main:
            log.info("%s is up to date (splits %s): nothing to do; --overwrite re-extracts it",
                     out, ", ".join(plan["have"]))
        return ExtractResult(path=out, status="up-to-date")
    for s in plan["todo"]:  # splits carried over from a partial must exist too
        dataset.split(s)

    threads = torch.get_num_threads()
    if ctx.device.type == "cpu" and opts.workers > 0:
        # Leave the loader processes their cores: OpenMP threads spinning beside busy workers
        # made CPU extraction 5x slower on a 2-core machine.
        torch.set_num_threads(max(1, min(threads, _cpu_count() - opts.workers)))
    try:
        return _extract(out, dataset, bundle, opts, config, ctx, plan)
    finally:
        torch.set_num_threads(threads)


def check_batch_memory(dataset: LTDataset, image_size: int, opts: ExtractOptions) -> None:
    """Refuse batches whose image tensors alone exceed the available memory: a batch holds up
    to ``batch_size`` center views and ``4 x batch_size`` augmented ones, or one image's views
    when it has more (``views.plan_batches``), each 3 x size x size float32, twice (loaded and
    on the device)."""
    most = 0
    if "train" in opts.splits and (opts.views or opts.view_budget):
        split = dataset.split("train")
        counts = views_per_image(split.labels, dataset.num_classes, views=opts.views, view_budget=opts.view_budget)
        most = int(counts.max()) if len(counts) else 0
    views = max(4 * opts.batch_size, most) if most else 0
    check_memory(2 * (opts.batch_size + views) * 3 * image_size * image_size * 4,
                 f"a batch of {opts.batch_size} images" + (f" and up to {views} augmented views" if views else ""),
                 "lower --views / --view-budget or --batch-size")


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _extract(out: Path, dataset: LTDataset, bundle, opts: ExtractOptions, config: dict,
             ctx: dist_.DistContext, plan: dict) -> ExtractResult:
    part = partial_path(out)
    t0 = time.perf_counter()
    images = 0
    f = h5py.File(part, "a") if ctx.is_main else None
    progress = _progress() if (ctx.is_main and opts.progress) else None
    try:
        if progress is not None:
            progress.start()
        for s in plan["todo"]:
            if plan["complete"][s]:  # every rank decides from the same plan, so none waits alone
                continue
            split = dataset.split(s)
            counts = (views_per_image(split.labels, dataset.num_classes, views=opts.views,
                                      view_budget=opts.view_budget) if s == "train" else np.zeros(len(split), np.int64))
            writer = None
            if f is not None:
                writer = SplitWriter(f, s, len(split), bundle.info.embed_dim, counts)
            images += _run_split(s, split, bundle, opts, plan["start"][s], writer, ctx, progress,
                                 bundle.info.embed_dim, counts)
        result = ExtractResult(path=out, status="written", images=images)
        if f is not None:
            splits = [s for s in ("train", "val", "test") if s in f]
            stored = dict(config, splits=",".join(splits)) if "splits" in config else config
            f.attrs["config"] = json.dumps(stored, sort_keys=True)
            for s in splits:
                result.rows[s] = int(f[s].attrs["n_done"])
                result.skipped[s] = int(f[s]["skipped_paths"].shape[0]) if "skipped_paths" in f[s] else 0
            f.close()
            f = None
            publish_checksummed(part, out)  # after what must be written first (the resolved config)
    except OSError as e:
        if not is_disk_full(e):
            raise
        raise disk_full_error(out, f"writing {part if f is not None else out}", plan.get("disk_needed"),
                              then="rerun the same command: it resumes where it stopped") from None
    finally:
        if progress is not None:
            progress.stop()
        if f is not None:
            try:
                f.close()
            except OSError:  # a full disk again: the rows up to n_done were flushed before
                pass
    dist_.barrier()
    result.seconds = time.perf_counter() - t0
    if ctx.is_main:
        skipped = sum(result.skipped.values())
        log.info("extracted %d images in %.1f s (%.1f images/s)%s -> %s", result.images, result.seconds,
                 result.images_per_s, f", {skipped} unreadable skipped" if skipped else "", out)
    return result


def _progress():
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn)

    from ..log import stderr_console

    return Progress(TextColumn("extract {task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeRemainingColumn(), console=stderr_console, transient=False)
