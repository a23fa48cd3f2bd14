"""Extraction at library level: prompts, extending, refusing, skipping, determinism."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from _data_helpers import write_png
from _env_helpers import assert_environment
from _extract_helpers import assert_same_arrays
from lt_bench import distributed as dist_
from lt_bench.data import LTDataset, Split, load_dataset
from lt_bench.data.prompts import get_templates, list_template_sets
from lt_bench.errors import CacheError, LTBenchError
from lt_bench.features import FeatureCache, partial_path, root_attrs, write_cache
from lt_bench.features.extract import ExtractOptions, extract_features
from lt_bench.models import create_model


@pytest.fixture(scope="module")
def synth():
    return load_dataset("synthetic", max_per_class=30, val_per_class=2, test_per_class=3)


def _opts(**kw):
    kw.setdefault("workers", 0)
    kw.setdefault("batch_size", 8)
    kw.setdefault("progress", False)
    return ExtractOptions(**kw)


def test_template_sets():
    assert get_templates("simple") == ["a photo of a {}."]
    openai = get_templates("openai")
    assert len(openai) == 80 and all(t.count("{}") == 1 for t in openai)
    assert openai[0] == "a bad photo of a {}." and list_template_sets() == ["openai", "simple", "species"]
    with pytest.raises(LTBenchError, match="unknown template set 'x'; known: openai, simple"):
        get_templates("x")


def test_openai_templates_in_cache(tmp_path, bundle, synth):
    out = tmp_path / "f.h5"
    extract_features(out, synth, bundle, _opts(splits=("test",), templates="openai"))
    with FeatureCache(out) as c:
        assert len(c.templates) == 80 and c.text_features.shape == (80, 10, 64)
        mean = c.text_features.mean(0)
        np.testing.assert_allclose(c.text_classifier, mean / np.linalg.norm(mean, axis=-1, keepdims=True), atol=1e-6)


def test_cache_records_environment(tmp_path, bundle, synth):
    """The root attribute ``environment`` (additive): versions and device; optional to readers."""
    out = tmp_path / "f.h5"
    extract_features(out, synth, bundle, _opts(splits=("test",)))
    with FeatureCache(out) as c:
        assert_environment(c.environment, "cpu")
        assert c.attrs["format_version"] == 2 == c.format_version
    with h5py.File(out, "a") as f:  # a cache written before the attribute existed
        del f.attrs["environment"]
    with FeatureCache(out) as c:
        assert c.environment is None and len(c.labels("test")) == 30


def test_workers_and_world_independent(tmp_path, bundle, synth):
    """DataLoader workers and a resume from a partial leave the arrays unchanged."""
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    extract_features(a, synth, bundle, _opts(views=2, workers=0))
    extract_features(b, synth, bundle, _opts(views=2, workers=2))
    assert_same_arrays(a, b)


def test_extend_missing_splits_and_up_to_date(tmp_path, bundle, synth):
    full, out = tmp_path / "full.h5", tmp_path / "f.h5"
    extract_features(full, synth, bundle, _opts(views=1))
    extract_features(out, synth, bundle, _opts(views=1, splits=("train",)))
    with FeatureCache(out) as c:
        assert c.splits == ["train"]
        created = c.attrs["created"]
    r = extract_features(out, synth, bundle, _opts(views=1, splits=("train", "test", "val")))
    assert r.status == "written" and set(r.rows) == {"train", "val", "test"}
    assert r.images == len(synth.split("val")) + len(synth.split("test"))  # train not redone
    assert_same_arrays(full, out)
    with FeatureCache(out) as c:
        assert c.attrs["created"] == created
    before = out.read_bytes()
    assert extract_features(out, synth, bundle, _opts(views=1, splits=("val",))).status == "up-to-date"
    assert out.read_bytes() == before


def _files_split(root, n=10, bad=()):
    ids = [f"im{i}.png" for i in range(n)]
    for i, rel in enumerate(ids):
        if i not in bad:
            write_png(root / rel, value=10 * i, size=12)
    labels = np.arange(n) % 2
    return LTDataset(name="mine", classnames=["a", "b"],
                     splits={"train": Split(ids=ids, labels=labels, root=root),
                             "test": Split(ids=ids[:4], labels=labels[:4], root=root)})


def test_bad_image_keeps_partial_and_other_settings_refused(tmp_path, bundle):
    ds = _files_split(tmp_path / "img", bad=(6,))
    out = tmp_path / "f.h5"
    with pytest.raises(LTBenchError, match=r"image not found: .*im6\.png"):
        extract_features(out, ds, bundle, _opts(batch_size=2, splits=("train",)))
    part = partial_path(out)
    with h5py.File(part, "r") as f:
        assert int(f["train"].attrs["n_done"]) == 6 and not f["train"].attrs["complete"]
    with pytest.raises(CacheError, match=r"other settings.*views: 0 there vs 2 now.*--overwrite"):
        extract_features(out, ds, bundle, _opts(batch_size=2, splits=("train",), views=2))
    assert part.exists()
    # skip-bad is not part of the identity: the same settings resume and skip
    r = extract_features(out, ds, bundle, _opts(batch_size=2, splits=("train",), skip_bad=True))
    assert r.rows == {"train": 9} and r.skipped == {"train": 1} and r.images == 4
    with FeatureCache(out) as c:
        assert c.skipped_paths("train") == ["im6.png"] and "im6.png" not in c.paths("train")
        assert c.features("train").shape == (9, 64)
        assert c._h5["train"].attrs["n_seen"] == 10 and c._h5["train"].attrs["n_done"] == 9
    # the same as a run that never stopped
    fresh = tmp_path / "g.h5"
    extract_features(fresh, ds, bundle, _opts(batch_size=2, splits=("train",), skip_bad=True))
    assert_same_arrays(out, fresh)


def test_other_format_version(tmp_path, bundle, synth):
    out = tmp_path / "v3.h5"
    attrs = root_attrs(model="ltb-tiny-vit", pretrained="none", checkpoint_sha256="", dataset="synthetic",
                       num_classes=2, embed_dim=4, config={})
    write_cache(out, attrs=attrs, classnames=["a", "b"], train_counts=[1, 1], templates=["{}"],
                text_features=np.ones((1, 2, 4), np.float32) / 2,
                splits={"test": {"features": np.ones((2, 4)) / 2, "labels": [0, 1]}})
    with h5py.File(out, "a") as f:
        f.attrs["format_version"] = 3
    with pytest.raises(CacheError, match="cache format version 3.*reads versions 1 and 2"):
        FeatureCache(out)
    before = out.read_bytes()
    with pytest.raises(CacheError, match="version 3.*--overwrite"):
        extract_features(out, synth, bundle, _opts(splits=("test",)))
    assert out.read_bytes() == before
    extract_features(out, synth, bundle, _opts(splits=("test",), overwrite=True))
    with FeatureCache(out) as c:
        assert c.embed_dim == 64 and len(c.labels("test")) == 30


def test_reader_refuses_inconsistent_split(tmp_path):
    out = tmp_path / "bad.h5"
    attrs = root_attrs(model="m", pretrained="none", checkpoint_sha256="", dataset="d", num_classes=2,
                       embed_dim=4, config={})
    write_cache(out, attrs=attrs, classnames=["a", "b"], train_counts=[1, 1], templates=["{}"],
                text_features=np.ones((1, 2, 4), np.float32) / 2,
                splits={"test": {"features": np.ones((2, 4)) / 2, "labels": [0, 1]}})
    with h5py.File(out, "a") as f:
        f["test"].attrs["n_done"] = 5
    with FeatureCache(out) as c, pytest.raises(CacheError, match="n_done=5 but 2 rows"):
        c.features("test")


def test_unknown_split_and_bad_options(tmp_path, bundle, synth):
    ds = _files_split(tmp_path / "img")
    with pytest.raises(LTBenchError, match="no 'val' split"):
        extract_features(tmp_path / "f.h5", ds, bundle, _opts(splits=("train", "val")))
    with pytest.raises(LTBenchError, match="--splits"):
        extract_features(tmp_path / "f.h5", ds, bundle, _opts(splits=("training",)))
    with pytest.raises(LTBenchError, match="--templates"):
        extract_features(tmp_path / "f.h5", ds, bundle, _opts(templates="fancy"))
    assert not (tmp_path / "f.h5").exists() and not partial_path(tmp_path / "f.h5").exists()


def test_distributed_helpers_single_process():
    ctx = dist_.init_distributed("cpu")
    assert (ctx.rank, ctx.world_size, ctx.is_main, ctx.distributed) == (0, 1, True, False)
    t = torch.arange(3)
    assert dist_.all_gather_tensor(t)[0] is t and dist_.broadcast_object({"a": 1}) == {"a": 1}
    assert dist_.is_main() and dist_.get_world_size() == 1 and dist_.all_reduce_max(2.0) == 2.0
    dist_.barrier()
    dist_.cleanup()


def test_unknown_pretrained_tag():
    with pytest.raises(LTBenchError, match="neither a file nor a known tag"):
        create_model("ltb-tiny-vit", "laion9000")
    with pytest.raises(LTBenchError, match="unknown model 'nope'; known: ltb-tiny-rn, ltb-tiny-vit"):
        create_model("nope", "none")


def test_a_cache_from_before_quick_gelu_was_recorded_is_up_to_date(tmp_path, synth, bundle):
    """Its identity lacks quick_gelu (it was extracted with nn.GELU): the same settings, not another extraction."""
    import json

    import h5py

    out = tmp_path / "old.h5"
    extract_features(out, synth, bundle, _opts(splits=("test",)))
    with h5py.File(out, "a") as f:
        config = json.loads(f.attrs["config"])
        del config["identity"]["quick_gelu"]
        f.attrs["config"] = json.dumps(config)
    assert extract_features(out, synth, bundle, _opts(splits=("test",))).status == "up-to-date"


def test_reproduce_does_not_reuse_a_cache_run_with_another_activation(tmp_path):
    """extract_state (reproduce's skip rule) compares QuickGELU like the extraction itself does."""
    import json

    import h5py

    from lt_bench.pipeline import ExtractConfig
    from lt_bench.pipeline.steps import extract_state, run_extract

    cfg = ExtractConfig(dataset="synthetic", dataset_options={"max_per_class": 5}, model="ltb-tiny-vit-quickgelu",
                        pretrained="none", splits=("test",), workers=0, device="cpu", out=str(tmp_path / "q.h5"))
    run_extract(cfg)
    assert extract_state(cfg)[0] == "done"
    with h5py.File(cfg.out, "a") as f:  # as if made by the old nn.GELU rebuild
        config = json.loads(f.attrs["config"])
        config["identity"]["quick_gelu"] = False
        f.attrs["config"] = json.dumps(config)
    state, why = extract_state(cfg)
    assert state == "different" and "quick_gelu" in why
