"""`ltbench extract` end to end: real HDF5, in process; kill -9 and torchrun in real processes (slow tier)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from _cli import run_cli
from _data_helpers import write_png
from _extract_helpers import SMALL_MAX_PER_CLASS, VIEW_BUDGET, assert_same_arrays, extract_args, run
from conftest import ltbench_cmd
from lt_bench.data import load_dataset
from lt_bench.errors import CacheError
from lt_bench.features import FeatureCache, partial_path
from lt_bench.features.views import views_per_image
from lt_bench.lock import lock_path

def _env() -> dict:
    env = dict(os.environ)
    env["HF_HUB_OFFLINE"] = "1"
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def _reference(out: Path, **size) -> Path:
    r = run_cli(*extract_args(out, **size))
    assert r.returncode == 0, r.stderr
    assert "images/s" in r.stderr and str(out) in r.stdout
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """One uninterrupted single-process extraction the kill -9 and torchrun runs compare against."""
    return _reference(tmp_path_factory.mktemp("ref") / "ref.h5")


@pytest.fixture(scope="module")
def small_reference(tmp_path_factory) -> Path:
    """The same extraction at the fast tier's size (119 train images instead of 772)."""
    return _reference(tmp_path_factory.mktemp("ref") / "small.h5", max_per_class=SMALL_MAX_PER_CLASS)


def _one_line_error(r) -> str:
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("ltbench: error:")]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    return lines[0]


# -- schema ------------------------------------------------------------------------------------

def test_cache_schema(small_reference):
    reference, mpc = small_reference, SMALL_MAX_PER_CLASS
    ds = load_dataset("synthetic", max_per_class=mpc, val_per_class=3, test_per_class=6)
    with h5py.File(reference, "r") as f:
        a = f.attrs
        assert a["format"] == "lt_bench.features" and int(a["format_version"]) == 2
        assert a["model"] == "ltb-tiny-vit" and a["pretrained"] == "none" and a["checkpoint_sha256"] == ""
        assert a["dataset"] == "synthetic" and int(a["num_classes"]) == 10 and int(a["embed_dim"]) == 64
        assert bool(a["normalized"]) and a["lt_bench_version"] and "T" in a["created"]
        assert a["checksums"] == "fletcher32" and len(a["fingerprint"]) == 64
        config = json.loads(a["config"])
        assert config["option"] == {"max_per_class": mpc, "val_per_class": 3, "test_per_class": 6}
        assert config["identity"]["dataset_options"]["max_per_class"] == mpc
        assert config["views"] == 0 and config["view_budget"] == VIEW_BUDGET
        assert config["identity"]["view_budget"] == VIEW_BUDGET
        assert config["templates"] == "simple" and config["seed"] == 3
        c, d = 10, 64
        names = [s.decode() for s in f["classes/names"][()]]
        assert names == ds.classnames and f["classes/names"].dtype.kind == "O"
        assert f["classes/train_counts"].dtype == np.int64
        assert f["classes/train_counts"][()].tolist() == ds.train_counts.tolist()
        assert [t.decode() for t in f["text/templates"][()]] == ["a photo of a {}."]
        tf = f["text/features"]
        assert tf.shape == (1, c, d) and tf.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(tf[()], axis=-1), 1, atol=1e-5)
        mean = tf[()].mean(0)
        cls = f["text/classifier"]
        assert cls.shape == (c, d) and cls.dtype == np.float32
        np.testing.assert_allclose(cls[()], mean / np.linalg.norm(mean, axis=-1, keepdims=True), atol=1e-6)
        for s in ("train", "val", "test"):
            g, split = f[s], ds.split(s)
            n = len(split)
            assert g["features"].shape == (n, d) and g["features"].dtype == np.float16
            assert g["features"].chunks and g["features"].fletcher32  # checksummed by HDF5
            np.testing.assert_allclose(np.linalg.norm(g["features"][()].astype(np.float32), axis=-1), 1, atol=2e-3)
            assert g["labels"].dtype == np.int64 and g["labels"][()].tolist() == split.labels.tolist()
            assert [p.decode() for p in g["paths"][()]] == split.ids
            assert int(g.attrs["n_done"]) == n and bool(g.attrs["complete"]) and int(g.attrs["n_seen"]) == n
            assert "skipped_paths" not in g
            if s == "train":
                aug, off = g["aug_features"], g["aug_offsets"][()]
                counts = views_per_image(split.labels, c, view_budget=VIEW_BUDGET)
                assert 1 <= counts.min() and counts.max() == VIEW_BUDGET  # (ragged on the bigger set: slow tier)
                assert off.dtype == np.int64 and off.tolist() == [0] + np.cumsum(counts).tolist()
                assert aug.shape == (counts.sum(), d) and aug.dtype == np.float16 and aug.fletcher32
                rows = aug[()].astype(np.float32)
                np.testing.assert_allclose(np.linalg.norm(rows, axis=-1), 1, atol=2e-3)
                assert not np.array_equal(rows[off[:-1]], rows[off[:-1] + 1])  # views 0 and 1 differ
                assert not np.array_equal(aug[()][off[:-1]], g["features"][()])
            else:
                assert "aug_features" not in g and "aug_offsets" not in g
    with FeatureCache(reference) as cache:
        assert cache.features("train").dtype == np.float32 and cache.num_views("train") == VIEW_BUDGET
        assert cache.num_views("test") == 0 and cache.skipped_paths("train") == []
    toml = reference.with_name(reference.name + ".config.toml")
    assert toml.is_file() and 'dataset = "synthetic"' in toml.read_text()
    assert not partial_path(reference).exists()


