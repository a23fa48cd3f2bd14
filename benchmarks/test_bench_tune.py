"""Tuning speed: a trial's cost is the head's training, not setup; the default leaderboard's time.

1. Per-trial overhead: ``tune.select`` of BALLAD on a cache shaped like the demo's
   (Fashion-MNIST-LT: 10 classes 1000..10, 2,478 train images, view budget 64, 200 val, 64-d),
   the cache read once before the trials, one torch thread (as the demo). ``overhead_ratio`` =
   the share of the trials' wall time spent outside ``fit_method`` (issue 12: < 0.05);
   ``reread_ratio`` = what reading train + val from the cache would add to each trial had the
   cache been read per trial (it is not).
2. The default leaderboard (every registered method, ``--trials`` 8 on the grid, 3 seeds) on an
   ImageNet-LT-sized cache (115,846 x 1024, 1000 classes, 4 views, 20 val and 50 test images per
   class; quick mode: 8,000 x 256, 100 classes): one row per method with the wall time of one
   fit + val and test scoring at the defaults (``unit_s``) and the fits a default leaderboard
   makes of it (``fits`` = trials + seeds; 1 trial for a method without hyperparameters); the
   total row sums ``unit_s x fits``: an extrapolation, labelled so. The units run in the
   leaderboard's order on one ``MethodData``, as the leaderboard does: a method whose training
   family ran before it (``tau_norm``, ``<m>+zs``) finds its heads trained, and its unit is what
   it costs there (post-hoc selection and scoring). Quick mode also runs the
   real leaderboard and reports it beside its extrapolation (``measured_s``, ``ratio``).
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from lt_bench.data import long_tail_counts
from lt_bench.features import FeatureCache
from lt_bench.features.synthetic import make_synthetic_cache
from lt_bench.heads.methods import METHODS, fit_method, get_method
from lt_bench.pipeline.configs import LeaderboardConfig
from lt_bench.pipeline.tuning import torch_threads
from lt_bench.tune import leaderboard, read_method_data, select, tuning_data
from lt_bench.tune.board import run_order
from lt_bench.tune.study import searched
from lt_bench.tune.space import grid_size

from .conftest import QUICK
from .shared import counts_summing_to

TRIALS = 6 if QUICK else 12
N, D, C = (4_000, 128, 50) if QUICK else (115_846, 1024, 1000)
_DEFAULTS = {f.name: f.default for f in LeaderboardConfig.__dataclass_fields__.values()}
BUDGET = (2, 1) if QUICK else (_DEFAULTS["trials"], _DEFAULTS["seeds"])  # (trials, seeds) per method
BOARD = "Tuning: the leaderboard (all methods; full: the defaults --trials 8 --seeds 3; quick: 2 trials, 1 seed)"
THREADS = 1 if QUICK else 0  # quick: one thread (small heads, a shared 2-core CI machine); full: torch default
UNITS: dict[str, float] = {}  # method -> unit_s x fits, for the extrapolated total


@pytest.fixture(scope="module")
def demo_like(tmp_path_factory):
    return make_synthetic_cache(tmp_path_factory.mktemp("tune") / "demo_like.h5", num_classes=10, dim=64,
                                train_counts=long_tail_counts(1000, 10, 100), val_per_class=20, test_per_class=100,
                                view_budget=64, noise=1.5, text_noise=1.0)


def test_bench_trial_overhead(benchmark, demo_like, tmp_path):
    method = get_method("ballad")
    out = {}

    def run():
        with FeatureCache(demo_like) as cache:
            t0 = time.perf_counter()
            data, _ = tuning_data(read_method_data(cache))
            out["read"] = time.perf_counter() - t0
        folder = tmp_path / f"t{len(out)}"
        folder.mkdir()
        with torch_threads(1):  # as the demo's leaderboard runs
            select(data, method, method.space, folder, trials=1, sampler="grid")  # warm-up: torch's lazy imports
            t0 = time.perf_counter()
            out["sel"] = select(data, method, method.space, folder, trials=TRIALS + 1, sampler="grid")
            out["select"] = time.perf_counter() - t0

    benchmark.pedantic(run, rounds=1, iterations=1)
    sel = out["sel"]
    walls, fits, trains = (np.array(x) for x in (sel.trial_seconds, sel.fit_seconds, sel.train_seconds))
    benchmark.extra_info.update(
        table="Tuning: per-trial overhead (BALLAD on a demo-shaped cache, cache read once, 1 torch thread)",
        row=f"{TRIALS} BALLAD trials, 2,478 train images + 19k views, 10 classes, 64-d" + (" (quick)" if QUICK else ""),
        trial_s=round(float(walls.mean()), 4), fit_s=round(float(fits.mean()), 4),
        overhead_ratio=round(float((walls - fits).sum() / walls.sum()), 4), select_s=round(out["select"], 3),
        fit_setup_ratio=round(float((fits - trains).sum() / walls.sum()), 4), read_s=round(out["read"], 3),
        reread_ratio=round(out["read"] / float(walls.mean()), 3),
        note="overhead_ratio: the share of the trials' time outside fit_method (sampling, val scoring, Optuna's "
             "bookkeeping; each trial's SQLite write runs in a background thread; target < 0.05); fit_setup_ratio: "
             "fit_method's own setup outside its training loop; reread_ratio: what reading train + val from the "
             "cache would add to each trial (it is read once); select_s: the whole search, study opening included.")
    assert len(walls) == TRIALS


@pytest.fixture(scope="module")
def inlt(tmp_path_factory):
    return make_synthetic_cache(tmp_path_factory.mktemp("tune") / "inlt.h5", num_classes=C, dim=D,
                                train_counts=counts_summing_to(N, C), val_per_class=20, test_per_class=50, views=4,
                                noise=2.0, text_noise=1.5)


def _fits(name: str) -> int:
    """Trials + seeds, as ``tune.select`` counts trials: over the searched space (post-hoc
    parameters are selected inside each trial's fit), at most its grid's size."""
    space = searched(METHODS[name], METHODS[name].space)
    trials = min(BUDGET[0], grid_size(space)) if space else 1
    return trials + BUDGET[1]


@pytest.fixture(scope="module")
def inlt_data(inlt):
    """train + val read once and shared by the units, as a leaderboard shares them."""
    with FeatureCache(inlt) as cache:
        return read_method_data(cache), cache.features("test")


@pytest.mark.parametrize("name", run_order(list(METHODS)))
def test_bench_method_unit(benchmark, inlt_data, name):
    """One fit at the defaults + val and test scoring: what each trial and each final seed costs."""
    out = {}
    data, xt = inlt_data

    def run():
        with torch_threads(THREADS):
            t0 = time.perf_counter()
            fitted = fit_method(name, data, {}, seed=0)
            fitted.logits(data.val.features)
            fitted.logits(xt)
            out["unit"], out["fit"] = time.perf_counter() - t0, fitted.seconds

    benchmark.pedantic(run, rounds=1, iterations=1)
    UNITS[name] = out["unit"] * _fits(name)
    benchmark.extra_info.update(
        table=BOARD, row=f"{name} ({N:,} x {D}, {C} classes)" + (" (quick)" if QUICK else ""),
        unit_s=round(out["unit"], 2), train_s=round(out["fit"], 2), fits=_fits(name),
        total_s=round(out["unit"] * _fits(name), 1), torch_threads=THREADS or torch.get_num_threads(),
        note="unit_s: one fit at the defaults + scoring val and test (a trial scores val only, a final seed test "
             "only), in the leaderboard's order on one MethodData (a "
             "method after its training family, tau_norm and <m>+zs, reuses the family's trained heads as the "
             "leaderboard does, though their final seeds 1 and 2 retrain when they select another recipe than the "
             "family's base did; train_s is still the training's cost); fits: trials (the grid's size when smaller; "
             "1 without hyperparameters) + seeds; total_s = unit_s x fits, an extrapolation of the leaderboard "
             "from the units (the sum over methods is the whole default leaderboard's estimate).")


def test_bench_leaderboard(benchmark, inlt, tmp_path):
    """The sum of the units (extrapolated); in quick mode also the real leaderboard, measured."""
    if len(UNITS) < len(METHODS):
        pytest.skip("needs every method's unit (run the whole file)")
    total = sum(UNITS.values())
    out = {}

    def run():
        with FeatureCache(inlt) as cache, torch_threads(THREADS):
            t0 = time.perf_counter()
            out["board"] = leaderboard(cache, tmp_path / f"lb{len(out)}", trials=BUDGET[0], seeds=BUDGET[1])
            out["s"] = time.perf_counter() - t0

    if QUICK:  # full size: hours on 2 cores; the units' sum is the estimate
        benchmark.pedantic(run, rounds=1, iterations=1)
    else:
        benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    row = f"whole leaderboard ({len(METHODS)} methods, {N:,} x {D}, {C} classes)" + (" (quick)" if QUICK else "")
    info = dict(table=BOARD, row=row, extrapolated_s=round(total, 1), extrapolated_min=round(total / 60, 1))
    if QUICK:
        info.update(measured_s=round(out["s"], 1), ratio=round(out["s"] / total, 3))
    benchmark.extra_info.update(info)
