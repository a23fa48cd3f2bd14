"""A cache's integrity and identity (issue 11, items 1-2) and a full disk (issue 15, item 3).

- Checksums: a cache written now has HDF5's Fletcher32 on every numeric dataset and v110+
  metadata checksums; a flipped byte in a data chunk or in the file's structure fails the
  command in one line naming the file and the dataset, and changes nothing. Caches written
  before (no checksums) are read as they are.
- Fingerprint: the content, not the names: a head trained on a cache of the same model and
  dataset names but another seed is refused; a cache or head from before fingerprints works.
- A full disk: injected (``OSError(ENOSPC)`` raised at the write: a real tiny file system
  needs root to mount, which the tests do not have), the run stops in one line, and the same
  command resumes it to the file an uninterrupted run writes.
"""

from __future__ import annotations

import errno
import re
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from _cli import run_cli, snapshot as _snapshot
from _extract_helpers import SMALL_MAX_PER_CLASS, assert_same_arrays, extract_args
from lt_bench.features import FeatureCache, partial_path, write_cache
from lt_bench.features.synthetic import make_synthetic_cache


def _one_line(r) -> str:
    assert r.returncode == 1 and "Traceback" not in r.stderr, (r.returncode, r.stderr)
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("ltbench: error: ")]
    assert len(errors) == 1 and r.stderr.strip().splitlines()[-1] == errors[0], r.stderr
    return errors[0]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("integrity")
    make_synthetic_cache(d / "f.h5", num_classes=4, dim=8, max_per_class=30, test_per_class=3)
    return d


def _copy(src: Path, dst: Path) -> Path:
    dst.write_bytes(src.read_bytes())
    return dst


# -- checksums -------------------------------------------------------------------------------

def test_a_new_cache_is_checksummed(folder):
    with h5py.File(folder / "f.h5", "r") as f:
        assert f.attrs["checksums"] == "fletcher32" and len(f.attrs["fingerprint"]) == 64
        assert f.id.get_create_plist().get_version()[0] >= 2  # superblock v2+: checksummed metadata
        numeric = []
        f.visititems(lambda name, o: numeric.append(o) if isinstance(o, h5py.Dataset)
                     and h5py.check_string_dtype(o.dtype) is None else None)
        assert len(numeric) >= 7 and all(ds.fletcher32 and ds.chunks for ds in numeric if ds.size)