def test_rerun_is_up_to_date(small_reference, tmp_path):
    out = tmp_path / "copy.h5"
    shutil.copyfile(small_reference, out)
    before = out.read_bytes()
    r = run_cli(*extract_args(out, max_per_class=SMALL_MAX_PER_CLASS))
    assert r.returncode == 0, r.stderr
    assert "up to date" in r.stdout and out.read_bytes() == before


# -- resume after kill -9 ------------------------------------------------------------------------

def _n_done(part: Path) -> int:
    try:
        with h5py.File(part, "r", locking=False) as f:
            return int(f["train"].attrs["n_done"]) if "train" in f else 0
    except (OSError, KeyError):  # mid-write: try again
        return 0


@pytest.mark.slow  # kills a real process
def test_resume_after_kill9(reference, tmp_path):
    out = tmp_path / "killed.h5"
    part = partial_path(out)
    cmd = ltbench_cmd() + extract_args(out)
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            if part.exists() and _n_done(part) > 0:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "extraction finished before it could be killed: make the test dataset bigger"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert part.exists() and not out.exists()
    assert lock_path(out).exists()  # the killed run's lock file stays; the kernel dropped its lock
    with h5py.File(part, "r") as f:
        created = f.attrs["created"]
        done = int(f["train"].attrs["n_done"])
        total = f["train/features"].shape[0]
    assert 0 < done < total, (done, total)
    with pytest.raises(CacheError, match="incomplete"):
        FeatureCache(out)

    r = run_cli(*extract_args(out))  # the rerun: in process (the kill above is the real one)
    assert r.returncode == 0, r.stderr
    assert "resuming" in r.stderr
    assert not part.exists() and out.exists() and not lock_path(out).exists()
    assert_same_arrays(reference, out)
    with h5py.File(out, "r") as f:
        assert f.attrs["created"] == created  # kept from the first start
        assert f["train"].attrs["n_done"] == total


# -- torchrun ------------------------------------------------------------------------------------

