"""Bad input to `ltbench tune` / `ltbench leaderboard`: a one-line error that says what to fix,
exit 1 or 2, no traceback, and every file that existed before byte-for-byte unchanged."""

from __future__ import annotations

import pytest

from _cli import check_refused, run_cli
from lt_bench.features.synthetic import make_synthetic_cache


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("badtune")
    kw = dict(num_classes=4, dim=8, max_per_class=30, test_per_class=3, val_per_class=2)
    make_synthetic_cache(d / "f.h5", **kw)
    make_synthetic_cache(d / "g.h5", seed=1, **kw)
    make_synthetic_cache(d / "single.h5", num_classes=4, dim=8, train_counts=[1, 1, 1, 1], test_per_class=3)
    make_synthetic_cache(d / "notest.h5", num_classes=4, dim=8, max_per_class=30, test_per_class=0, val_per_class=2)
    assert run_cli("tune", d / "f.h5", "--method", "ncm", "--out", d / "t", "--seeds", "1").returncode == 0
    assert run_cli("leaderboard", d / "f.h5", "--methods", "ncm", "--out", d / "lb", "--seeds", "1").returncode == 0
    (d / "notes").mkdir()
    (d / "notes" / "keep.txt").write_text("mine")
    return d


# case -> (argv with {d} for the folder, exit code, words the message must hold)
CASES = {
    "unknown method": (["tune", "{d}/f.h5", "--method", "nope", "--out", "{d}/x"], 1, "unknown method 'nope'"),
    "space of a hyperparameter the method lacks": (
        ["tune", "{d}/f.h5", "--method", "linear", "--space", "alpha=0.1:0.5", "--out", "{d}/x"], 1,
        "has no hyperparameter 'alpha'"),
    "space of a method without hyperparameters": (
        ["tune", "{d}/f.h5", "--method", "ncm", "--space", "k=1:5", "--out", "{d}/x"], 1, "has no hyperparameter"),
    "space malformed": (["tune", "{d}/f.h5", "--method", "linear", "--space", "lr", "--out", "{d}/x"], 1,
                        "NAME=LOW:HIGH"),
    "space not a number": (["tune", "{d}/f.h5", "--method", "linear", "--space", "lr=a:b", "--out", "{d}/x"], 1,
                           "not a number"),
    "trials 0": (["tune", "{d}/f.h5", "--method", "linear", "--trials", "0", "--out", "{d}/x"], 1, "--trials"),
    "seeds 0": (["leaderboard", "{d}/f.h5", "--seeds", "0", "--out", "{d}/x"], 1, "--seeds"),
    "leaderboard trials 0": (["leaderboard", "{d}/f.h5", "--trials", "0", "--out", "{d}/x"], 1, "--trials"),
    "no val and nothing to hold out": (["tune", "{d}/single.h5", "--method", "ncm", "--out", "{d}/x"], 1,
                                       "no val split"),
    "no test split": (["tune", "{d}/notest.h5", "--method", "ncm", "--out", "{d}/x"], 1, "no test split"),
    "tune folder of another cache": (["tune", "{d}/g.h5", "--method", "ncm", "--out", "{d}/t"], 1, "another cache"),
    "leaderboard folder of another cache": (["leaderboard", "{d}/g.h5", "--methods", "ncm", "--out", "{d}/lb"], 1,
                                            "another cache"),
    "leaderboard into a tune folder": (["leaderboard", "{d}/f.h5", "--methods", "ncm", "--out", "{d}/t"], 1,
                                       "tune folder"),
    "leaderboard into a folder of other files": (["leaderboard", "{d}/f.h5", "--out", "{d}/notes"], 1,
                                                 "not empty"),
    "leaderboard unknown method": (["leaderboard", "{d}/f.h5", "--methods", "ncm,nope", "--out", "{d}/x"], 1,
                                   "unknown method 'nope'"),
    "unknown sampler": (["tune", "{d}/f.h5", "--method", "ncm", "--sampler", "random", "--out", "{d}/x"], 2,
                        "--sampler"),
    "tune --out the cache": (["tune", "{d}/f.h5", "--method", "ncm", "--out", "{d}/f.h5"], 1, "is the input"),
    "missing --method": (["tune", "{d}/f.h5", "--out", "{d}/x"], 2, "--method"),
    "missing --out": (["leaderboard", "{d}/f.h5"], 2, "--out"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_tune_input_costs_nothing(files, case):
    check_refused(files, *CASES[case])
