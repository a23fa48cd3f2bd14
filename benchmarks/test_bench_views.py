"""Augmented views by budget (``--view-budget 64``) against flat views (``--views 4``).

``test_bench_view_budget_cost``: how many augmented views extraction computes under each, on
class-count profiles (no images, no model): ImageNet-LT's (115,846 images, 1000 classes,
1280..5; a synthetic profile with the real size, extremes and many / medium / few class counts,
385 / 479 / 136, ``shared.long_tail_profile``: its split file is not at hand), Places-LT's
(62,500 images, 365 classes, 4980..5, 131 / 163 / 71, synthetic the same way; on the real
counts of classifier-balancing's Places_LT_train.txt the ratio is 2.32 against 2.30 here),
CIFAR-100-LT IF 100 (Cao et al.'s profile, exact) and the demo's Fashion-MNIST-LT (exact).
Extraction's work is one forward pass per center view plus one per augmented view, so
``forward_ratio`` = (N + budget views) / (N + 4 N) is its cost relative to ``--views 4``.

``test_bench_view_budget_extract``: both extractions measured with the tiny ViT on a
long-tailed synthetic image set, to check that the time follows the view count.

``test_bench_view_budget_demo`` (full mode only, needs Debian's Fashion-MNIST): the demo
(``ltbench demo``: Phase A, then the cache with ``--view-budget 64``), the same Phase A
checkpoint extracted with flat ``--views 4`` as well, and BALLAD's head (Phase B defaults,
select best-val) trained on each cache with seeds 0..4 and scored on the 10,000 test images:
mean ± sd over the seeds of overall / many / medium / few top-1.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from lt_bench.data import load_dataset, long_tail_counts
from lt_bench.features.views import budget_per_class, expected_draws, total_views

from .conftest import QUICK
from .shared import long_tail_profile

COST_TABLE = "View budget: extraction cost of --view-budget 64 vs flat --views 4"
TIME_TABLE = "View budget: extraction time, --view-budget 64 vs flat --views 4 (ltb-tiny-vit)"
DEMO_TABLE = "View budget: BALLAD on the demo (Fashion-MNIST-LT), flat --views 4 vs --view-budget 64"
BUDGET, FLAT = 64, 4
SEEDS = (0, 1, 2, 3, 4)

PROFILES = {
    "ImageNet-LT (synthetic profile)": lambda: long_tail_profile(1280, 5, (385, 479, 136), 115_846),
    "Places-LT (synthetic profile)": lambda: long_tail_profile(4980, 5, (131, 163, 71), 62_500),
    "CIFAR-100-LT IF 100": lambda: np.array(long_tail_counts(500, 100, 100)),
    "Fashion-MNIST-LT (demo)": lambda: np.array(long_tail_counts(1000, 10, 100)),
}


@pytest.mark.parametrize("name", list(PROFILES))
def test_bench_view_budget_cost(benchmark, name):
    counts = PROFILES[name]()
    n = int(counts.sum())
    budget = benchmark(lambda: total_views(counts, view_budget=BUDGET))
    flat = total_views(counts, views=FLAT)
    per = budget_per_class(counts, BUDGET)
    benchmark.extra_info.update(
        table=COST_TABLE,
        row=f"{name}: {n:,} images, {len(counts)} classes, {counts.max()}..{counts.min()} per class",
        budget_views=budget, flat_views=flat, views_ratio=round(budget / flat, 3),
        forward_ratio=round((n + budget) / (n + flat), 3),
        tail_draws_per_image=round(float(expected_draws(counts)[-1]), 1),
        views_per_image=f"{per.max()}..{per.min()}", classes_at_cap=int((per == BUDGET).sum()),
        tail_share=round(float((per * counts)[counts < 20].sum()) / budget, 3),
        ratio_by_budget=", ".join(f"{m}: {total_views(counts, view_budget=m) / flat:.2f}" for m in (8, 16, 32, 128)),
        note=f"views: augmented views extraction computes (budget: min({BUDGET}, ceil(expected Phase B draws per "
             f"image)), 10 epochs x batch 512, class-aware sampler; flat: {FLAT} per image); forward_ratio = "
             f"(N + budget views) / (N + {FLAT} N), the forward passes over train; tail_share: the budget's views "
             "that go to few-shot (< 20 images) classes; ratio_by_budget: views_ratio for other M. "
             "Synthetic profiles: the real size, extremes and many / medium / few class counts "
             "(benchmarks/shared.py, long_tail_profile); on Places-LT's real counts (Places_LT_train.txt) "
             "views_ratio is 2.32")


def test_bench_view_budget_extract(benchmark, tmp_path):
    from lt_bench.features.extract import ExtractOptions, extract_features
    from lt_bench.models import create_model

    torch.manual_seed(0)
    bundle = create_model("ltb-tiny-vit", "none")
    per = 200 if QUICK else 1000
    ds = load_dataset("synthetic", max_per_class=per, imbalance=per / 5, val_per_class=0, test_per_class=0)
    counts = np.asarray(ds.train_counts)
    seconds = {}
    for label, kw in (("flat", {"views": FLAT}), ("budget", {"view_budget": BUDGET})):
        opts = ExtractOptions(splits=("train",), batch_size=256, workers=2, overwrite=True, progress=False, **kw)
        out = tmp_path / f"{label}.h5"
        if label == "budget":
            benchmark.pedantic(lambda: extract_features(out, ds, bundle, opts), rounds=1, iterations=1)
            seconds[label] = benchmark.stats.stats.min
        else:
            t0 = time.perf_counter()
            extract_features(out, ds, bundle, opts)
            seconds[label] = time.perf_counter() - t0
    budget, flat = total_views(counts, view_budget=BUDGET), total_views(counts, views=FLAT)
    n = int(counts.sum())
    benchmark.extra_info.update(
        table=TIME_TABLE,
        row=f"synthetic {n:,} images, 10 classes, {counts.max()}..{counts.min()}, batch 256, 2 workers"
            + (" (quick)" if QUICK else ""),
        flat_s=round(seconds["flat"], 2), budget_s=round(seconds["budget"], 2),
        time_ratio=round(seconds["budget"] / seconds["flat"], 3), forward_ratio=round((n + budget) / (n + flat), 3),
        note="time_ratio = budget extraction time / flat extraction time, same run; forward_ratio as above")


def _mean_sd(values) -> str:
    vals = [float(v) for v in values]
    return f"{statistics.mean(vals):.1f} ± {statistics.stdev(vals):.1f}"


@pytest.fixture(scope="module")
def demo_caches(tmp_path_factory):
    """The demo (its Phase A and its --view-budget 64 cache), then both caches from its checkpoint."""
    from lt_bench.data.fashion_mnist import DEFAULT_DIR
    from lt_bench.pipeline import DemoConfig, ExtractConfig, run_demo, run_extract

    if QUICK:
        pytest.skip("minutes: full mode only")
    if not (Path(DEFAULT_DIR) / "train-images-idx3-ubyte.gz").exists():
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    tmp = tmp_path_factory.mktemp("demo")
    cfg = DemoConfig(out=str(tmp / "demo"))  # the defaults: view_budget 64
    demo = run_demo(cfg)
    data = {"dataset": "fashion_mnist_lt", "root": None,
            "dataset_options": {"max_per_class": cfg.max_per_class, "imbalance": cfg.imbalance}}
    caches = {}
    for label, kw in (("flat", {"views": FLAT}), ("budget", {"view_budget": BUDGET})):
        path = tmp / f"{label}.h5"
        t0 = time.perf_counter()
        run_extract(ExtractConfig(**data, model=cfg.model, pretrained=str(Path(cfg.out) / "finetune" / "best.pt"),
                                  out=str(path), splits=("train", "val", "test"), seed=cfg.seed, workers=cfg.workers,
                                  device="cpu", **kw))
        caches[label] = (path, time.perf_counter() - t0)
    return cfg, demo.seconds, caches, tmp


@pytest.mark.parametrize("label", ["flat", "budget"])
def test_bench_view_budget_demo(benchmark, demo_caches, label):
    from lt_bench.features import FeatureCache
    from lt_bench.pipeline import AdaptConfig, EvalConfig, run_adapt, run_eval

    cfg, demo_s, caches, tmp = demo_caches
    path, extract_s = caches[label]
    metrics = {g: [] for g in ("overall", "many", "medium", "few")}

    def seeds():
        with FeatureCache(path) as cache:
            for seed in SEEDS:
                head = tmp / f"{label}_{seed}.pt"
                run_adapt(AdaptConfig(features=str(path), head="ballad", out=str(head), seed=seed, device="cpu"),
                          cache=cache)  # BALLAD's Phase B defaults (10 epochs)
                rec = run_eval(EvalConfig(features=str(path), head=str(head), device="cpu"), cache=cache)
                for g in metrics:
                    metrics[g].append(rec["metrics"][g])

    benchmark.pedantic(seeds, rounds=1, iterations=1)
    with FeatureCache(path) as cache:
        views = int(cache.view_counts("train").sum())
    name = f"--views {FLAT}" if label == "flat" else f"--view-budget {BUDGET}"
    benchmark.extra_info.update(
        table=DEMO_TABLE, row=f"{name} ({views:,} train views)", extract_s=round(extract_s, 1),
        **{g: _mean_sd(v) for g, v in metrics.items()},
        few_by_seed=" ".join(f"{v:.1f}" for v in metrics["few"]),
        note=f"BALLAD head (Phase B defaults: class-aware sampler, reference schedule, best-val) trained with seeds "
             f"{SEEDS[0]}..{SEEDS[-1]} on each cache; mean ± sd over the seeds of test top-1 (%, 10,000 images). "
             f"One Phase A run (the demo's, seed 0), both caches from its checkpoint; extract_s: one extraction "
             f"(train with its views, val, test); median_s: the five Phase B runs and evaluations. The demo itself "
             f"(Phase A, the budget cache, the leaderboard) took {demo_s:.0f} s.")
