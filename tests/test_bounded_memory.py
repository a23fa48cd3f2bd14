"""The cache commands at iNaturalist scale keep features in their stored dtype and work in
chunks (issue 13); these check that the chunked / float16 paths give the same results as the
whole-array float32 ones they replace. Memory itself is measured in benchmarks/test_bench_scale.py."""

import numpy as np
import torch

from lt_bench.features import FeatureCache
from lt_bench.features.synthetic import make_synthetic_cache
from lt_bench.heads import resolve_config, train_head
from lt_bench.heads.baselines import KNN, NCM
from lt_bench.heads.train import train_on_arrays
from lt_bench.metrics.ece import ece, max_softmax, softmax


def test_max_softmax_chunked_equals_whole_softmax():
    rng = np.random.default_rng(0)
    logits = (30 * rng.standard_normal((1000, 37))).astype(np.float32)
    assert np.array_equal(max_softmax(logits, rows=64), softmax(logits).max(axis=1))
    labels = rng.integers(0, 37, 1000)
    p = softmax(logits)
    from lt_bench.metrics.ece import ece_from_confidence
    assert ece(logits, labels) == ece_from_confidence(p.max(axis=1), p.argmax(axis=1) == labels)


def test_baselines_fit_float16_in_chunks_as_float32(monkeypatch):
    rng = np.random.default_rng(1)
    x16 = rng.standard_normal((3000, 16)).astype(np.float16)
    y = rng.integers(0, 5, 3000)
    q = rng.standard_normal((50, 16)).astype(np.float32)
    text = np.eye(5, 16, dtype=np.float32)
    import lt_bench.heads.baselines as b
    whole = {cls: cls(text, device="cpu").fit(x16.astype(np.float32), y).logits(q) for cls in (NCM, KNN)}
    real = b._normalized_chunks
    monkeypatch.setattr(b, "_normalized_chunks", lambda f, d, w, rows=65536: real(f, d, w, rows=700))
    for cls in (NCM, KNN):
        np.testing.assert_allclose(cls(text, device="cpu").fit(x16, y).logits(q), whole[cls], rtol=1e-5, atol=1e-4)


def test_train_head_keeps_center_features_float16_same_result(tmp_path):
    path = make_synthetic_cache(tmp_path / "c.h5", num_classes=6, dim=16, max_per_class=60, test_per_class=2)
    cfg = resolve_config("linear", epochs=2, batch_size=32, seed=0, views=False)
    with FeatureCache(path) as cache:
        assert cache.stored_features("train").dtype == np.float16
        a = train_head(cache, cfg, device="cpu")
        b = train_on_arrays(cache.features("train"), cache.labels("train"), cache.train_counts,
                            cache.text_classifier, cfg, device="cpu")
    for (k, va), vb in zip(a.head.state_dict().items(), b.head.state_dict().values()):
        assert torch.equal(va, vb), k


def test_knn_votes_by_row_chunks():
    from lt_bench.heads.baselines import knn_votes

    rng = np.random.default_rng(2)
    sims = rng.random((50, 7)).astype(np.float32)
    labels = rng.integers(0, 9, (50, 7))
    whole = knn_votes(sims, labels, 9, rows=1000)
    assert np.array_equal(knn_votes(sims, labels, 9, rows=3), whole)
    expect = np.zeros((50, 9))
    for i in range(50):
        np.add.at(expect[i], labels[i], sims[i].astype(np.float64))
    np.testing.assert_allclose(whole, expect.astype(np.float32), rtol=1e-6)
