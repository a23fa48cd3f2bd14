"""Heads: registry, BALLAD's formula, samplers, losses, FAISS baselines vs numpy, HEAD.pt round trip."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from _env_helpers import assert_environment
from lt_bench.errors import CacheError, LTBenchError
from lt_bench.features import FeatureCache
from lt_bench.features.synthetic import make_synthetic_cache
from lt_bench.heads import (KNN, NCM, BalladHead, create_head, list_heads, load_head, make_loss, register_head,
                            resolve_config, sample_indices, save_head, train_head)
from lt_bench.metrics import log_prior


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _open_cache(tmp_path_factory, **kw):
    """A 12-class long-tailed synthetic cache (60..5 per class), open for the module."""
    p = make_synthetic_cache(tmp_path_factory.mktemp("c") / "f.h5", num_classes=12, dim=24, max_per_class=60,
                             imbalance=12, test_per_class=10, noise=2.0, text_noise=1.5, **kw)
    with FeatureCache(p) as c:
        yield c


@pytest.fixture(scope="module")
def val_cache(tmp_path_factory):
    yield from _open_cache(tmp_path_factory, val_per_class=5, seed=4)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    yield from _open_cache(tmp_path_factory, views=2, seed=3)


def test_registry():
    assert {"ballad", "linear", "cosine"} <= set(list_heads("trained"))
    assert {"zeroshot", "ncm", "knn"} <= set(list_heads("baseline"))
    with pytest.raises(ValueError, match="already registered"):
        register_head("ballad")(lambda **kw: None)
    with pytest.raises(LTBenchError, match="known: ballad, clip_adapter, cosine, crt, linear"):
        resolve_config("nope")
    with pytest.raises(LTBenchError, match="unknown baseline 'ballad'"):
        from lt_bench.heads import get_head_spec
        get_head_spec("ballad", kind="baseline")


def test_ballad_forward_matches_formula():
    torch.manual_seed(0)
    c, d, a = 5, 8, 0.2
    t = F.normalize(torch.randn(c, d), dim=-1)
    head = BalladHead(c, d, t, alpha=a, scale=100.0)
    x = F.normalize(torch.randn(6, d), dim=-1)
    w = head.adapter.weight.detach().numpy().astype(np.float64)
    xn, tn = x.numpy().astype(np.float64), t.numpy().astype(np.float64)
    z = a * xn @ w.T + (1 - a) * xn  # a W f + (1 - a) f, row form
    g = z / np.linalg.norm(z, axis=1, keepdims=True)
    with torch.no_grad():
        out = head(x).numpy()
    np.testing.assert_allclose(out, 100.0 * g @ tn.T, rtol=1e-5, atol=1e-4)


def test_samplers_class_frequencies():
    counts = np.array([400, 100, 25, 4])
    labels = np.repeat(np.arange(4), counts)
    g = torch.Generator().manual_seed(0)
    n = 200_000
    freq = lambda idx: np.bincount(labels[idx.numpy()], minlength=4) / n  # noqa: E731
    np.testing.assert_allclose(freq(sample_indices("instance", labels, n, g)), counts / counts.sum(), atol=0.01)
    ca = sample_indices("class_aware", labels, n, g, k_per_class=4)
    np.testing.assert_allclose(freq(ca), np.full(4, 0.25), atol=0.01)
    # k consecutive draws share a class; classes of successive visits are a permutation per round
    vis = labels[ca.numpy()].reshape(-1, 4)
    assert (vis == vis[:, :1]).all()
    assert sorted(vis[:4, 0].tolist()) == [0, 1, 2, 3]
    car = sample_indices("class_aware_replace", labels, n, g, k_per_class=4)
    np.testing.assert_allclose(freq(car), np.full(4, 0.25), atol=0.01)
    vis = labels[car.numpy()].reshape(-1, 4)
    assert (vis == vis[:, :1]).all() and sorted(vis[:4, 0].tolist()) == [0, 1, 2, 3]
    # with replacement: a 4-image class visited once per round shows repeats within 4 draws, cycles never do
    tail = car.numpy()[labels[car.numpy()] == 3][:4000].reshape(-1, 4)
    assert any(len(set(r)) < 4 for r in tail.tolist())
    tail = ca.numpy()[labels[ca.numpy()] == 3][:4000].reshape(-1, 4)
    assert all(len(set(r)) == 4 for r in tail.tolist())
    sq = np.sqrt(counts)
    np.testing.assert_allclose(freq(sample_indices("sqrt", labels, n, g)), sq / sq.sum(), atol=0.01)
    with pytest.raises(LTBenchError, match="known: class_aware, class_aware_replace, instance, sqrt"):
        sample_indices("nope", labels, 10, g)


def test_losses():
    torch.manual_seed(0)
    logits, y = torch.randn(7, 3), torch.tensor([0, 1, 2, 0, 1, 2, 0])
    counts = [50, 10, 2]
    lp = torch.tensor(log_prior(counts), dtype=torch.float32)
    assert torch.allclose(make_loss("ce", counts)(logits, y), F.cross_entropy(logits, y))
    assert torch.allclose(make_loss("logit_adjusted", counts, tau=0.5)(logits, y), F.cross_entropy(logits + 0.5 * lp, y))
    assert torch.allclose(make_loss("balanced_softmax", counts)(logits, y),
                          make_loss("logit_adjusted", counts, tau=1.0)(logits, y))
    with pytest.raises(LTBenchError, match="known: balanced_softmax, ce, ldam, logit_adjusted"):
        make_loss("focal", counts)


def test_ncm_matches_numpy(cache):
    xtr, ytr, xte = cache.features("train"), cache.labels("train"), cache.features("test")
    ncm = NCM(cache.text_classifier, device="cpu").fit(xtr, ytr)
    xn = xtr / np.linalg.norm(xtr, axis=1, keepdims=True)
    means = np.stack([xn[ytr == c].mean(0) for c in range(cache.num_classes)]).astype(np.float64)
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    qn = xte / np.linalg.norm(xte, axis=1, keepdims=True)
    ref = qn.astype(np.float64) @ means.T
    lg = ncm.logits(xte)
    np.testing.assert_array_equal(lg.argmax(1), ref.argmax(1))
    np.testing.assert_allclose(lg, 100 * ref, atol=1e-3)


def test_knn_matches_numpy(cache):
    xtr, ytr, xte = cache.features("train"), cache.labels("train"), cache.features("test")
    k = 7
    knn = KNN(cache.text_classifier, k=k, device="cpu", query_batch=33).fit(xtr, ytr)
    xn = (xtr / np.linalg.norm(xtr, axis=1, keepdims=True)).astype(np.float64)
    qn = (xte / np.linalg.norm(xte, axis=1, keepdims=True)).astype(np.float64)
    sims = qn @ xn.T
    nn = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    votes = np.zeros((len(xte), cache.num_classes))
    for i in range(len(xte)):
        for j in nn[i]:
            votes[i, ytr[j]] += sims[i, j]
    _, ids = knn.neighbours(xte)
    np.testing.assert_array_equal(np.sort(ids, 1), np.sort(nn, 1))
    lg = knn.logits(xte)
    np.testing.assert_array_equal(lg.argmax(1), votes.argmax(1))
    np.testing.assert_allclose(lg, 100 / k * votes, atol=1e-3)
    with pytest.raises(LTBenchError, match="larger than the train set"):
        KNN(cache.text_classifier, k=len(xtr) + 1, device="cpu").fit(xtr, ytr)


def _train(cache, **kw):
    cfg = resolve_config(kw.pop("head", "ballad"), epochs=kw.pop("epochs", 2), **kw)
    return train_head(cache, cfg, device="cpu")


@pytest.mark.parametrize("head", ["ballad", "linear", "cosine"])
def test_same_seed_same_head(cache, head):
    a, b = _train(cache, head=head, seed=5), _train(cache, head=head, seed=5)
    sa, sb = a.head.state_dict(), b.head.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    c = _train(cache, head=head, seed=6)
    assert not all(torch.equal(sa[k], c.head.state_dict()[k]) for k in sa if k != "classifier")


def test_views_are_used(cache):
    a, b = _train(cache, views=True), _train(cache, views=False)
    assert not torch.equal(a.head.adapter.weight, b.head.adapter.weight)


def test_head_file_round_trip_and_mismatch(cache, tmp_path):
    res = _train(cache, head="cosine", epochs=1)
    path = save_head(tmp_path / "h.pt", res, cache.provenance())
    raw = torch.load(path, weights_only=True)
    assert raw["head"] == "cosine" and isinstance(raw["config"], str) and raw["seed"] == 0
    assert_environment(raw["environment"], "cpu")  # versions and the device it trained on
    head, rec = load_head(path, provenance=cache.provenance())
    x = torch.from_numpy(cache.features("test"))
    with torch.no_grad():
        assert torch.equal(head(x), res.head(x))
    other = dict(cache.provenance(), dataset="imagenet_lt")
    with pytest.raises(CacheError, match="dataset"):
        load_head(path, provenance=other)
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(LTBenchError, match="not a head file"):
        load_head(tmp_path / "junk.pt")


def test_create_head_zeroshot(cache):
    zs = create_head("zeroshot", text_classifier=cache.text_classifier)
    x = cache.features("test")
    np.testing.assert_allclose(zs.logits(x), 100 * x @ cache.text_classifier.T / np.linalg.norm(x, axis=1)[:, None],
                               rtol=1e-4, atol=1e-3)


def test_head_defaults_schedule_and_select():
    b, lin, cos = resolve_config("ballad"), resolve_config("linear"), resolve_config("cosine")
    assert (b.schedule, b.select, b.sampler) == ("reference", "best-val", "class_aware")
    assert (lin.schedule, lin.select, cos.schedule, cos.select) == ("cosine", "last", "cosine", "last")
    for bad in (dict(schedule="step"), dict(select="best"), dict(sampler="class")):
        with pytest.raises(LTBenchError, match="use one of"):
            resolve_config("ballad", **bad)


def test_select_best_val(val_cache, tmp_path):
    res = _train(val_cache, epochs=5, batch_size=64, select="best-val")
    assert res.selection == "best-val" and len(res.val_acc) == 5
    best = max(res.val_acc)
    assert res.selected_epoch == (res.val_acc.index(best) + 1 if best > 0 else 0)
    x, y = torch.from_numpy(val_cache.features("val")), val_cache.labels("val")
    with torch.no_grad():
        acc = 100.0 * float((res.head(x).argmax(1).numpy() == y).mean())
    assert acc == pytest.approx(best, abs=1e-9)  # the returned head is the selected epoch's
    last = _train(val_cache, epochs=5, batch_size=64, select="last")
    assert last.selection == "last" and last.selected_epoch == 5 and last.val_acc == res.val_acc
    raw = torch.load(save_head(tmp_path / "h.pt", res, val_cache.provenance()), weights_only=True)
    assert raw["selected_epoch"] == res.selected_epoch and raw["val_acc"] == res.val_acc
    assert raw["selection"] == "best-val" and raw["epoch_lr"] == res.epoch_lr and raw["epoch_lr"][-1] == 0.0


def test_select_best_val_without_val_split_keeps_last(cache):
    import logging

    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("lt_bench")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        res = _train(cache, epochs=2, select="best-val")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert res.selection == "last" and res.selected_epoch == 2 and res.val_acc is None
    assert any("no val split" in r.getMessage() for r in records)


def test_old_head_file_config_reads_as_what_made_it(cache, tmp_path):
    import json

    path = save_head(tmp_path / "old.pt", _train(cache, epochs=1), cache.provenance())
    raw = torch.load(path, weights_only=True)
    cfg = json.loads(raw["config"])
    del cfg["schedule"], cfg["select"]
    raw["config"] = json.dumps(cfg)
    torch.save(raw, path)
    rec = load_head(path)[1]
    assert (rec["config"]["schedule"], rec["config"]["select"], rec["config"]["sampler"]) == (
        "cosine", "last", "class_aware_replace")
