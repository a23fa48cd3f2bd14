"""A damaged feature cache as a hostile user gives it (issue 11, item 1): every command that opens
it exits 1 with one line naming the file, the offending thing and what to do, no traceback, and
every file that existed before is byte-for-byte unchanged (nothing is added either).

Each case is a copy of a good synthetic cache with one thing broken through h5py."""

from __future__ import annotations


import h5py
import numpy as np
import pytest

from _cli import run_cli, snapshot as _snapshot
from lt_bench.features.cache import STR
from lt_bench.features.synthetic import make_synthetic_cache

C = 4  # classes of the synthetic cache


def _delete(name):
    def f(h):
        del h[name]
    return f


def _attr(key, value):
    def f(h):
        h.attrs[key] = value
    return f


def _set(name, index, value):
    def f(h):
        a = h[name][()]
        a[index] = value
        h[name][...] = a
    return f


def _set_values(name, count, value):
    """The first ``count`` values of ``name`` (row-major) set to ``value``."""
    def f(h):
        a = h[name][()]
        a.reshape(-1)[:count] = value
        h[name][...] = a
    return f


def _empty_test(h):
    del h["test"]
    g = h.create_group("test")
    g.create_dataset("features", shape=(0, h.attrs["embed_dim"]), dtype=np.float16)
    g.create_dataset("labels", shape=(0,), dtype=np.int64)
    g.create_dataset("paths", shape=(0,), dtype=STR)
    g.attrs["n_done"], g.attrs["complete"] = 0, True


def _float32_test_features(h):
    x = h["test/features"][()]
    del h["test/features"]
    h.create_dataset("test/features", data=x.astype(np.float32))


ZEROSHOT = ["eval", "{c}", "--baseline", "zeroshot"]
NCM = ["eval", "{c}", "--baseline", "ncm"]
ADAPT = ["adapt", "{c}", "--head", "linear", "--epochs", "1", "--out", "{d}/out.pt"]

# case -> (how the cache is broken, argv with {c} for the cache and {d} for the folder, words the line holds)
CASES = {
    "missing /classes/names": (_delete("classes/names"), ZEROSHOT, ["/classes/names", "missing"]),
    "missing /text/classifier": (_delete("text/classifier"), ZEROSHOT, ["/text/classifier", "missing"]),
    "format_version not an integer": (_attr("format_version", "two"), ZEROSHOT, ["format_version", "not an integer"]),
    "format_version a float": (_attr("format_version", 2.0), NCM, ["format_version", "not an integer"]),
    "config not JSON": (_attr("config", "{epochs: ,"), ZEROSHOT, ["config", "not valid JSON"]),
    "train label out of range": (_set("train/labels", 0, C), ADAPT, ["split 'train'", "outside 0..3", f"e.g. {C}"]),
    "train label negative": (_set("train/labels", slice(0, 2), -1), ADAPT,
                             ["split 'train'", "2 labels outside 0..3", "e.g. -1"]),
    "test label out of range": (_set("test/labels", 3, 99), ZEROSHOT, ["split 'test'", "1 labels outside", "99"]),
    "NaN in every test feature": (_set("test/features", slice(None), np.nan), ZEROSHOT,
                                  ["split 'test'", f"{3 * C} rows with NaN or inf", "re-extract"]),
    "inf in some test rows": (_set("test/features", (slice(2, 7), 0), np.inf), ZEROSHOT,
                              ["split 'test'", "5 rows with NaN or inf"]),
    "NaN train rows for ncm": (_set("train/features", (slice(0, 3), 1), np.nan), NCM,
                               ["split 'train'", "3 rows with NaN or inf"]),
    "NaN train rows for a trained head": (_set("train/features", (slice(0, 3), 1), np.nan), ADAPT,
                                          ["split 'train'", "3 rows with NaN or inf"]),
    "test split of 0 rows": (_empty_test, ZEROSHOT, ["split 'test'", "0 rows"]),
    # 200 train values (25 rows of 8) flipped, as issue 11 found them trained and evaluated on
    "200 train values inf, adapt": (_set_values("train/features", 200, np.inf), ADAPT,
                                    ["split 'train'", "25 rows with NaN or inf"]),
    "200 train values NaN, ncm": (_set_values("train/features", 200, np.nan), NCM,
                                  ["split 'train'", "25 rows with NaN or inf"]),
    "200 train values huge, adapt": (_set_values("train/features", 200, 6e4), ADAPT,
                                     ["split 'train'", "25 rows with NaN or inf or values outside [-1, 1]"]),
    "200 train values huge, ncm": (_set_values("train/features", 200, 6e4), NCM,
                                   ["split 'train'", "25 rows", "outside [-1, 1]"]),
    "wrong dtype of test features": (_float32_test_features, ZEROSHOT,
                                     ["/test/features", "dtype float32", "float16"]),
    "negative train count": (_set("classes/train_counts", 0, -5), ZEROSHOT, ["/classes/train_counts", "negative"]),
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("badcache")
    good = make_synthetic_cache(d / "good.h5", num_classes=C, dim=8, max_per_class=20, test_per_class=3)
    for i, (break_it, _, _) in enumerate(CASES.values()):
        p = d / f"case{i}.h5"
        p.write_bytes(good.read_bytes())
        with h5py.File(p, "r+") as h:
            break_it(h)
    return d


def test_the_good_cache_works(folder):
    assert run_cli("eval", folder / "good.h5", "--baseline", "ncm").returncode == 0


@pytest.mark.parametrize("case", list(CASES))
def test_bad_cache_is_refused_in_one_line(folder, case):
    i = list(CASES).index(case)
    _, argv, words = CASES[case]
    cache = folder / f"case{i}.h5"
    before = _snapshot(folder)
    r = run_cli(*[a.format(c=cache, d=folder) for a in argv])
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("ltbench: error: ")]
    assert len(errors) == 1 and r.stderr.strip().splitlines()[-1] == errors[0], r.stderr
    line = errors[0]
    assert str(cache) in line and all(w in line for w in words), line
    assert _snapshot(folder) == before  # nothing touched, nothing added
