"""Phase B speed: `adapt --head ballad` (the library function) on an ImageNet-LT-sized cache, and
every leaderboard method's fit (``heads.methods.fit_method``) on one with views and a val split.

Full size: 115,846 train features x 1024 dims, 1000 classes (synthetic, long-tailed 1280..5),
10 epochs of 226 steps of batch 512, the BALLAD recipe. Quick mode (LTBENCH_BENCH_QUICK=1):
8,000 x 256, 100 classes.

Figures (extra_info): ``gflops`` = matmul FLOPs of training / wall time, against
``matmul_gflops`` = this machine's float32 torch.mm rate on the same shapes, measured in the
same run (target: ``efficiency`` >= 0.5); ``peak_mem_gb`` = peak RSS of the process during
the call (sampled), against ``target_mem_gb`` = 2 x features' float32 size + 1 GB.
FLOPs per step: adapter forward 2BD^2, classifier forward 2BCD, classifier backward to the
adapted features 2BCD, adapter weight gradient 2BD^2 (the text classifier is fixed and the
cached features need no gradient): 4BD(D + C).

Methods (issue 12): the same size with 4 augmented views per image and a balanced val split
of 20 per class (ImageNet-LT's); quick mode 8,000 x 256, 100 classes, 5 val per class. Each
row is one ``fit_method(name, data, seed=0)`` with the method's defaults: ``train_s`` its
training (``Fitted.seconds``), ``posthoc_s`` the selection of its post-hoc values on val
(tau-norm's 21 taus, Tip-Adapter's 8 x 7 alphas x betas, the ensemble's 11 weights),
``x_linear`` its wall time over the linear probe's in the same run.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import psutil
import pytest
import torch

from lt_bench.features import FeatureCache
from lt_bench.features.synthetic import make_synthetic_cache
from lt_bench.heads import resolve_config, train_head
from lt_bench.heads.methods import fit_method, mean_class_accuracy, method_data

from .conftest import QUICK
from .shared import ballad_step_flops, counts_summing_to, matmul_gflops

N, D, C = (8_000, 256, 100) if QUICK else (115_846, 1024, 1000)
BATCH, EPOCHS = 512, 10
TABLE = "Phase B: adapt --head ballad on cached features"


@pytest.fixture(scope="module")
def cache_path(tmp_path_factory):
    return make_synthetic_cache(tmp_path_factory.mktemp("bench") / "inlt.h5", num_classes=C, dim=D,
                                train_counts=counts_summing_to(N, C), test_per_class=0, noise=2.0, text_noise=1.5)


class PeakRSS:
    """Peak resident memory of this process while the block runs (sampled every 10 ms)."""

    def __enter__(self):
        self.proc, self.peak, self._stop = psutil.Process(), 0, threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            self._stop.wait(0.01)

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)


def test_bench_adapt_ballad(benchmark, cache_path):
    ref = matmul_gflops(BATCH, D, C, seconds=2.0)
    cfg = resolve_config("ballad", epochs=EPOCHS, batch_size=BATCH, seed=0)
    out = {}

    def run():
        with FeatureCache(cache_path) as cache, PeakRSS() as mem:
            t0 = time.perf_counter()
            out["result"] = train_head(cache, cfg, device="cpu")
            out["seconds"] = time.perf_counter() - t0
        out["peak"] = mem.peak

    benchmark.pedantic(run, rounds=1, iterations=1)
    res = out["result"]
    steps = max(1, N // BATCH) * EPOCHS
    flops = steps * ballad_step_flops(BATCH, D, C)
    gflops = flops / out["seconds"] / 1e9
    peak_gb = out["peak"] / 1e9
    target_gb = 2 * N * D * 4 / 1e9 + 1
    benchmark.extra_info.update(
        table=TABLE, row=f"{N:,} x {D}, {C} classes, {EPOCHS} epochs, batch {BATCH}" + (" (quick)" if QUICK else ""),
        seconds=round(out["seconds"], 2), steps=steps, gflops=round(gflops, 1), matmul_gflops=round(ref, 1),
        efficiency=round(gflops / ref, 3), peak_mem_gb=round(peak_gb, 3), target_mem_gb=round(target_gb, 3),
        final_loss=round(res.final_loss, 4), torch_threads=torch.get_num_threads(),
        note="gflops: matmul FLOPs of forward + backward (4BD(D+C) per step) / wall time; matmul_gflops: torch.mm "
             "on the same shapes in the same run; targets: efficiency >= 0.5, peak RSS <= 2 x float32 features + 1 GB.")
    assert np.isfinite(res.final_loss)


METHOD_TABLE = "Methods: fit_method on an ImageNet-LT-sized cache (4 views, val 20 per class)"
METHOD_ROWS = ("linear", "crt", "lws", "tau_norm", "linear+zs", "ldam_drw", "ballad", "clip_adapter", "tip_adapter",
               "tip_adapter_f")
_WALL: dict[str, float] = {}


@pytest.fixture(scope="module")
def method_data_lt(tmp_path_factory):
    p = make_synthetic_cache(tmp_path_factory.mktemp("bench") / "inlt_views.h5", num_classes=C, dim=D,
                             train_counts=counts_summing_to(N, C), test_per_class=0, val_per_class=5 if QUICK else 20,
                             views=4, noise=2.0, text_noise=1.5)
    with FeatureCache(p) as cache:
        return method_data(cache)


@pytest.mark.parametrize("name", METHOD_ROWS)
def test_bench_method_fit(benchmark, method_data_lt, name):
    out = {}

    def run():
        t0 = time.perf_counter()
        out["fitted"] = fit_method(name, method_data_lt, seed=0, device="cpu")
        out["wall"] = time.perf_counter() - t0

    benchmark.pedantic(run, rounds=1, iterations=1)
    f = out["fitted"]
    _WALL[name] = out["wall"]
    val = method_data_lt.val
    benchmark.extra_info.update(
        table=METHOD_TABLE, row=name + (" (quick)" if QUICK else ""), wall_s=round(out["wall"], 2),
        train_s=round(f.seconds, 2), posthoc_s=round(f.extra.get("posthoc_seconds", 0.0), 2),
        x_linear=round(out["wall"] / _WALL["linear"], 2) if "linear" in _WALL else None,
        val_mean_class_acc=round(mean_class_accuracy(f.logits(val.features), val.labels), 2),
        posthoc=", ".join(f"{k}={v:g}" for k, v in f.posthoc.items()) or "-", torch_threads=torch.get_num_threads(),
        note="Each method's defaults, seed 0, CPU. train_s: training (Fitted.seconds); posthoc_s: selecting its "
             "post-hoc values on val by grid (tune can instead search them on one fit with Fitted.with_posthoc); "
             "x_linear: wall time over the linear probe's, same run. val accuracy on synthetic features says "
             "nothing about the methods' merit on real ones.")
    assert np.isfinite(f.logits(val.features[:8])).all()


def test_bench_tip_adapter_memory(benchmark):
    """Tip-Adapter's logits over a cache of N keys: the (queries, keys) affinities are formed one
    128 MB chunk at a time (``heads/tip.py``), so the extra memory is bounded by the chunk."""
    from lt_bench.heads.tip import AFFINITY_BYTES, TipAdapter

    q_n = 1000 if QUICK else 4000
    rng = np.random.default_rng(0)
    keys = rng.standard_normal((N, D), dtype=np.float32)
    keys /= np.linalg.norm(keys, axis=1, keepdims=True)
    text = rng.standard_normal((C, D), dtype=np.float32)
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    tip = TipAdapter(text).fit(keys, np.sort(rng.integers(0, C, N)))
    del keys
    queries = rng.standard_normal((q_n, D), dtype=np.float32)
    out = {}

    def run():
        base = psutil.Process().memory_info().rss
        with PeakRSS() as mem:
            t0 = time.perf_counter()
            out["logits"] = tip.logits(queries)
            out["seconds"] = time.perf_counter() - t0
        out["extra_gb"] = (mem.peak - base) / 1e9

    benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update(
        table="Tip-Adapter: chunked affinities", row=f"{q_n:,} queries x {N:,} keys x {D}" + (" (quick)" if QUICK else ""),
        seconds=round(out["seconds"], 2), extra_mem_gb=round(out["extra_gb"], 3),
        unchunked_gb=round(q_n * N * 4 / 1e9, 3), chunk_gb=round(AFFINITY_BYTES / 1e9, 3),
        note="extra_mem_gb: peak RSS during the call over the fitted model's; unchunked_gb: the (queries, keys) "
             "float32 affinity matrix the formula implies, never formed.")
    assert out["logits"].shape == (q_n, C)
