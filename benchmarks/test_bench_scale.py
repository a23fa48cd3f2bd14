"""Every cache command on an iNaturalist 2018-shaped cache (issue 13), each in its own process.

Full size: 437,513 train x 768, 8,142 classes (1000..2 per class, 842 / 4,076 / 3,224 many /
medium / few), 4 augmented views, 24,426 test: 3.4 GB of float16, written once under the temp
folder (``LTBENCH_SCALE_DIR`` to move it) through extraction's writer and deleted afterwards;
adapt also on the ImageNet-LT shape (115,846 x 1024, 4 views). Quick mode: the same profile at
1/16 of the images and classes, one adapt. Both modes measure the memory ratio as the slope of
adapt's peak-RSS growth against the stored bytes between a 100,000- and a 400,000-row cache
(fixed overheads, torch's own included, cancel out): 1 when the features stay float16, 3 when
a float32 copy of them is made as well.

Figures (extra_info): see each test's ``note``. Each command runs through the pipeline entry
point `ltbench` calls (``run_adapt``, ``run_eval``), on CPU, one epoch for adapt at full size.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from .conftest import QUICK
from .scale import SHAPES
from .shared import ballad_step_flops

ROOT = Path(__file__).resolve().parent.parent
WORK = Path(os.environ.get("LTBENCH_SCALE_DIR", tempfile.gettempdir())) / f"ltbench-scale-{os.getpid()}"
MAIN = "inat-16" if QUICK else "inat"
HEADS = ("ballad", "linear", "cosine")
GB = 1e9
TABLE_WRITE = "Scale: extract's writer vs raw h5py on an iNaturalist-shaped cache"
TABLE_OPEN = "Scale: opening an iNaturalist-shaped cache"
TABLE_ADAPT = "Scale: adapt on iNaturalist- and ImageNet-LT-shaped caches (peak RSS)"
TABLE_RATIO = "Scale: adapt memory ratio (peak-RSS growth per stored float16 byte)"
TABLE_EVAL = "Scale: eval of every head and baseline on an iNaturalist-shaped cache"


def child(*args: str) -> dict:
    """``python -m benchmarks.scale ARGS`` in a fresh process; its JSON line."""
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    r = subprocess.run([sys.executable, "-m", "benchmarks.scale", *args], cwd=ROOT, env=env, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def timed(benchmark, *args: str) -> dict:
    """``child(*args)`` as the benchmarked call (median_s: the command's process, imports included)."""
    out = {}
    benchmark.pedantic(lambda: out.update(child(*args)), rounds=1, iterations=1)
    return out


@pytest.fixture(scope="module")
def work():
    WORK.mkdir(parents=True, exist_ok=True)
    yield WORK
    shutil.rmtree(WORK, ignore_errors=True)  # 3.4 GB at full size: never left behind


_built: dict[str, tuple[Path, dict]] = {}


def cache(work: Path, shape: str, raw_rows: int = 0) -> tuple[Path, dict]:
    """The cache of ``shape``, built once per run (and its build figures)."""
    if shape not in _built:
        path = work / f"{shape}.h5"
        extra = ["--raw-rows", str(raw_rows)] if raw_rows else []
        _built[shape] = (path, child("build", str(path), "--shape", shape, *extra))
    return _built[shape]


def shape_label(key: str) -> str:
    s = SHAPES[key]
    return f"{s.name}: {s.n:,} x {s.dim}, {s.classes:,} classes, {s.views} views"


def test_bench_scale_extract_writer(benchmark, work):
    raw_rows = SHAPES[MAIN].n if QUICK else 65_536
    path, b = cache(work, MAIN, raw_rows=raw_rows)
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    benchmark.extra_info.update(
        table=TABLE_WRITE, row=shape_label(MAIN) + (" (quick)" if QUICK else ""),
        write_s=round(b["write_s"], 2), rows_per_s=round(b["rows_per_s"]), raw_rows=b["raw_rows"],
        writer_rows_per_s=round(b["writer_rows_per_s_same_rows"]), raw_rows_per_s=round(b["raw_rows_per_s"]),
        ratio=round(b["writer_rows_per_s_same_rows"] / b["raw_rows_per_s"], 3),
        file_gb=round(b["bytes"] / GB, 3), write_growth_gb=round(b["growth"] / GB, 3),
        note="Batches of 256 rows (extract's default) through SplitWriter.append (rows, views, offsets, labels, "
             "paths, then flush, n_done, flush) vs plain h5py writes of the same arrays into contiguous datasets "
             "with one flush, over the first raw_rows rows, alternating which goes first; only the writes are "
             "timed (generating the features is not). write_growth_gb: peak-RSS growth of the writing process, "
             "against file_gb (no split is held whole). Target: ratio >= 0.8.")


def test_bench_scale_open(benchmark, work):
    path, _ = cache(work, MAIN)
    o = timed(benchmark, "run", "open", str(path))
    benchmark.extra_info.update(
        table=TABLE_OPEN, row=shape_label(MAIN) + (" (quick)" if QUICK else ""),
        open_s=round(o["open_s"], 4), read_mb=round(o["open_read_bytes"] / 1e6, 2),
        file_gb=round(o["file_bytes"] / GB, 3),
        note="open_s: FeatureCache(path) (validation of the root, classes and text side); read_mb: bytes read "
             "(rchar) by the open plus the train labels, against the file's size. Target: open_s < 1.")


# quick: one head (its file feeds the eval rows); the memory ratio below is CI's memory check
ADAPT_ROWS = [(MAIN, "ballad", False)] if QUICK else (
    [(MAIN, h, False) for h in HEADS] + [(MAIN, "ballad", True), ("imagenet_lt", "ballad", False)])


@pytest.mark.parametrize("shape,head,center", ADAPT_ROWS,
                         ids=[f"{s}-{h}{'-center' if c else ''}" for s, h, c in ADAPT_ROWS])
def test_bench_scale_adapt(benchmark, work, shape, head, center):
    path, _ = cache(work, shape)
    s = SHAPES[shape]
    epochs = 2 if shape == "imagenet_lt" else 1
    args = ["run", "adapt", str(path), "--head", head, "--out", str(work / f"{shape}-{head}{center}.pt"),
            "--epochs", str(epochs)] + (["--no-views"] if center else [])
    r = timed(benchmark, *args)
    stored = s.stored_bytes(views=not center)
    slack = 0.6 if shape == "imagenet_lt" else 1.0
    info = dict(table=TABLE_ADAPT,
                row=f"{head}{' --no-views' if center else ''}, {shape_label(shape)}, {epochs} epoch(s)"
                    + (" (quick)" if QUICK else ""),
                train_s=round(r["train_s"], 1), stored_gb=round(stored / GB, 3), peak_gb=round(r["peak"] / GB, 3),
                growth_gb=round(r["growth"] / GB, 3), target_gb=round(stored / GB + slack, 3),
                within_target=r["growth"] <= stored + slack * GB)
    if head == "ballad":
        steps = max(1, s.n // 512) * epochs
        gflops = steps * ballad_step_flops(512, s.dim, s.classes) / r["train_s"] / 1e9
        info.update(gflops=round(gflops, 1), matmul_gflops=round(r["matmul_gflops"], 1),
                    efficiency=round(gflops / r["matmul_gflops"], 3))
    info["note"] = ("peak_gb: the adapt process's peak RSS; growth_gb: that minus its RSS before the command (Python, "
                    "torch and faiss imported: ~0.56 GB); stored_gb: the float16 bytes it trains on (the augmented views, "
                    "or with --no-views the center views); targets: growth <= stored + 1 GB (iNaturalist), + 0.6 GB "
                    "(ImageNet-LT: the imported libraries alone take most of 0.6 GB, so the target is on the growth), and "
                    "for ballad efficiency (matmul FLOPs 4BD(D+C) per step / train time, against torch.mm on the same "
                    "shapes in the same process) >= 0.8.")
    benchmark.extra_info.update(info)


@pytest.mark.parametrize("center", [False, True], ids=["views", "center"])
def test_bench_scale_memory_ratio(benchmark, work, center):
    """The slope of adapt's memory over stored bytes: CI's check (quick mode too)."""
    pair = ("ratio-100k", "ratio-400k")
    runs = {}
    for shape in pair:
        path, _ = cache(work, shape)
        runs[shape] = child("run", "adapt", str(path), "--head", "ballad", "--out", str(work / f"r-{shape}.pt"),
                            *(["--no-views"] if center else []))
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    small, big = (SHAPES[k].stored_bytes(views=not center) for k in pair)
    slope = (runs[pair[1]]["growth"] - runs[pair[0]]["growth"]) / (big - small)
    benchmark.extra_info.update(
        table=TABLE_RATIO, row=f"ballad{' --no-views' if center else ''}, 100,000 -> 400,000 x 128, 50 classes, "
                               f"{'center views' if center else '4 views'}",
        stored_mb=f"{small / 1e6:.0f} -> {big / 1e6:.0f}",
        growth_mb=f"{runs[pair[0]]['growth'] / 1e6:.0f} -> {runs[pair[1]]['growth'] / 1e6:.0f}",
        mem_ratio=round(slope, 3),
        note="mem_ratio: (growth at 400k - growth at 100k) / (stored at 400k - stored at 100k), growth = the adapt "
             "process's peak RSS minus its RSS before the command, one epoch. 1: the stored float16 bytes and nothing "
             "per byte beyond; a float32 copy of the train set would make it 3. Gated at <= 1.5, in quick mode too.")


EVAL_ROWS = [("head", h) for h in HEADS] + [("baseline", b) for b in ("zeroshot", "ncm", "knn")]


@pytest.mark.parametrize("kind,name", EVAL_ROWS, ids=[n for _, n in EVAL_ROWS])
def test_bench_scale_eval(benchmark, work, kind, name):
    path, _ = cache(work, MAIN)
    s = SHAPES[MAIN]
    if kind == "head":
        head = work / f"{MAIN}-{name}False.pt"
        if not head.exists():
            pytest.skip(f"no {name} head: run test_bench_scale_adapt first")
        r = timed(benchmark, "run", "eval", str(path), "--head", str(head))
    else:
        r = timed(benchmark, "run", "eval", str(path), "--baseline", name)
    test_n = s.classes * s.test_per_class
    benchmark.extra_info.update(
        table=TABLE_EVAL, row=f"{name} ({kind}), {test_n:,} test x {s.classes:,} classes"
                              + (f", {s.n:,} keys" if name in ("ncm", "knn") else "") + (" (quick)" if QUICK else ""),
        eval_s=round(r["seconds"], 2), peak_gb=round(r["peak"] / GB, 3), growth_gb=round(r["growth"] / GB, 3),
        logits_gb=round(test_n * s.classes * 4 / GB, 3), overall=r.get("overall"),
        note="eval_s: run_eval (fit for ncm / knn: exhaustive FAISS IndexFlatIP on CPU over every train feature, "
             "added from float16 in chunks; logits; metrics) in its own process; growth_gb: its peak RSS minus its RSS "
             "before; logits_gb: the (test x classes) float32 logits the metrics read, the one full-size array.")
