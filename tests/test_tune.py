"""`lt_bench.tune`: selection on val only, resumable studies, seeds on test, the leaderboard."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from _cli import run_cli
from lt_bench.errors import CacheError, LTBenchError
from lt_bench.features import FeatureCache
from lt_bench.features.synthetic import make_synthetic_cache
from lt_bench.heads.methods import METHODS, get_method
from lt_bench.tune import (bootstrap_ci, leaderboard, override_space, read_method_data, select, tune,
                           tuning_data)
from lt_bench.tune.study import STUDY_DB


@pytest.fixture(scope="module")
def caches(tmp_path_factory, one_torch_thread):
    d = tmp_path_factory.mktemp("tune")
    kw = dict(num_classes=5, dim=16, max_per_class=40, imbalance=10, test_per_class=8)
    return {"val": make_synthetic_cache(d / "val.h5", val_per_class=4, views=2, **kw),
            "noval": make_synthetic_cache(d / "noval.h5", **kw),
            "other": make_synthetic_cache(d / "other.h5", val_per_class=4, seed=1, **kw)}


def _trials(out):
    import optuna

    return optuna.load_study(study_name=None, storage=f"sqlite:///{out / STUDY_DB}").trials


def test_tune_selects_on_val_fits_seeds_and_a_rerun_reuses_everything(caches, tmp_path):
    out = tmp_path / "t"
    with FeatureCache(caches["val"]) as c:
        r = tune(c, "logit_adjusted", out, trials=3, seeds=2)
    s = json.loads((out / "tune.json").read_text())
    assert s["method"] == "logit_adjusted" and s["val_source"] == "val" and s["trials"] == 3
    assert set(s["selected"]) == {"lr", "tau"} and s["selected"] == r.selection.params
    assert s["seeds"] == [0, 1] and len(s["train_seconds"]) == 2 and all(t > 0 for t in s["train_seconds"])
    lo, hi = s["overall_ci95"]
    assert lo <= float(np.mean(s["test"]["overall"])) <= hi
    recs = [json.loads((out / p).read_text()) for p in s["results"]]
    assert [x["seed"] for x in recs] == [0, 1] and all(x["split"] == "test" for x in recs)
    assert all(x["tune"]["params"] == s["selected"] and x["tune"]["val_score"] == s["val_score"] for x in recs)
    assert all(x["config"]["loss"] == "logit_adjusted" and x["config"]["lr"] == s["selected"]["lr"] for x in recs)
    # the selection is the best completed trial of the study
    trials = [t for t in _trials(out) if t.value is not None]
    assert len(trials) == 3 and max(t.value for t in trials) == s["val_score"]

    mtimes = {p: (out / p).stat().st_mtime_ns for p in s["results"]}
    with FeatureCache(caches["val"]) as c:
        again = tune(c, "logit_adjusted", out, trials=3, seeds=2)
    assert again.selection.reused == 3 and again.selection.trial_seconds == []  # no trial ran
    assert {p: (out / p).stat().st_mtime_ns for p in s["results"]} == mtimes  # no seed refitted
    with FeatureCache(caches["val"]) as c:
        more = tune(c, "logit_adjusted", out, trials=5, seeds=2)  # a bigger budget adds only the missing trials
    assert more.selection.reused == 3 and len(more.selection.trial_seconds) == 2 and more.selection.trials == 5


def test_same_seed_same_result(caches, tmp_path):
    runs = []
    for name in ("a", "b"):
        with FeatureCache(caches["val"]) as c:
            runs.append(tune(c, "ballad", tmp_path / name, trials=2, seeds=1, sampler="tpe").summary)
    assert runs[0]["selected"] == runs[1]["selected"] and runs[0]["test"] == runs[1]["test"]


class _Spy:
    """Records which splits a FeatureCache reads, in order, and when selection ended."""

    def __init__(self, monkeypatch):
        import lt_bench.tune.study as study

        self.events = []
        for name in ("features", "labels", "aug_features"):
            orig = getattr(FeatureCache, name)
            monkeypatch.setattr(FeatureCache, name, self._wrap(orig))
        select_orig = study.select

        def select_spy(*a, **k):
            out = select_orig(*a, **k)
            self.events.append("selection done")
            return out

        monkeypatch.setattr(study, "select", select_spy)

    def _wrap(self, orig):
        def read(cache, split, *a, **k):
            self.events.append(split)
            return orig(cache, split, *a, **k)

        return read


@pytest.mark.parametrize("which", ["val", "noval"])
def test_tuning_never_reads_test(caches, tmp_path, monkeypatch, which):
    spy = _Spy(monkeypatch)
    with FeatureCache(caches[which]) as c:
        tune(c, "knn", tmp_path / "t", trials=2, seeds=1)
    done = spy.events.index("selection done")
    assert "test" not in spy.events[:done] and "test" in spy.events[done:], spy.events


def test_a_cache_with_an_unreadable_test_split_still_tunes(caches, tmp_path):
    """Selection does not touch test: with test's features damaged (NaN), every trial completes
    and only the final evaluation, after selection, refuses the cache."""
    bad = tmp_path / "bad.h5"
    bad.write_bytes(caches["val"].read_bytes())
    with h5py.File(bad, "r+") as f:
        f["test/features"][0, 0] = np.nan
    out = tmp_path / "t"
    with FeatureCache(bad) as c:
        with pytest.raises(CacheError, match="split 'test'"):
            tune(c, "ballad", out, trials=2, seeds=1)
        data, source = tuning_data(read_method_data(c))
        sel = select(data, get_method("ballad"), get_method("ballad").space, out, trials=2, sampler="grid")
    assert len([t for t in _trials(out) if t.value is not None]) == 2 and sel.reused == 2


def test_no_val_split_tunes_on_a_stratified_holdout_of_train_and_fits_on_all_of_it(caches, tmp_path):
    from lt_bench.finetune.data import holdout_indices
    from lt_bench.tune.data import final_data

    with FeatureCache(caches["noval"]) as c:
        full = read_method_data(c)
        r = tune(c, "ncm", tmp_path / "t", trials=1, seeds=1)
    tuning, source = tuning_data(full)
    keep, held = holdout_indices(full.train.labels, 0.1)
    assert source == "train holdout" and r.summary["val_source"] == "train holdout"
    np.testing.assert_array_equal(tuning.val.labels, full.train.labels[held])
    np.testing.assert_array_equal(tuning.train.features, full.train.features[keep])
    assert set(np.unique(tuning.val.labels)) == set(range(5))  # every class held out from
    assert final_data(full, source).train.features.shape == full.train.features.shape and final_data(
        full, source).val is None


def test_the_holdout_keeps_each_images_views(caches):
    from lt_bench.tune.data import _subset

    with FeatureCache(caches["val"]) as c:
        split = read_method_data(c).train
    rows = np.array([3, 0, 7])
    sub = _subset(split, rows)
    for j, i in enumerate(rows):
        a, b = split.aug.offsets[i], split.aug.offsets[i + 1]
        np.testing.assert_array_equal(sub.aug.rows[sub.aug.offsets[j]:sub.aug.offsets[j + 1]], split.aug.rows[a:b])


@pytest.mark.parametrize("sampler,trials", [("grid", 4), ("tpe", 4), ("tpe", 13)])
def test_an_interrupted_tune_resumes_with_the_points_an_uninterrupted_one_runs(caches, tmp_path, monkeypatch,
                                                                               sampler, trials):
    """Trials run in memory and each finished one is stored at once: an interruption in the 3rd
    trial keeps the first two, and the rerun runs the rest of the search as an uninterrupted one
    does: the grid in the same order, and TPE (its 10 random start-up trials and the modelled
    ones after them) the same points."""
    import lt_bench.tune.study as study

    kw = dict(trials=trials, seeds=1, sampler=sampler)
    with FeatureCache(caches["val"]) as c:
        whole = tune(c, "linear", tmp_path / "whole", **kw)
    calls = []
    real = study.fit_method

    def dies_on_the_third(*a, **k):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # as a kill would, mid-trial
        return real(*a, **k)

    monkeypatch.setattr(study, "fit_method", dies_on_the_third)
    with FeatureCache(caches["val"]) as c, pytest.raises(KeyboardInterrupt):
        tune(c, "linear", tmp_path / "cut", **kw)
    assert [t.number for t in _trials(tmp_path / "cut")] == [0, 1]  # finished ones stored, the cut one not
    monkeypatch.setattr(study, "fit_method", real)
    with FeatureCache(caches["val"]) as c:
        resumed = tune(c, "linear", tmp_path / "cut", **kw)
    assert resumed.selection.reused == 2 and len(resumed.selection.trial_seconds) == trials - 2
    assert [(t.params, t.value) for t in _trials(tmp_path / "cut")] == [(t.params, t.value)
                                                                         for t in _trials(tmp_path / "whole")]
    assert resumed.summary["test"] == whole.summary["test"]


def test_space_overrides(caches):
    m = get_method("logit_adjusted")
    space = override_space(m, ["lr=0.01:0.1", "tau=1,2"])
    assert (space["lr"].low, space["lr"].high, space["lr"].log) == (0.01, 0.1, True)
    assert space["tau"].values() == (1.0, 2.0)
    with pytest.raises(LTBenchError, match="has no hyperparameter 'alpha'"):
        override_space(m, ["alpha=0.1:0.2"])
    with pytest.raises(LTBenchError, match="NAME=LOW:HIGH"):
        override_space(m, ["lr"])
    with pytest.raises(LTBenchError, match="log scale"):
        override_space(m, ["lr=0:1"])


def test_bootstrap_interval_is_seeded_and_narrows_with_more_images():
    rng = np.random.default_rng(0)
    small = rng.random((3, 200)) < 0.7
    large = rng.random((3, 5000)) < 0.7
    a, b = bootstrap_ci(small, seed=1), bootstrap_ci(small, seed=1)
    assert a == b and a[0] < 100 * small.mean() < a[1]
    lo, hi = bootstrap_ci(large, seed=1)
    assert hi - lo < (a[1] - a[0]) / 3


def test_leaderboard_tables_every_method_and_refuses_another_caches_folder(caches, tmp_path):
    out = tmp_path / "lb"
    with FeatureCache(caches["val"]) as c:
        board = leaderboard(c, out, methods="ncm,knn,linear", trials=2, seeds=2)
    assert [r.method for r in board.user_rows] == sorted(["ncm", "knn", "linear"],
                                                         key=lambda m: -board.tunes[m].summary["test"]["overall"][0])
    for f in ("leaderboard.md", "leaderboard.tex", "leaderboard.csv", "leaderboard.json", "per_class_accuracy.png"):
        assert (out / f).is_file(), f
    md = (out / "leaderboard.md").read_text()
    assert "| ncm | 2 |" in md and "k=" in md and "95% CI" in md
    assert (out / "leaderboard.csv").read_text().splitlines()[0].startswith("method,n,overall,overall_std")
    assert "\\toprule" in (out / "leaderboard.tex").read_text()
    with FeatureCache(caches["other"]) as c:
        with pytest.raises(LTBenchError, match="another cache"):
            leaderboard(c, out, methods="ncm", trials=1, seeds=1)


def test_every_registered_method_declares_a_space_the_tuner_can_sample():
    """New methods join the leaderboard by their METHODS entry alone."""
    import optuna

    from lt_bench.tune.space import grid_size, suggest

    for m in METHODS.values():
        study = optuna.create_study(direction="maximize")
        trial = study.ask()
        params = suggest(trial, m.space)
        assert set(params) == set(m.space) and grid_size(m.space) >= 1, m.name


def test_cli_tune_and_leaderboard(caches, tmp_path):
    r = run_cli("tune", caches["val"], "--method", "knn", "--out", tmp_path / "t", "--trials", "2", "--seeds", "1")
    assert r.returncode == 0, r.stderr
    assert "knn" in r.stdout and (tmp_path / "t" / "config.toml").is_file()
    r = run_cli("leaderboard", caches["noval"], "--out", tmp_path / "lb", "--methods", "zeroshot,ncm", "--seeds", "2",
                "-f", "csv")
    assert r.returncode == 0, r.stderr
    rows = r.stdout.splitlines()
    assert rows[0].startswith("method,") and {x.split(",")[0] for x in rows[1:3]} == {"zeroshot", "ncm"}


def test_leaderboard_shows_the_published_rows_of_its_dataset_and_backbone(tmp_path):
    cache = make_synthetic_cache(tmp_path / "inlt.h5", num_classes=5, dim=8, max_per_class=30, test_per_class=3,
                                 val_per_class=2, dataset="imagenet_lt", model="ViT-B-16", pretrained="openai")
    with FeatureCache(cache) as c:
        board = leaderboard(c, tmp_path / "lb", methods="ncm", trials=1, seeds=1)
    published = [r for r in board.rows if r.published]
    assert any(r.method == "BALLAD" and r.cells["overall"][0] == 75.7 for r in published)
    assert board.rows.index(published[0]) == len(board.user_rows)  # below the tuned rows
    md = (tmp_path / "lb" / "leaderboard.md").read_text()
    assert "published: Ma et al. 2021" in md and md.rstrip().endswith("-->") and "made by lt_bench" in md


def test_post_hoc_values_are_selected_inside_each_trial_not_by_optuna(caches, tmp_path):
    """tau_norm's tau is searched over its whole grid by every trial's fit (no retraining), so the
    study searches lr only and the selection carries the tau its best trial chose on val."""
    out = tmp_path / "tau"
    with FeatureCache(caches["val"]) as c:
        r = tune(c, "tau_norm", out, trials=2, seeds=1)
    trials = [t for t in _trials(out) if t.value is not None]
    assert len(trials) == 2 and all(set(t.params) == {"lr"} for t in trials)
    best = max(trials, key=lambda t: t.value)
    grid = get_method("tau_norm").space["tau_norm"].values()
    assert r.selection.params == {**best.params, "tau_norm": best.user_attrs["posthoc"]["tau_norm"]}
    assert r.selection.params["tau_norm"] in grid
    rec = json.loads((out / r.summary["results"][0]).read_text())
    assert rec["config"]["tau_norm"] == r.selection.params["tau_norm"]  # the final fit applies it as given


def test_a_leaderboard_trains_each_family_once_with_the_results_of_separate_tunes(caches, tmp_path, monkeypatch):
    """linear, tau_norm and linear+zs train the same heads: run one after another (whatever order
    they are asked in), each recipe trains once, and every result equals its method's own tune."""
    import lt_bench.heads.methods as methods_mod
    import lt_bench.heads.train as train_mod
    from lt_bench.tune.board import run_order

    names = ["linear", "ncm", "linear+zs", "cosine", "tau_norm"]
    assert run_order(names) == ["linear", "linear+zs", "tau_norm", "ncm", "cosine"]
    with FeatureCache(caches["val"]) as c:
        one = methods_mod._head_bytes(methods_mod.fit_method("linear", read_method_data(c), seed=0).extra["train_result"])
    # room for one family's heads (3 trials + 1 more seed), not two: only the run order saves retraining
    monkeypatch.setattr(methods_mod, "KEEP_TRAINED_BYTES", 4 * one)
    trained, real = [], train_mod.train_on_arrays

    def counting(*a, **k):
        trained.append(k["cfg"] if "cfg" in k else a[4])
        return real(*a, **k)

    monkeypatch.setattr(train_mod, "train_on_arrays", counting)
    with FeatureCache(caches["val"]) as c:
        board = leaderboard(c, tmp_path / "lb", methods=",".join(names), trials=3, seeds=2)
    recipes = [json.dumps(cfg.to_dict(), sort_keys=True) for cfg in trained]
    assert len(recipes) == len(set(recipes))  # no recipe trained twice
    heads = {cfg.head for cfg in trained}
    assert heads == {"linear", "cosine"}
    # 3 trials + a second seed (the first is the selected trial's fit) per family
    assert sum(cfg.head == "linear" for cfg in trained) <= 4 and sum(cfg.head == "cosine" for cfg in trained) <= 4
    for name in ("linear+zs", "tau_norm"):
        with FeatureCache(caches["val"]) as c:
            alone = tune(c, name, tmp_path / name, trials=3, seeds=2)
        assert alone.summary["selected"] == board.tunes[name].summary["selected"]
        assert alone.summary["test"] == board.tunes[name].summary["test"]


def test_a_study_of_the_plain_tpe_stream_is_refused_not_resumed_with_other_draws(caches, tmp_path):
    import optuna

    from lt_bench.tune.study import _storage

    out = tmp_path / "t"
    with FeatureCache(caches["val"]) as c:
        tune(c, "linear", out, trials=2, seeds=1, sampler="tpe")
    optuna.load_study(study_name="linear", storage=_storage(out)).set_user_attr("sampler", "tpe")  # as recorded before
    with FeatureCache(caches["val"]) as c, pytest.raises(LTBenchError, match=r"another search \(sampler differ"):
        tune(c, "linear", out, trials=3, seeds=1, sampler="tpe")
