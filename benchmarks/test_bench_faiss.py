"""NCM and kNN baselines: FAISS IndexFlatIP against a plain torch matmul + topk, same predictions.

Full size: ImageNet-LT shapes, 115,846 train and 50,000 test features of 1024 dims, 1000
classes (synthetic); kNN with k = 20. Quick mode: 8,000 train, 2,000 test, 256 dims, 100 classes.
The torch reference batches its queries (2,048 at a time: a 2,048 x 115,846 float32 similarity
block is 0.95 GB) and FAISS gets its queries in batches of 8,192 (the KNN baseline's default),
so the full size stays within a few GB. Both search exhaustively: the time is the
50,000 x 115,846 x 1024 inner products (11.9 TFLOP), a few minutes on 2 cores for each.
"""

from __future__ import annotations

import time

import pytest

from lt_bench.features import FeatureCache
from lt_bench.features.synthetic import make_synthetic_cache
from lt_bench.heads import KNN, NCM

from .conftest import QUICK
from .shared import counts_summing_to, torch_knn, torch_ncm

N, Q, D, C = (8_000, 2_000, 256, 100) if QUICK else (115_846, 50_000, 1024, 1000)
K = 20
TABLE = "Baselines: FAISS vs torch matmul + topk"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    p = make_synthetic_cache(tmp_path_factory.mktemp("bench") / "f.h5", num_classes=C, dim=D,
                             train_counts=counts_summing_to(N, C), test_per_class=Q // C, noise=2.0, text_noise=1.5)
    with FeatureCache(p) as c:
        return c.text_classifier, c.features("train"), c.labels("train"), c.features("test")


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


@pytest.mark.parametrize("method", ["ncm", "knn"])
def test_bench_faiss_vs_torch(benchmark, data, method):
    text, xtr, ytr, xte = data
    if method == "ncm":
        faiss_fn = lambda: NCM(text, device="cpu").fit(xtr, ytr).logits(xte).argmax(1)  # noqa: E731
        torch_fn = lambda: torch_ncm(xtr, ytr, xte, C)  # noqa: E731
    else:
        faiss_fn = lambda: KNN(text, k=K, device="cpu").fit(xtr, ytr).logits(xte).argmax(1)  # noqa: E731
        torch_fn = lambda: torch_knn(xtr, ytr, xte, K, C, batch=2048)  # noqa: E731
    out = {}

    def run():
        out["faiss"], out["faiss_s"] = _timed(faiss_fn)

    benchmark.pedantic(run, rounds=1, iterations=1)
    ref, torch_s = _timed(torch_fn)
    mismatches = int((out["faiss"] != ref).sum())
    benchmark.extra_info.update(
        table=TABLE, row=f"{method}: {N:,} train x {Q:,} queries x {D}" + (f", k={K}" if method == "knn" else "")
        + (" (quick)" if QUICK else ""),
        faiss_s=round(out["faiss_s"], 2), torch_s=round(torch_s, 2), ratio=round(torch_s / out["faiss_s"], 3),
        mismatches=mismatches,
        note="ratio = torch time / FAISS time (> 1: FAISS faster); both exhaustive, float32, CPU, queries batched.")
    assert mismatches == 0