@pytest.mark.parametrize("dataset,argv", [
    ("train/features", ["eval", "{c}", "--baseline", "ncm"]),
    ("test/labels", ["eval", "{c}", "--baseline", "zeroshot"]),
    ("text/classifier", ["eval", "{c}", "--baseline", "zeroshot"]),
    ("train/features", ["adapt", "{c}", "--head", "linear", "--epochs", "1", "--out", "{d}/h.pt"]),
])
def test_a_flipped_data_byte_fails_in_one_line(folder, tmp_path, dataset, argv):
    cache = _copy(folder / "f.h5", tmp_path / "c.h5")
    with h5py.File(cache, "r") as f:
        chunk = f[dataset].id.get_chunk_info(0)
    data = bytearray(cache.read_bytes())
    data[chunk.byte_offset + chunk.size // 2] ^= 0x01  # one bit of one value
    cache.write_bytes(bytes(data))
    before = _snapshot(tmp_path)
    line = _one_line(run_cli(*[a.format(c=cache, d=tmp_path) for a in argv]))
    assert f"{cache}: /{dataset} is damaged" in line and "re-extract" in line, line
    assert _snapshot(tmp_path) == before


def test_flipped_metadata_bytes_fail_in_one_line(folder, tmp_path):
    """32 bytes flipped in each object header (root group, groups, datasets) in turn: each file
    is refused in one line naming it, and what HDF5 could not read."""
    good = (folder / "f.h5").read_bytes()
    headers = [m.start() for m in re.finditer(b"OHDR", good)]
    assert len(headers) >= 10
    for i, at in enumerate(headers):
        data = bytearray(good)
        for j in range(32):
            data[at + 8 + j] ^= 0x5A
        cache = tmp_path / f"m{i}.h5"
        cache.write_bytes(bytes(data))
        before = _snapshot(tmp_path)
        for argv in (["eval", cache, "--baseline", "ncm"],
                     ["adapt", cache, "--head", "linear", "--epochs", "1", "--out", tmp_path / "h.pt"]):
            line = _one_line(run_cli(*argv))
            assert str(cache) in line and "damaged" in line and "re-extract" in line, line
        assert _snapshot(tmp_path) == before


def _plain_copy(src: Path, dst: Path) -> Path:
    """``src`` as lt_bench wrote caches before checksums (contiguous, no checksums or fingerprint)."""
    with FeatureCache(src) as c:
        splits = {s: {"features": c.features(s), "labels": c.labels(s), "paths": c.paths(s)} for s in c.splits}
        attrs = {k: v for k, v in c.attrs.items() if k not in ("checksums", "fingerprint")}
        return write_cache(dst, attrs=attrs, classnames=c.classnames, train_counts=c.train_counts,
                           templates=c.templates, text_features=c.text_features, splits=splits, checksums=False)


def test_a_cache_from_before_checksums_is_read_as_it_is(folder, tmp_path):
    old = _plain_copy(folder / "f.h5", tmp_path / "old.h5")
    with h5py.File(old, "r") as f:
        assert "checksums" not in f.attrs and "fingerprint" not in f.attrs and f["train/features"].chunks is None
    with FeatureCache(old) as a, FeatureCache(folder / "f.h5") as b:
        assert not a.checksummed and b.checksummed
        assert np.array_equal(a.features("train"), b.features("train"))
        # computed on first use, by the function the writer stores: the same content, the same fingerprint
        assert a.fingerprint == b.fingerprint == b.attrs["fingerprint"]
    assert run_cli("eval", old, "--baseline", "ncm").returncode == 0


# -- identity by content -----------------------------------------------------------------------

def test_a_head_from_another_cache_of_the_same_names_is_refused(tmp_path):
    a = make_synthetic_cache(tmp_path / "a.h5", num_classes=4, dim=8, max_per_class=30, test_per_class=3, seed=0)
    b = make_synthetic_cache(tmp_path / "b.h5", num_classes=4, dim=8, max_per_class=30, test_per_class=3, seed=1)
    again = make_synthetic_cache(tmp_path / "a2.h5", num_classes=4, dim=8, max_per_class=30, test_per_class=3,
                                 seed=0)
    with FeatureCache(a) as ca, FeatureCache(b) as cb, FeatureCache(again) as cc:
        assert {k: ca.attrs[k] for k in ("model", "dataset")} == {k: cb.attrs[k] for k in ("model", "dataset")}
        assert ca.fingerprint != cb.fingerprint and ca.fingerprint == cc.fingerprint
    assert run_cli("adapt", a, "--head", "linear", "--epochs", "1", "--out", tmp_path / "h.pt").returncode == 0
    head = torch.load(tmp_path / "h.pt", weights_only=True)
    assert head["cache"]["fingerprint"] == ca.fingerprint
    before = _snapshot(tmp_path)
    line = _one_line(run_cli("eval", b, "--head", tmp_path / "h.pt", "--json", tmp_path / "r.json"))
    assert "another cache" in line and "same model and dataset names" in line and "fingerprint" in line, line
    assert _snapshot(tmp_path) == before
    r = run_cli("eval", again, "--head", tmp_path / "h.pt", "--json", tmp_path / "r.json")  # same content
    assert r.returncode == 0, r.stderr
    assert '"fingerprint": "' + ca.fingerprint in (tmp_path / "r.json").read_text()


def test_a_head_from_before_fingerprints_is_checked_by_names(tmp_path):
    a = make_synthetic_cache(tmp_path / "a.h5", num_classes=4, dim=8, max_per_class=30, test_per_class=3, seed=0)
    b = make_synthetic_cache(tmp_path / "b.h5", num_classes=4, dim=8, max_per_class=30, test_per_class=3, seed=1)
    assert run_cli("adapt", a, "--head", "linear", "--epochs", "1", "--out", tmp_path / "h.pt").returncode == 0
    head = torch.load(tmp_path / "h.pt", weights_only=True)
    del head["cache"]["fingerprint"]
    torch.save(head, tmp_path / "old.pt")
    assert run_cli("eval", b, "--head", tmp_path / "old.pt").returncode == 0  # the names agree: as before
    other = make_synthetic_cache(tmp_path / "c.h5", num_classes=5, dim=8, max_per_class=30, test_per_class=3)
    assert "another cache" in _one_line(run_cli("eval", other, "--head", tmp_path / "old.pt"))


# -- a full disk -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ref") / "ref.h5"
    r = run_cli(*extract_args(out, max_per_class=SMALL_MAX_PER_CLASS))
    assert r.returncode == 0, r.stderr
    return out


def _disk_full_after(monkeypatch, target, name: str, calls: int) -> None:
    """``target.name`` raises ENOSPC from its ``calls``-th call on (what a full disk does at a write)."""
    real, seen = getattr(target, name), [0]

    def write(*args, **kwargs):
        seen[0] += 1
        if seen[0] >= calls:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(target, name, write)


@pytest.mark.parametrize("where", ["rows", "final copy"])
def test_a_full_disk_stops_in_one_line_and_the_rerun_resumes(uninterrupted, tmp_path, monkeypatch, where):
    from lt_bench.features import partial, writing

    out = tmp_path / "f.h5"
    if where == "rows":  # the 4th round of train rows finds the disk full
        _disk_full_after(monkeypatch, partial.SplitWriter, "append", 4)
    else:  # every row is in the partial; the copy into OUT fills the disk
        _disk_full_after(monkeypatch, writing, "_copy", 5)
    line = _one_line(run_cli(*extract_args(out, max_per_class=SMALL_MAX_PER_CLASS)))
    assert "the disk filled up while writing" in line and "free on" in line and "rerun the same command" in line
    assert not out.exists() and partial_path(out).exists()
    assert not list(tmp_path.glob(".f.h5.*.tmp"))  # the copy's temporary is gone
    with h5py.File(partial_path(out), "r") as f:  # consistent at its last n_done
        n_done = int(f["train"].attrs["n_done"])
        if where == "rows":  # three rounds written, the split not done
            assert 0 < n_done < f["train/labels"].shape[0] and not f["train"].attrs["complete"]
        else:
            assert all(f[s].attrs["complete"] for s in ("train", "val", "test"))
    monkeypatch.undo()  # space is back
    r = run_cli(*extract_args(out, max_per_class=SMALL_MAX_PER_CLASS))
    assert r.returncode == 0 and "resuming" in r.stderr, r.stderr
    assert not partial_path(out).exists()
    assert_same_arrays(out, uninterrupted)


def test_too_little_disk_is_refused_before_any_work(tmp_path, monkeypatch):
    import shutil

    from lt_bench import resources

    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(resources.shutil, "disk_usage", lambda p: usage._replace(free=100_000))
    out = tmp_path / "f.h5"
    line = _one_line(run_cli(*extract_args(out, max_per_class=SMALL_MAX_PER_CLASS)))
    assert re.search(r"needs about [\d.]+ MB of disk, but \S+ has 100\.0 kB free", line), line
    assert list(tmp_path.iterdir()) == []  # no partial, no lock file left


@pytest.mark.parametrize("command", ["adapt", "eval", "report"])
def test_a_full_disk_at_a_write_keeps_the_previous_output(folder, tmp_path, monkeypatch, command):
    """adapt, eval and report write through ``io.atomic_path``: a disk that fills up at the write
    (injected) stops the command in one line saying what is free where, and the output of the
    previous run stays as it was, with no temporary left."""
    from lt_bench import io

    cache = folder / "f.h5"
    out = {"adapt": tmp_path / "h.pt", "eval": tmp_path / "r.json", "report": tmp_path / "t.md"}[command]
    argv = {"adapt": ["adapt", cache, "--head", "linear", "--epochs", "1", "--out", out],
            "eval": ["eval", cache, "--baseline", "ncm", "--json", out],
            "report": ["report", tmp_path / "r0.json", "-f", "md", "--out", out]}[command]
    assert run_cli("eval", cache, "--baseline", "zeroshot", "--json", tmp_path / "r0.json").returncode == 0
    assert run_cli(*argv).returncode == 0
    before = _snapshot(tmp_path)
    real = io.publish

    def full(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device", str(dst))

    monkeypatch.setattr(io, "publish", full)
    line = _one_line(run_cli(*argv))
    assert f"No space left on device: {out}" in line and "free on" in line and "unchanged" in line, line
    monkeypatch.setattr(io, "publish", real)
    assert _snapshot(tmp_path) == before
