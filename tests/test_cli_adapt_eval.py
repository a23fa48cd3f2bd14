"""`ltbench adapt` and `ltbench eval` end to end (in process), and every bad input they refuse."""

import json

import h5py
import pytest

from _cli import run_cli
from _env_helpers import assert_environment
from lt_bench.features.synthetic import make_synthetic_cache

SMALL = dict(num_classes=10, dim=16, max_per_class=150, imbalance=30, test_per_class=8, noise=2.0, text_noise=1.5)


@pytest.fixture(scope="module")
def caches(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    out = {"main": make_synthetic_cache(d / "main.h5", views=2, **SMALL)}
    out["model"] = make_synthetic_cache(d / "model.h5", **dict(SMALL, noise=1.0), model="other-model")
    out["dataset"] = make_synthetic_cache(d / "dataset.h5", **SMALL, dataset="other-lt")
    out["dimension"] = make_synthetic_cache(d / "dimension.h5", **dict(SMALL, dim=24))
    out["classes"] = make_synthetic_cache(d / "classes.h5", **dict(SMALL, num_classes=11))
    out["notrain"] = d / "notrain.h5"
    make_synthetic_cache(out["notrain"], **SMALL)
    with h5py.File(out["notrain"], "a") as f:
        del f["train"]
    out["incomplete"] = d / "incomplete.h5"
    make_synthetic_cache(out["incomplete"], **SMALL)
    with h5py.File(out["incomplete"], "a") as f:
        f["test"].attrs["complete"] = False
        f["test"].attrs["n_done"] = 3
    out["partial"] = d / "partial.h5"
    make_synthetic_cache(d / "partial.h5.partial", **SMALL)
    out["dir"] = d
    return out


@pytest.fixture(scope="module")
def head(caches):
    """A ballad head trained through the CLI on the main cache (shared by the mismatch tests)."""
    out = caches["dir"] / "head.pt"
    r = run_cli("adapt", caches["main"], "--head", "ballad", "--epochs", "3", "--out", out, "--seed", "1")
    assert r.returncode == 0, r.stderr
    return out, r


def test_adapt_eval_happy_path(caches, head):
    path, r = head
    assert "final loss" in r.stderr and r.stdout.strip() == str(path)
    cfg = path.with_name(path.name + ".config.toml").read_text()
    assert 'sampler = "class_aware"' in cfg and "epochs = 3" in cfg
    import torch

    assert_environment(torch.load(path, weights_only=True)["environment"], "cpu")  # the head's
    assert 'schedule = "reference"' in cfg and 'select = "best-val"' in cfg  # ballad's defaults
    assert "no val split" in r.stderr  # the main cache has none: best-val keeps the last epoch and says so
    out = caches["dir"] / "res.json"
    r = run_cli("eval", caches["main"], "--head", path, "--json", out, "--posthoc-tau", "0.5")
    assert r.returncode == 0, r.stderr
    assert "overall" in r.stdout and "few" in r.stdout
    res = json.loads(out.read_text())
    for key in ("head", "kind", "metrics", "per_class", "train_counts", "classnames", "cache", "config", "seed",
                "split", "lt_bench_version", "created", "dataset", "model", "posthoc_tau", "group_sizes",
                "environment"):
        assert key in res, key
    assert_environment(res["environment"], "cpu")
    assert res["head"] == "ballad" and res["kind"] == "trained" and res["split"] == "test"
    assert res["config"]["epochs"] == 3 and res["seed"] == 1 and res["posthoc_tau"] == 0.5
    assert set(res["metrics"]) >= {"overall", "many", "medium", "few", "macro_f1", "ece", "worst_class",
                                   "harmonic_mean", "balanced_accuracy"}
    assert len(res["per_class"]) == len(res["train_counts"]) == len(res["classnames"]) == 10
    assert res["dataset"] == "synthetic-lt" and res["cache"]["embed_dim"] == 16
    assert out.with_name("res.json.config.toml").exists()


@pytest.mark.parametrize("baseline", ["zeroshot", "ncm", "knn"])
def test_eval_baselines(caches, baseline):
    out = caches["dir"] / f"{baseline}.json"
    r = run_cli("eval", caches["main"], "--baseline", baseline, "--k", "5", "--json", out)
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    assert res["head"] == baseline and res["kind"] == "baseline" and 0 <= res["metrics"]["overall"] <= 100
    if baseline != "zeroshot":
        assert "faiss" in r.stderr and "CPU index" in r.stderr


@pytest.mark.parametrize("other,field", [("model", "model"), ("dataset", "dataset"), ("dimension", "embed_dim"),
                                         ("classes", "num_classes")])
def test_eval_refuses_head_of_another_cache(caches, head, other, field):
    r = run_cli("eval", caches[other], "--head", head[0])
    assert r.returncode == 1
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("ltbench: error: ") and "made on another cache" in last and field in last, r.stderr


# A value outside an option's choices is a usage error: exit 2, click's message naming the choices.
BAD_CHOICE = {
    "unknown head": (["adapt", "{main}", "--head", "mlp", "--out", "{dir}/x.pt"], "'ballad', 'clip_adapter', 'cosine', 'crt', 'linear'"),
    "unknown loss": (["adapt", "{main}", "--loss", "focal", "--out", "{dir}/x.pt"],
                     "'ce', 'logit_adjusted', 'balanced_softmax'"),
    "unknown sampler": (["adapt", "{main}", "--sampler", "repeat", "--out", "{dir}/x.pt"],
                        "'instance', 'class_aware', 'class_aware_replace', 'sqrt'"),
    "unknown schedule": (["adapt", "{main}", "--schedule", "step", "--out", "{dir}/x.pt"], "'reference', 'cosine'"),
    "unknown select": (["adapt", "{main}", "--select", "best", "--out", "{dir}/x.pt"], "'best-val', 'last'"),
    "unknown baseline": (["eval", "{main}", "--baseline", "svm"], "'knn', 'ncm', 'tip_adapter', 'zeroshot'"),
}
BAD = {
    "k too large": (["eval", "{main}", "--baseline", "knn", "--k", "100000"], "larger than the train set"),
    "adapt without train": (["adapt", "{notrain}", "--out", "{dir}/x.pt"], "no 'train' split"),
    "ncm without train": (["eval", "{notrain}", "--baseline", "ncm"], "needs the train split"),
    "knn without train": (["eval", "{notrain}", "--baseline", "knn"], "needs the train split"),
    "missing split": (["eval", "{main}", "--baseline", "zeroshot", "--split", "val"], "no 'val' split"),
    "incomplete split": (["eval", "{incomplete}", "--baseline", "zeroshot"], "incomplete"),
    "partial cache": (["eval", "{partial}", "--baseline", "zeroshot"], "incomplete"),
    "head and baseline": (["eval", "{main}"], "exactly one of --head"),
}


# exit 2 for a usage error (a value outside the choices), 1 for a runtime error
CASES = {**{k: (*v, 2) for k, v in BAD_CHOICE.items()}, **{k: (*v, 1) for k, v in BAD.items()}}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input(caches, case):
    args, expected, code = CASES[case]
    fmt = {k: str(v) for k, v in caches.items()}
    r = run_cli(*[a.format(**fmt) for a in args])
    assert r.returncode == code, (r.returncode, r.stderr)
    assert expected in r.stderr and "Traceback" not in r.stderr
    if code == 1:  # one line says what to fix
        assert r.stderr.strip().splitlines()[-1].startswith("ltbench: error: "), r.stderr
    assert not (caches["dir"] / "x.pt").exists()
