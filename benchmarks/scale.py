"""The cache commands at iNaturalist 2018's size (issue 13): the shapes, a streaming builder that
writes the cache through extraction's own writer, and a child-process runner that measures one
command's peak memory.

    python -m benchmarks.scale build PATH --shape inat [--raw-rows R]   # JSON stats to stdout
    python -m benchmarks.scale run adapt PATH --head ballad --out HEAD.pt [--epochs E] [--no-views]
    python -m benchmarks.scale run eval PATH (--head HEAD.pt | --baseline knn)
    python -m benchmarks.scale run open PATH

Each command runs in a fresh process so that its peak RSS (``ru_maxrss``) is its own: ``base``
is the resident memory once lt_bench, torch and faiss are imported, ``peak`` the process's
maximum, ``growth = peak - base`` what the command itself added. Stored bytes are the float16
arrays the command works on, so ``growth / stored`` is the memory ratio (1 = exactly the
stored bytes; a whole float32 copy of them would add 2).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from .shared import counts_summing_to, long_tail_profile


@dataclass(frozen=True)
class Shape:
    """A long-tailed cache shape: train counts per class, width, augmented views, test per class."""

    name: str
    counts: tuple[int, ...]
    dim: int
    views: int
    test_per_class: int

    @property
    def n(self) -> int:
        return int(sum(self.counts))

    @property
    def classes(self) -> int:
        return len(self.counts)

    def stored_bytes(self, views: bool = True) -> int:
        """float16 bytes of what adapt trains on: the augmented views, or the center views."""
        return self.n * (self.views if views else 1) * self.dim * 2


def _profile(most, fewest, groups, total) -> tuple[int, ...]:
    return tuple(int(c) for c in long_tail_profile(most, fewest, groups, total))


# iNaturalist 2018: 437,513 train images, 8,142 classes, 1000..2 per class, and the shot-group
# class counts of its split files (842 many, 4,076 medium, 3,224 few); ViT-L/14's 768 dims;
# 4 augmented views; the official val set as test, 3 per class (24,426).
SHAPES = {
    "inat": Shape("iNaturalist 2018", _profile(1000, 2, (842, 4076, 3224), 437_513), 768, 4, 3),
    # the same profile at 1/16 of the classes and images, for CI's quick mode
    "inat-16": Shape("iNaturalist 2018 / 16", _profile(1000, 2, (53, 255, 202), 27_344), 768, 4, 3),
    # the memory ratio's pair: many narrow rows and few classes, so that the stored bytes differ by
    # hundreds of MB (RSS noise is ~10 MB) while a training epoch stays seconds
    "ratio-100k": Shape("100,000 x 128", tuple(int(c) for c in counts_summing_to(100_000, 50)), 128, 4, 0),
    "ratio-400k": Shape("400,000 x 128", tuple(int(c) for c in counts_summing_to(400_000, 50)), 128, 4, 0),
    # ImageNet-LT: 115,846 x 1024, 1280..5 per class (385 / 479 / 136 classes), 4 augmented views
    "imagenet_lt": Shape("ImageNet-LT", _profile(1280, 5, (385, 479, 136), 115_846), 1024, 4, 0),
}


def _normalize(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def rss() -> int:
    """Resident bytes of this process now."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def peak_rss() -> int:
    """The largest resident bytes this process has had (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def read_bytes() -> int:
    """Bytes this process has read through read() calls so far (``rchar``), page cache included."""
    with open("/proc/self/io") as f:
        return int(next(line for line in f if line.startswith("rchar")).split()[1])


def build(path: Path, shape: Shape, seed: int = 0, batch: int = 256, raw_rows: int = 0) -> dict:
    """Write a synthetic cache of ``shape`` batch by batch through ``SplitWriter`` (what
    ``ltbench extract`` writes with), never holding a split. Features are class means plus
    noise (as ``features.synthetic``), generated per batch; only the writer's calls are timed.

    With ``raw_rows``, the same first ``raw_rows`` rows' bytes (center and augmented features,
    offsets, labels, paths) are also written with plain h5py into contiguous datasets of a
    scratch file, batch by batch with one flush each, timed the same way: the raw rate the
    writer is compared with.
    """
    from lt_bench.features.cache import partial_path
    from lt_bench.features.partial import SplitWriter
    from lt_bench.features.writing import root_attrs, write_header

    rng = np.random.default_rng(seed)
    c, d, v = shape.classes, shape.dim, shape.views
    means = _normalize(rng.standard_normal((c, d), dtype=np.float32))
    text = _normalize(means + np.float32(1.5 / np.sqrt(d)) * rng.standard_normal((c, d), dtype=np.float32))
    attrs = root_attrs(model="synthetic-features", pretrained="none", checkpoint_sha256="", dataset=shape.name,
                       num_classes=c, embed_dim=d, config={"synthetic": True, "benchmark": "scale", "seed": seed},
                       device="cpu")
    part = partial_path(path)
    base = rss()
    write_s = raw_s = writer_raw_part_s = 0.0
    raw = h5py.File(path.with_suffix(".raw.h5"), "w") if raw_rows else None
    with h5py.File(part, "w") as f:
        write_header(f, attrs, [f"species {i:04d}" for i in range(c)], np.array(shape.counts), ["a photo of a {}."],
                     text[None])
        splits = {"train": (np.repeat(np.arange(c), shape.counts), v)}
        if shape.test_per_class:
            splits["test"] = (np.repeat(np.arange(c), shape.test_per_class), 0)
        for name, (labels, views) in splits.items():
            rng.shuffle(labels)
            n = len(labels)
            w = SplitWriter(f, name, n, d, view_counts=np.full(n, views))
            if raw is not None and name == "train":
                rf = raw.create_dataset("features", shape=(raw_rows, d), dtype=np.float16)
                ra = raw.create_dataset("aug_features", shape=(raw_rows * views, d), dtype=np.float16)
                rl = raw.create_dataset("labels", shape=(raw_rows,), dtype=np.int64)
                ro = raw.create_dataset("aug_offsets", shape=(raw_rows + 1,), dtype=np.int64)
                rp = raw.create_dataset("paths", shape=(raw_rows,), dtype=h5py.string_dtype("utf-8"))
            for s in range(0, n, batch):
                lab = labels[s:s + batch]
                center = _normalize(means[lab] + np.float32(2.0 / np.sqrt(d))
                                    * rng.standard_normal((len(lab), d), dtype=np.float32))
                aug = np.repeat(center, views, axis=0)
                aug = _normalize(aug + np.float32(0.3 / np.sqrt(d)) * rng.standard_normal(aug.shape, dtype=np.float32))
                x16, a16 = center.astype(np.float16), aug.astype(np.float16)
                paths = [f"{name}/{s + i:07d}.jpg" for i in range(len(lab))]

                def write():
                    t0 = time.perf_counter()
                    w.append(x16, a16, np.full(len(lab), views), lab, paths, [], s + len(lab))
                    return time.perf_counter() - t0

                def write_raw():
                    e = min(raw_rows, s + len(lab))
                    t0 = time.perf_counter()
                    rf[s:e] = x16[:e - s]
                    ra[s * views:e * views] = a16[:(e - s) * views]
                    rl[s:e] = lab[:e - s]
                    ro[s + 1:e + 1] = views * np.arange(s + 1, e + 1)
                    rp[s:e] = np.array(paths[:e - s], dtype=object)
                    raw.flush()
                    return time.perf_counter() - t0

                if raw is not None and name == "train" and s < raw_rows:
                    # alternate which goes first: the second finds the batch in the CPU's caches
                    if (s // batch) % 2:
                        dt, raw_dt = write(), write_raw()
                    else:
                        raw_dt, dt = write_raw(), write()
                    raw_s += raw_dt
                    writer_raw_part_s += dt
                else:
                    dt = write()
                write_s += dt
            w.finish()
    if raw is not None:
        raw.close()
        path.with_suffix(".raw.h5").unlink()
    part.replace(path)
    out = {"rows": shape.n, "write_s": write_s, "rows_per_s": shape.n / write_s, "bytes": path.stat().st_size,
           "growth": peak_rss() - base}
    if raw_rows:
        out.update(raw_rows=raw_rows, raw_rows_per_s=raw_rows / raw_s,
                   writer_rows_per_s_same_rows=raw_rows / writer_raw_part_s)
    return out


def _run(args) -> dict:
    """One command in this (fresh) process; returns its time and memory."""
    import lt_bench.heads  # noqa: F401  (torch and faiss: imported before ``base``)
    from lt_bench.features import FeatureCache
    from lt_bench.pipeline.configs import AdaptConfig, EvalConfig
    from lt_bench.pipeline.steps import run_adapt, run_eval

    import faiss  # noqa: F401

    out: dict = {}
    if args.what == "adapt" and args.head == "ballad":
        from .shared import matmul_gflops

        with FeatureCache(args.cache) as c:
            dim, classes = c.embed_dim, c.num_classes
        out["matmul_gflops"] = matmul_gflops(512, dim, classes, seconds=2.0)
    base, rchar = rss(), read_bytes()
    t0 = time.perf_counter()
    if args.what == "open":
        with FeatureCache(args.cache) as c:
            out["open_s"] = time.perf_counter() - t0
            c.labels("train")
            out["open_read_bytes"] = read_bytes() - rchar
            out["file_bytes"] = Path(args.cache).stat().st_size
    elif args.what == "adapt":
        recipe = {"epochs": args.epochs, "views": not args.no_views}
        res = run_adapt(AdaptConfig(features=args.cache, head=args.head, out=args.out, recipe=recipe, device="cpu"))
        out.update(train_s=res.seconds, final_loss=res.final_loss)
    else:
        rec = run_eval(EvalConfig(features=args.cache, head=args.head, baseline=args.baseline, device="cpu"))
        out.update(overall=rec["metrics"]["overall"] if "metrics" in rec else rec.get("overall"))
    out.update(seconds=time.perf_counter() - t0, base=base, peak=peak_rss(), growth=peak_rss() - base)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("path", type=Path)
    b.add_argument("--shape", choices=sorted(SHAPES), required=True)
    b.add_argument("--raw-rows", type=int, default=0)
    r = sub.add_parser("run")
    r.add_argument("what", choices=("open", "adapt", "eval"))
    r.add_argument("cache")
    r.add_argument("--head")
    r.add_argument("--baseline")
    r.add_argument("--out")
    r.add_argument("--epochs", type=int, default=1)
    r.add_argument("--no-views", action="store_true")
    args = ap.parse_args(argv)
    out = build(args.path, SHAPES[args.shape], raw_rows=args.raw_rows) if args.cmd == "build" else _run(args)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
