"""Ragged augmented views: the view budget, batch planning, cache format v2 (and reading v1),
extraction with a budget, and Phase B drawing one of each image's own views."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from _data_helpers import write_png
from _extract_helpers import assert_same_arrays
from lt_bench.data import LTDataset, Split, load_dataset
from lt_bench.errors import CacheError, LTBenchError
from lt_bench.features import AugViews, FeatureCache, partial_path, root_attrs, write_cache
from lt_bench.features.extract import ExtractOptions, extract_features
from lt_bench.features.synthetic import make_synthetic_cache
from lt_bench.features.views import (AUG_PER_BATCH, budget_per_class, expected_draws, plan_batches, total_views,
                                     views_per_image)
from lt_bench.heads import resolve_config, train_head
from lt_bench.heads.train import _draw_views

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# -- the budget ------------------------------------------------------------------------------------

def _imagenet_like() -> np.ndarray:
    counts = np.full(1000, 115)
    counts[0], counts[-1] = 1280, 5
    counts[1:1 + int(counts.sum()) - 115_846] -= 1
    assert counts.sum() == 115_846
    return counts


def test_budget_follows_expected_draws():
    counts = _imagenet_like()
    draws = expected_draws(counts)  # 226 steps x 512 x 10 epochs / 1000 classes / n_c
    assert draws[-1] == pytest.approx(226 * 512 * 10 / 1000 / 5) == pytest.approx(231.424)
    assert draws[0] == pytest.approx(1157.12 / 1280)
    per = budget_per_class(counts, 64)
    assert per[-1] == 64 and per[0] == 1 and per[1] == 11 and per[-2] == 11  # ceil(1157.12 / 114), / 115
    assert budget_per_class(counts, 1000)[-1] == 232
    assert not budget_per_class(counts, 0).any()
    # exact integer ceilings: 2 steps x 512 x 10 / 2 classes / 512 images = 10 draws, not 11
    assert budget_per_class([512, 512], 64).tolist() == [10, 10]
    # a class without images is out of the class cycle and gets nothing: 9 x 512 x 10 / 2 classes
    assert budget_per_class([5000, 0, 10], 64).tolist() == [5, 0, 64]  # ceil(23040 / 5000)
    assert total_views(counts, view_budget=64) == int((per * counts).sum())
    assert total_views(counts, views=4) == 4 * 115_846


def test_views_per_image():
    labels = np.array([0, 1, 1, 2, 2, 2])
    assert views_per_image(labels, 3, views=2).tolist() == [2] * 6
    assert views_per_image(labels, 3).tolist() == [0] * 6
    per = budget_per_class([1, 2, 3], 64)
    assert views_per_image(labels, 3, view_budget=64).tolist() == per[labels].tolist()
    with pytest.raises(ValueError):
        views_per_image(labels, 3, views=2, view_budget=4)


def test_plan_batches():
    flat = np.full(50, 4)
    assert plan_batches(flat, 0, 8) == [(s, min(50, s + 8)) for s in range(0, 50, 8)]
    assert plan_batches(flat, 50, 8) == [] and plan_batches(np.zeros(5, np.int64), 2, 2) == [(2, 4), (4, 5)]
    rng = np.random.default_rng(0)
    counts = rng.integers(1, 20, size=300)
    counts[100] = 100  # more than 4 x 8 alone: a batch of its own
    b = 8
    plan = plan_batches(counts, 0, b)
    assert plan[0][0] == 0 and plan[-1][1] == 300 and all(e1 == s2 for (_, e1), (s2, _) in zip(plan, plan[1:]))
    for s, e in plan:
        assert 1 <= e - s <= b and (counts[s:e].sum() <= AUG_PER_BATCH * b or e - s == 1)
    assert (100, 101) in plan
    for k, (s, _) in enumerate(plan):  # a resume at any boundary continues the same plan
        assert plan_batches(counts, s, b) == plan[k:]


# -- the cache: v2 written, v1 read ------------------------------------------------------------------

def _attrs(n_classes=2, dim=4):
    return root_attrs(model="m", pretrained="none", checkpoint_sha256="", dataset="d", num_classes=n_classes,
                      embed_dim=dim, config={}, normalized=False)  # arbitrary rows, not unit vectors


def _to_v1(path):
    """Rewrite a flat v2 cache in the version 1 layout: aug_features (N, V, D), no offsets."""
    with h5py.File(path, "a") as f:
        f.attrs["format_version"] = 1
        for s in ("train", "val", "test"):
            if s in f and "aug_offsets" in f[s]:
                g = f[s]
                off, rows = g["aug_offsets"][()], g["aug_features"][()]
                v = int(off[1])
                assert (off == v * np.arange(len(off))).all()
                del g["aug_offsets"], g["aug_features"]
                g.create_dataset("aug_features", data=rows.reshape(len(off) - 1, v, rows.shape[1]))
    return path


def test_v2_ragged_and_v1_flat_read_alike(tmp_path):
    rows = np.arange(6 * 4, dtype=np.float16).reshape(6, 4)
    feats = np.ones((3, 4)) / 2
    ragged = write_cache(tmp_path / "r.h5", attrs=_attrs(), classnames=["a", "b"], train_counts=[2, 1],
                         templates=["{}"], text_features=np.ones((1, 2, 4), np.float32) / 2,
                         splits={"train": {"features": feats, "labels": [0, 0, 1], "aug_features": rows,
                                           "aug_offsets": [0, 1, 3, 6]}})
    with FeatureCache(ragged) as c:
        assert c.format_version == 2
        views = c.aug_features("train")
        assert isinstance(views, AugViews) and views.rows.dtype == np.float16
        assert np.array_equal(views.rows, rows) and views.offsets.tolist() == [0, 1, 3, 6]
        assert views.counts.tolist() == [1, 2, 3] == c.view_counts("train").tolist() and c.num_views("train") == 3
    flat = write_cache(tmp_path / "f.h5", attrs=_attrs(), classnames=["a", "b"], train_counts=[2, 1],
                       templates=["{}"], text_features=np.ones((1, 2, 4), np.float32) / 2,
                       splits={"train": {"features": feats, "labels": [0, 0, 1],
                                         "aug_features": rows.reshape(3, 2, 4)}})
    with FeatureCache(flat) as c:
        v2 = c.aug_features("train")
        assert v2.offsets.tolist() == [0, 2, 4, 6]
    with FeatureCache(_to_v1(flat)) as c:
        assert c.format_version == 1 and c.provenance()["format_version"] == 1
        assert c._h5["train/aug_features"].shape == (3, 2, 4)
        v1 = c.aug_features("train")
        assert np.array_equal(v1.rows, v2.rows) and v1.offsets.tolist() == [0, 2, 4, 6]
        assert c.view_counts("train").tolist() == [2, 2, 2] and c.num_views("train") == 2


@pytest.mark.parametrize("bad", ["offsets", "missing", "shape"])
def test_reader_refuses_inconsistent_views(tmp_path, bad):
    out = make_synthetic_cache(tmp_path / "c.h5", num_classes=3, dim=8, max_per_class=6, imbalance=2,
                               test_per_class=1, views=2)
    with h5py.File(out, "a") as f:
        g = f["train"]
        if bad == "offsets":
            g["aug_offsets"][2] = g["aug_offsets"][3] + 1  # decreasing
        elif bad == "missing":
            del g["aug_offsets"]
        else:
            f.attrs["format_version"] = 1  # a v1 cache with 2-d views
    with FeatureCache(out) as c, pytest.raises(CacheError, match="re-extract it"):
        c.labels("train")


# -- Phase B on ragged views ---------------------------------------------------------------------------

def test_draw_views_uniform_within_each_image():
    counts = torch.tensor([1, 3, 64, 2])
    offsets = torch.cat([torch.zeros(1, dtype=torch.int64), counts.cumsum(0)])
    idx = torch.tensor([0, 1, 2, 3]).repeat(20_000)
    rows = _draw_views(idx, offsets, counts, torch.Generator().manual_seed(0))
    assert ((rows >= offsets[idx]) & (rows < offsets[idx + 1])).all()
    for i in range(4):
        freq = torch.bincount(rows[idx == i] - offsets[i], minlength=int(counts[i])).double() / 20_000
        assert torch.allclose(freq, torch.full_like(freq, 1 / int(counts[i])), atol=0.02 if counts[i] < 10 else 0.006)


def test_phase_b_v1_and_v2_caches_alike(tmp_path):
    """The same views stored as v2 (offsets V * i) and as v1 (N, V, D) train the same head, bit for bit;
    a ragged cache trains too, its float16 views kept as float16."""
    kw = dict(num_classes=5, dim=16, max_per_class=40, imbalance=8, test_per_class=4, val_per_class=2, seed=1)
    v2 = make_synthetic_cache(tmp_path / "v2.h5", views=3, **kw)
    v1 = _to_v1(make_synthetic_cache(tmp_path / "v1.h5", views=3, **kw))
    cfg = resolve_config("ballad", epochs=2, batch_size=32, seed=4)
    with FeatureCache(v2) as a, FeatureCache(v1) as b:
        ha, hb = train_head(a, cfg, device="cpu").head, train_head(b, cfg, device="cpu").head
    for (k, x), (_, y) in zip(ha.state_dict().items(), hb.state_dict().items()):
        assert torch.equal(x, y), k
    ragged = make_synthetic_cache(tmp_path / "r.h5", view_budget=64, **kw)
    with FeatureCache(ragged) as c:
        assert len(set(c.view_counts("train").tolist())) > 1
        assert c.aug_features("train").rows.dtype == np.float16
        res = train_head(c, cfg, device="cpu")
    assert np.isfinite(res.final_loss)


# -- extraction with a budget ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def synth():
    # 10 classes, 120..6 images: 512 expected draws per class, 4.3 per image of the largest
    return load_dataset("synthetic", max_per_class=120, imbalance=20, val_per_class=2, test_per_class=2)


def _opts(**kw):
    kw.setdefault("workers", 0)
    kw.setdefault("batch_size", 4)
    kw.setdefault("progress", False)
    return ExtractOptions(**kw)


@pytest.mark.slow
def test_budget_extraction(tmp_path, bundle, synth):
    """Each image gets its budgeted views; view v of image i is the flat run's view v (seeded by
    (seed, i, v)); workers do not change the file."""
    a, b, flat = tmp_path / "a.h5", tmp_path / "b.h5", tmp_path / "flat.h5"
    extract_features(a, synth, bundle, _opts(view_budget=6, splits=("train", "val")))
    extract_features(b, synth, bundle, _opts(view_budget=6, splits=("train", "val"), workers=2))
    assert_same_arrays(a, b)
    extract_features(flat, synth, bundle, _opts(views=6, splits=("train",)))
    labels = synth.split("train").labels
    counts = views_per_image(labels, synth.num_classes, view_budget=6)
    assert counts.min() < counts.max() == 6
    with FeatureCache(a) as c, FeatureCache(flat) as f:
        views, full = c.aug_features("train"), f.aug_features("train")
        assert np.array_equal(views.counts, counts) and c.view_counts("val").sum() == 0
        for i in range(len(labels)):
            got = views.rows[views.offsets[i]:views.offsets[i + 1]].astype(np.float32)
            want = full.rows[full.offsets[i]:full.offsets[i] + counts[i]].astype(np.float32)
            np.testing.assert_allclose(got, want, atol=2e-3)  # same pixels; batches differ, so not bit for bit
        assert np.array_equal(c.features("train"), f.features("train"))


def test_budget_identity_and_exclusive(tmp_path, bundle, synth):
    out = tmp_path / "f.h5"
    with pytest.raises(LTBenchError, match="--views 2 and --view-budget 4 exclude each other"):
        extract_features(out, synth, bundle, _opts(views=2, view_budget=4))
    assert not out.exists() and not partial_path(out).exists()
    extract_features(out, synth, bundle, _opts(view_budget=4, splits=("test",)))
    with pytest.raises(CacheError, match="view_budget: 4 there vs 8 now"):
        extract_features(out, synth, bundle, _opts(view_budget=8, splits=("test",)))


def test_v1_output_read_but_not_extended(tmp_path, bundle, synth):
    out = tmp_path / "f.h5"
    extract_features(out, synth, bundle, _opts(views=2, splits=("train",)))
    _to_v1(out)
    with h5py.File(out, "a") as f:  # as lt_bench before view budgets recorded it
        import json
        cfg = json.loads(f.attrs["config"])
        del cfg["identity"]["view_budget"]
        f.attrs["config"] = json.dumps(cfg)
    before = out.read_bytes()
    assert extract_features(out, synth, bundle, _opts(views=2, splits=("train",))).status == "up-to-date"
    with pytest.raises(CacheError, match="format version 1.*does not extend.*--overwrite"):
        extract_features(out, synth, bundle, _opts(views=2, splits=("train", "test")))
    assert out.read_bytes() == before and not partial_path(out).exists()


def test_budget_skip_bad_resume_equals_fresh(tmp_path, bundle):
    """A stop at a bad image, then a resume with --skip-bad: the ragged rows are compacted and
    the file equals a run that never stopped."""
    root = tmp_path / "img"
    ids = [f"im{i}.png" for i in range(14)]
    for i, rel in enumerate(ids):
        if i != 9:
            write_png(root / rel, value=10 * i, size=12)
    labels = np.array([0] * 10 + [1] * 4)
    ds = LTDataset(name="mine", classnames=["a", "b"], splits={"train": Split(ids=ids, labels=labels, root=root)})
    out, fresh = tmp_path / "f.h5", tmp_path / "g.h5"
    opts = dict(batch_size=2, splits=("train",), view_budget=8)
    with pytest.raises(LTBenchError, match=r"im9\.png"):
        extract_features(out, ds, bundle, _opts(**opts))
    r = extract_features(out, ds, bundle, _opts(skip_bad=True, **opts))
    assert r.rows == {"train": 13} and r.skipped == {"train": 1}
    extract_features(fresh, ds, bundle, _opts(skip_bad=True, **opts))
    assert_same_arrays(out, fresh)
    counts = views_per_image(labels, 2, view_budget=8)  # 256 and 640 expected draws: 8 each
    with FeatureCache(out) as c:
        views = c.aug_features("train")
        assert views.counts.tolist() == np.delete(counts, 9).tolist()
        assert len(views.rows) == counts.sum() - counts[9] and c.paths("train") == ids[:9] + ids[10:]


def test_a_budget_over_an_empty_train_split_is_no_views():
    assert views_per_image([], 3, view_budget=4).tolist() == []
    assert budget_per_class([0, 0, 0], 4).tolist() == [0, 0, 0]


def test_write_cache_takes_paths_as_an_array(tmp_path):
    """``paths`` given as a numpy array (not a list) is written as given."""
    feats = np.eye(3, 4, dtype=np.float32)
    attrs = root_attrs(model="m", pretrained="none", checkpoint_sha256="", dataset="d", num_classes=3, embed_dim=4,
                       config={})
    write_cache(tmp_path / "c.h5", attrs=attrs, classnames=["a", "b", "c"], train_counts=[1, 1, 1],
                templates=["{}"], text_features=feats[None, :, :],
                splits={"test": {"features": feats, "labels": np.arange(3), "paths": np.array(["x", "y", "z"])}})
    with h5py.File(tmp_path / "c.h5", "r") as f:
        assert [p.decode() for p in f["test/paths"][()]] == ["x", "y", "z"]