@pytest.mark.slow  # two real processes under torchrun
def test_torchrun_two_processes_same_file(reference, tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        pytest.skip("no torchrun beside this python")
    out = tmp_path / "ddp.h5"
    cmd = [str(torchrun), "--standalone", "--nproc_per_node", "2", "--no-python", *ltbench_cmd(), *extract_args(out)]
    env = _env()
    env["OMP_NUM_THREADS"] = "1"
    r = run(cmd, env, timeout=180)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "2 processes, backend gloo" in r.stderr
    assert_same_arrays(reference, out)


# -- bad input -----------------------------------------------------------------------------------

def _folder_dataset(root: Path) -> tuple[str, str]:
    """Split-file dataset of 12 train / 4 test PNGs; train image 2 is corrupt, train image 5 missing."""
    train = [(f"img/tr{i}.png", i % 3) for i in range(12)]
    test = [(f"img/te{i}.png", i % 3) for i in range(4)]
    for i, (rel, lab) in enumerate(train + test):
        write_png(root / rel, value=40 * lab + i, size=16)
    corrupt, missing = train[2][0], train[5][0]
    (root / corrupt).write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    (root / missing).unlink()
    (root / "train.txt").write_text("".join(f"{p} {lab}\n" for p, lab in train))
    (root / "test.txt").write_text("".join(f"{p} {lab}\n" for p, lab in test))
    (root / "classnames.txt").write_text("cat\ndog\nred fox\n")
    return corrupt, missing


def test_bad_images_stop_or_skip(tmp_path):
    root = tmp_path / "data"
    corrupt, missing = _folder_dataset(root)
    out = tmp_path / "f.h5"
    base = ["extract", "--dataset", "folder", "--root", str(root), "--model", "ltb-tiny-rn",
            "--pretrained", "none", "--splits", "train,test", "--batch-size", "2",
            "--views", "1", "--out", str(out)]
    # a DataLoader worker meets the corrupt file: one clean line naming it, nothing moved into place
    r = run_cli(*base, "--workers", "1")
    line = _one_line_error(r)
    assert corrupt in line and "--skip-bad" in line
    assert not out.exists() and partial_path(out).exists()
    # the same command with --skip-bad resumes and records both bad images
    r = run_cli(*base, "--workers", "0", "--skip-bad")
    assert r.returncode == 0, r.stderr
    assert "train 10 rows (2 skipped)" in r.stdout
    with FeatureCache(out) as c:
        assert c.skipped_paths("train") == [corrupt, missing]
        paths = c.paths("train")
        assert len(paths) == 10 and corrupt not in paths and missing not in paths
        views = c.aug_features("train")  # flat --views 1: offsets 0, 1, ..., 10
        assert c.features("train").shape == (10, 64) and views.rows.shape == (10, 64)
        assert views.offsets.tolist() == list(range(11))
        assert c.labels("train").tolist() == [i % 3 for i in range(12) if i not in (2, 5)]
        assert c.skipped_paths("test") == [] and len(c.labels("test")) == 4
        # the shot groups come from what is cached: the two skipped images (class 2) are not counted
        assert c.train_counts.tolist() == [4, 4, 2]


def test_unknown_model(tmp_path):
    out = tmp_path / "f.h5"
    args = extract_args(out)
    args[args.index("ltb-tiny-vit")] = "ltb-huge-vit"
    line = _one_line_error(run_cli(*args))
    assert "unknown model 'ltb-huge-vit'" in line and "ltb-tiny-vit" in line
    assert not out.exists() and not partial_path(out).exists()


def test_output_of_another_model_refused_then_overwritten(small_reference, tmp_path):
    out = tmp_path / "f.h5"
    shutil.copyfile(small_reference, out)
    before = out.read_bytes()
    small = ["extract", "--dataset", "synthetic", "--option", "max_per_class=20", "--model", "ltb-tiny-rn",
             "--pretrained", "none", "--splits", "test", "--workers", "0", "--out", str(out)]
    line = _one_line_error(run_cli(*small))
    assert "belongs to another extraction" in line and "ltb-tiny-vit" in line and "ltb-tiny-rn" in line
    assert "max_per_class" in line and "--overwrite" in line
    assert out.read_bytes() == before and not partial_path(out).exists()
    r = run_cli(*small, "--overwrite")
    assert r.returncode == 0, r.stderr
    with FeatureCache(out) as c:
        assert c.attrs["model"] == "ltb-tiny-rn" and c.splits == ["test"]
