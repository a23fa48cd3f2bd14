"""The decoupling, adapter, cache and margin methods (issue 12): formulas against known answers,
each method doing on a small long-tailed cache what its paper says it does, the post-hoc fast
path of ``heads.methods``, and `adapt` / `eval` with the new heads and post-hoc options."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from _cli import run_cli
from lt_bench.errors import LTBenchError
from lt_bench.features import FeatureCache
from lt_bench.features.synthetic import make_synthetic_cache
from lt_bench.heads import create_head, load_head, resolve_config, train_on_arrays
from lt_bench.heads.baselines import ZeroShot
from lt_bench.heads.losses import class_balanced_weights, drw_weights, ldam_margins, make_loss
from lt_bench.heads.methods import METHODS, fit_method, list_methods, mean_class_accuracy, method_data
from lt_bench.heads.modules import BalladHead, CosineHead, LinearHead, LWSHead, ResidualAdapterHead
from lt_bench.heads.posthoc import TAU_NORM_GRID, TauNormed, ZeroShotEnsemble, tau_normalize, with_tip
from lt_bench.heads.tip import TipAdapter, cache_keys, select_shots, tip_logits
from lt_bench.metrics import evaluate

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def lt(tmp_path_factory):
    """50 classes, 300..5 train images, 2 views each, a balanced val (10) and test (40) split:
    classes overlap (noise 2.5 in 64-d) so that a plain linear probe favours the head classes."""
    p = make_synthetic_cache(tmp_path_factory.mktemp("lt") / "lt.h5", num_classes=50, dim=64, max_per_class=300,
                             imbalance=60, test_per_class=40, val_per_class=10, views=2, noise=2.5, text_noise=2.0,
                             seed=0)
    with FeatureCache(p) as c:
        yield c


@pytest.fixture(scope="module")
def data(lt):
    return method_data(lt)


def _test_metrics(lt, fitted):
    return evaluate(fitted.logits(lt.features("test")), lt.labels("test"), lt.train_counts)["metrics"]


@pytest.fixture(scope="module")
def linear(lt, data):
    return fit_method("linear", data, seed=0)


# -- formulas -----------------------------------------------------------------------------------

def test_tau_norm_formula():
    torch.manual_seed(0)
    head = LinearHead(4, 6, scale=25.0)
    x = torch.randn(5, 6)
    w = head.fc.weight.detach()
    for tau in (0.0, 0.7, 1.0, 2.0):
        expect = 25.0 * x @ (w / w.norm(dim=1, keepdim=True) ** tau).t()  # no bias
        assert torch.allclose(TauNormed(head, tau)(x), expect, atol=1e-5)
    assert torch.allclose(tau_normalize(torch.tensor([[3.0, 4.0]]), 1.0), torch.tensor([[0.6, 0.8]]))
    assert torch.allclose(tau_normalize(torch.tensor([[3.0, 4.0]]), 2.0), torch.tensor([[0.12, 0.16]]))
    cos = CosineHead(4, 6, F.normalize(torch.randn(4, 6), dim=-1) * 3)
    assert torch.allclose(TauNormed(cos, 1.0)(x), cos(x), atol=1e-5)  # tau 1 on a cosine head: itself
    assert TAU_NORM_GRID == tuple(round(0.1 * i, 1) for i in range(21))
    with pytest.raises(LTBenchError, match="linear, crt or cosine"):
        TauNormed(BalladHead(4, 6, F.normalize(torch.randn(4, 6), dim=-1)), 1.0)


def test_zero_shot_ensemble_formula():
    torch.manual_seed(0)
    t = F.normalize(torch.randn(4, 6), dim=-1)
    head = LinearHead(4, 6, scale=25.0)
    x = torch.randn(5, 6)
    zs = 25.0 * F.normalize(x, dim=-1) @ t.t()  # at the head's scale
    with torch.no_grad():
        assert torch.allclose(ZeroShotEnsemble(head, t, 0.0)(x), head(x))
        assert torch.allclose(ZeroShotEnsemble(head, t, 1.0)(x), zs, atol=1e-5)
        assert torch.allclose(ZeroShotEnsemble(head, t, 0.3)(x), 0.7 * head(x) + 0.3 * zs, atol=1e-5)
    with pytest.raises(LTBenchError, match=r"in \[0, 1\]"):
        ZeroShotEnsemble(head, t, 1.5)


def test_ldam_margins_and_loss():
    counts = np.array([1, 16, 81, 256])  # n^-1/4 = 1, 1/2, 1/3, 1/4; the largest margin 0.5
    assert np.allclose(ldam_margins(counts), [0.5, 0.25, 0.5 / 3, 0.125])
    torch.manual_seed(0)
    cos = torch.rand(6, 4) * 2 - 1
    y = torch.tensor([0, 1, 2, 3, 3, 1])
    m = torch.tensor(ldam_margins(counts), dtype=torch.float32)
    # the reference: CE(s * (cos - m_y on the true class)), s = 30; the head's logits are s * cos
    ref = F.cross_entropy(30 * (cos - F.one_hot(y, 4) * m[y, None]), y)
    assert torch.allclose(make_loss("ldam", counts, scale=30.0)(30 * cos, y), ref, atol=1e-5)


def test_drw_weights_switch_at_80_percent():
    counts = np.array([500, 50, 5])
    w = class_balanced_weights(counts)
    eff = (1 - 0.9999 ** counts) / (1 - 0.9999)  # Cui et al.'s effective numbers
    assert np.allclose(w, (1 / eff) / (1 / eff).sum() * 3) and w[2] > w[1] > w[0]
    assert np.allclose(class_balanced_weights(counts, beta=0.0), 1.0)  # the reference's beta 0 before DRW
    assert [drw_weights(counts, e, 10) is None for e in range(10)] == [True] * 8 + [False] * 2
    assert drw_weights(counts, 159, 200) is None and drw_weights(counts, 160, 200) is not None  # epoch // 160


def test_drw_changes_training_from_80_percent_only(lt):
    x, y = lt.features("train"), lt.labels("train")

    def losses(drw):
        cfg = resolve_config("cosine", loss="ldam", drw=drw, scale=30.0, epochs=5, views=False, seed=0)
        return train_on_arrays(x, y, lt.train_counts, lt.text_classifier, cfg).losses

    plain, deferred = losses(False), losses(True)
    assert plain[:4] == deferred[:4]  # epochs 1-4 identical, bit for bit
    assert plain[4] != deferred[4]  # re-weighted from epoch 5 = int(0.8 * 5) + 1


def test_tip_formula_chunks_and_zero_alpha():
    rng = np.random.default_rng(0)
    d, c = 8, 3
    keys = rng.standard_normal((7, d)).astype(np.float32)
    keys /= np.linalg.norm(keys, axis=1, keepdims=True)
    key_labels = np.array([0, 0, 1, 2, 2, 2, 1])
    text = rng.standard_normal((c, d)).astype(np.float32)
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    x = rng.standard_normal((5, d)).astype(np.float32)
    f = x / np.linalg.norm(x, axis=1, keepdims=True)
    onehot = np.eye(c)[key_labels]
    expect = 100 * f @ text.T + 1.5 * np.exp(-2.0 * (1 - f @ keys.T)) @ onehot
    args = (torch.from_numpy(x), torch.from_numpy(keys), torch.from_numpy(key_labels), torch.from_numpy(text))
    assert np.allclose(tip_logits(*args, 1.5, 2.0).numpy(), expect, atol=1e-4)
    assert torch.equal(tip_logits(*args, 1.5, 2.0, chunk=1), tip_logits(*args, 1.5, 2.0, chunk=2))
    zs = ZeroShot(text).logits(x)
    assert np.allclose(tip_logits(*args, 0.0, 2.0).numpy(), zs, atol=1e-5)  # alpha 0: zero-shot
    tip = TipAdapter(text, tip_alpha=1.5, tip_beta=2.0).fit(keys, key_labels)
    assert np.allclose(tip.logits(x), expect, atol=1e-4)
    tip.prime(x, [1.0, 2.0])  # the val search's one pass over the cache for several betas
    assert np.allclose(tip.logits(x), expect, atol=1e-4) and np.allclose(tip.logits(x, 0.0), zs, atol=1e-5)


def test_tip_cache_shots_and_view_means():
    labels = np.repeat(np.arange(3), [10, 4, 1])
    idx = select_shots(labels, 3, seed=0)
    assert np.bincount(labels[idx]).tolist() == [3, 3, 1]
    assert np.array_equal(idx, select_shots(labels, 3, seed=0)) and not np.array_equal(idx, select_shots(labels, 3, 1))
    assert len(select_shots(labels, 0, seed=0)) == 15
    rows = np.arange(2 * 4 * 3, dtype=np.float32).reshape(8, 3) + 1  # 4 images x 2 views
    offsets = 2 * np.arange(5)
    keys, klab, kidx = cache_keys(None, np.array([0, 0, 1, 1]), (rows, offsets))
    means = rows.reshape(4, 2, 3).mean(1)
    assert np.allclose(keys, means / np.linalg.norm(means, axis=1, keepdims=True))
    sub, _, sidx = cache_keys(None, np.array([0, 0, 1, 1]), (rows, offsets), shots=1, seed=0)
    assert np.allclose(sub, keys[sidx], atol=1e-6)


def test_adapter_heads_share_one_module():
    torch.manual_seed(0)
    t = F.normalize(torch.randn(5, 16), dim=-1)
    mlp = create_head("clip_adapter", num_classes=5, dim=16, text_classifier=t, alpha=0.0, scale=100.0)
    assert isinstance(mlp, ResidualAdapterHead) and isinstance(BalladHead(5, 16, t), ResidualAdapterHead)
    shapes = [tuple(p.shape) for p in mlp.adapter.parameters()]
    assert shapes == [(4, 16), (16, 4)]  # D -> D/4 -> D, no biases (CLIP-Adapter's Adapter)
    x = torch.randn(3, 16)
    with torch.no_grad():
        assert torch.allclose(mlp(x), torch.from_numpy(ZeroShot(t.numpy()).logits(x.numpy())), atol=1e-4)
        mlp.alpha = 0.2
        a = mlp.adapter(x)
        assert torch.allclose(mlp(x), 100 * F.normalize(0.2 * a + 0.8 * x, dim=-1) @ t.t(), atol=1e-4)


# -- each method does what its paper says ---------------------------------------------------------

def test_decoupling_raises_few_shot_over_the_linear_probe(lt, data, linear):
    plain = _test_metrics(lt, linear)
    assert plain["many"] > plain["few"] + 30  # the imbalance shows
    for name, gain in (("crt", 5), ("tau_norm", 15), ("lws", 15)):  # measured: +10, +22, +19 points
        m = _test_metrics(lt, fit_method(name, data, seed=0))
        assert m["few"] > plain["few"] + gain, (name, m["few"], plain["few"])


def test_tau_norm_is_post_hoc_on_the_linear_probe(lt, data, linear):
    fitted = fit_method("tau_norm", data, seed=0)
    assert fitted.posthoc["tau_norm"] in TAU_NORM_GRID and len(fitted.extra["posthoc_val"]) == 21
    best = max(fitted.extra["posthoc_val"], key=lambda r: r["val"])
    assert best["tau_norm"] == fitted.posthoc["tau_norm"]
    x = lt.features("test")
    same_linear = fitted.extra["head"]  # the linear probe, trained with the same recipe and seed
    assert torch.equal(same_linear.fc.weight, linear.extra["head"].fc.weight)
    # tau 0 is the raw weights without the bias; the fast path equals a fit with the value given
    w = same_linear.fc.weight.detach().numpy()
    assert np.allclose(fitted.with_posthoc(tau_norm=0.0).logits(x), 25 * x @ w.T, atol=1e-3)
    given = fit_method("tau_norm", data, {"tau_norm": 0.5}, seed=0)
    assert np.array_equal(given.logits(x), fitted.with_posthoc(tau_norm=0.5).logits(x))
    assert given.config["tau_norm"] == 0.5 and "posthoc_val" not in given.extra
    assert given.extra["head"] is fitted.extra["head"]  # one training per recipe and data: post-hoc trials are free
    assert given.seconds == fitted.seconds
    with pytest.raises(LTBenchError, match="no post-hoc option 'ensemble'"):
        fitted.with_posthoc(ensemble=0.5)


def test_lws_learns_scales_only(lt, data, linear):
    fitted = fit_method("lws", data, seed=0)
    head = fitted.extra["head"]
    assert isinstance(head, LWSHead) and not head.fc.weight.requires_grad
    assert torch.equal(head.fc.weight, linear.extra["head"].fc.weight)  # the frozen stage-1 probe
    scales = head.scales.detach().numpy()
    assert not np.allclose(scales, 1.0)
    counts = lt.train_counts
    assert scales[counts < 20].mean() > scales[counts > 100].mean()  # tail classes scaled up


def test_zero_shot_limits(lt, data):
    x = lt.features("test")
    zs = ZeroShot(lt.text_classifier).logits(x)
    tip = fit_method("tip_adapter", data, {"tip_alpha": 0.0, "tip_beta": 1.0})
    assert np.allclose(tip.logits(x), zs, atol=1e-3)
    adapter = fit_method("clip_adapter", data, {"alpha": 0.0, "epochs": 1}, seed=0)
    assert np.allclose(adapter.logits(x), zs, atol=1e-3)
    ens = fit_method("linear+zs", data, {"ensemble": 1.0, "epochs": 1}, seed=0)
    assert np.allclose(ens.logits(x), 25 / 100 * zs, atol=1e-3)  # zero-shot at the linear head's scale 25


def test_ensemble_w_zero_is_the_head(lt, data, linear):
    x = lt.features("test")
    ens = fit_method("linear+zs", data, seed=0)
    assert METHODS["linear+zs"].of == "linear" and 0 <= ens.posthoc["ensemble"] <= 1
    assert "linear+zs" in list_methods() and "linear+zs" not in list_methods(ensembles=False)
    assert {m for m in list_methods() if m.endswith("+zs")} == {
        m + "+zs" for m in list_methods(ensembles=False) if METHODS[m].kind == "trained" and m != "tip_adapter_f"}
    assert np.allclose(ens.with_posthoc(ensemble=0.0).logits(x), linear.logits(x), atol=1e-5)


def test_the_val_search_of_a_zero_shot_weight_scores_what_the_module_scores(data):
    """tau_norm+zs searches tau x w (231 points) from 21 head passes and one zero-shot pass: every
    point's val score equals that of the ensembled module it stands for, bit for bit."""
    fitted = fit_method("tau_norm+zs", data, seed=0)
    scores = fitted.extra["posthoc_val"]
    assert len(scores) == len(TAU_NORM_GRID) * 11
    xv, yv = data.val.features, data.val.labels
    for row in scores[::23] + [max(scores, key=lambda r: r["val"])]:
        module = fitted.with_posthoc(tau_norm=row["tau_norm"], ensemble=row["ensemble"])
        assert mean_class_accuracy(module.logits(xv), yv) == row["val"], row
    best = max(scores, key=lambda r: r["val"])
    assert fitted.posthoc == {"tau_norm": best["tau_norm"], "ensemble": best["ensemble"]}
    from lt_bench.heads.methods import Param

    space = {**METHODS["linear+zs"].space, "ensemble": Param("float", 0.0, 1.5, grid=(0.0, 1.5))}
    with pytest.raises(LTBenchError, match=r"zero-shot weight w in \[0, 1\], not 1.5"):
        fit_method("linear+zs", data, seed=0, space=space)  # lerp would extrapolate; the module refuses it


def test_tip_adapter_selects_alpha_beta_on_val(lt, data):
    fitted = fit_method("tip_adapter", data, {"shots": 16})
    assert len(fitted.extra["posthoc_val"]) == 8 * 7
    best = max(r["val"] for r in fitted.extra["posthoc_val"])
    assert mean_class_accuracy(fitted.logits(lt.features("val")), lt.labels("val")) == pytest.approx(best)
    assert fitted.config["shots"] == 16


def test_tip_adapter_f_trains_the_keys(lt, data):
    fitted = fit_method("tip_adapter_f", data, {"epochs": 3, "tip_alpha": 1.0, "tip_beta": 2.0}, seed=0)
    head = fitted.extra["head"]
    keys, _, idx = cache_keys(None, lt.labels("train"), lt.aug_features("train"), shots=16, seed=0)
    assert head.keys.shape == keys.shape and not np.allclose(head.keys.detach().numpy(), keys)
    assert fitted.config["optimizer"] == "adamw" and fitted.config["lr"] == 1e-3
    x = lt.features("test")
    assert (head.tip_alpha, head.tip_beta) == (1.17, 1.0)  # trained at the reference's init, then re-scored
    with torch.no_grad():  # the val search's scorer is the head's own formula
        assert np.allclose(fitted.logits(x), with_tip(head, 1.0, 2.0)(torch.from_numpy(x)).numpy(), atol=1e-3)


def test_ldam_drw_raises_few_shot_over_the_linear_probe(lt, data, linear):
    m = _test_metrics(lt, fit_method("ldam_drw", data, seed=0))
    assert m["few"] > _test_metrics(lt, linear)["few"] + 5


def test_bad_method_params(data):
    with pytest.raises(LTBenchError, match="has no option 'k'"):
        fit_method("crt", data, {"k": 3})
    with pytest.raises(LTBenchError, match="has no option 'tau_norm'"):
        fit_method("linear", data, {"tau_norm": 1.0})
    for name, m in METHODS.items():  # every post-hoc name is in the space, with a default
        assert set(m.posthoc) <= set(m.space) and set(m.posthoc) <= set(m.fixed), name


def test_same_seed_same_result(lt):
    x = lt.features("val")
    for name in ("lws", "tip_adapter_f"):  # fresh data each time: nothing reused, everything retrained
        a = fit_method(name, method_data(lt), {"epochs": 2}, seed=3)
        b = fit_method(name, method_data(lt), {"epochs": 2}, seed=3)
        assert a.extra["head"] is not b.extra["head"]
        assert np.array_equal(a.logits(x), b.logits(x)), name


# -- adapt / eval ------------------------------------------------------------------------------

SMALL = dict(num_classes=10, dim=16, max_per_class=150, imbalance=30, test_per_class=8, val_per_class=4, noise=2.0,
             text_noise=1.5)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli12")
    return make_synthetic_cache(d / "f.h5", views=2, **SMALL), d


def _adapt(small, name, *args):
    cache, d = small
    out = d / f"{name}.pt"
    r = run_cli("adapt", cache, "--head", *args, "--epochs", "2", "--out", out)
    assert r.returncode == 0, r.stderr
    return out


def _eval(small, *args):
    cache, d = small
    out = d / "r.json"
    r = run_cli("eval", cache, *args, "--json", out)
    assert r.returncode == 0, r.stderr
    return json.loads(out.read_text())


@pytest.mark.parametrize("head", ["crt", "lws", "clip_adapter", "tip_adapter_f"])
def test_cli_adapt_new_heads(small, head):
    path = _adapt(small, head, head)
    module, rec = load_head(path)
    assert rec["head"] == head and type(module).__name__ == {"crt": "LinearHead", "lws": "LWSHead",
                                                             "clip_adapter": "ResidualAdapterHead",
                                                             "tip_adapter_f": "TipAdapterFHead"}[head]
    res = _eval(small, "--head", path)
    assert res["head"] == head and res["metrics"]["overall"] is not None


def test_cli_lws_on_a_given_base_and_ldam_drw(small):
    base = _adapt(small, "linear", "linear")
    cache, d = small
    out = d / "lws_base.pt"
    r = run_cli("adapt", cache, "--head", "lws", "--base", base, "--epochs", "1", "--out", out)
    assert r.returncode == 0, r.stderr
    module, rec = load_head(out)
    assert rec["base"]["path"] == str(base) and rec["base"]["head"] == "linear"
    assert torch.equal(module.fc.weight, load_head(base)[0].fc.weight)
    ldam = _adapt(small, "ldam", "cosine", "--loss", "ldam", "--drw", "--scale", "30")
    assert load_head(ldam)[1]["config"]["drw"] is True
    r = run_cli("adapt", cache, "--head", "linear", "--base", base, "--out", d / "x.pt")
    assert r.returncode == 1 and "--base is for --head lws" in r.stderr
    adapter = _adapt(small, "clip_adapter_base", "clip_adapter")
    r = run_cli("adapt", cache, "--head", "lws", "--base", adapter, "--out", d / "x.pt")
    assert r.returncode == 1 and "lws scales a trained linear head" in r.stderr and not (d / "x.pt").exists()


def test_cli_eval_posthoc_steps(small):
    lin = _adapt(small, "linear", "linear")
    plain = _eval(small, "--head", lin)
    tn = _eval(small, "--head", lin, "--tau-norm", "1")
    assert tn["config"]["tau_norm"] == 1.0 and "tau_norm" not in plain["config"]
    zs = _eval(small, "--baseline", "zeroshot")
    full = _eval(small, "--head", lin, "--ensemble", "1")
    assert full["config"]["ensemble"] == 1.0 and full["per_class"] == zs["per_class"]  # w 1: zero-shot
    tip0 = _eval(small, "--baseline", "tip_adapter", "--tip-alpha", "0")
    assert tip0["per_class"] == zs["per_class"] and tip0["config"]["tip_alpha"] == 0.0
    tip = _eval(small, "--baseline", "tip_adapter", "--shots", "4", "--tip-beta", "3")
    assert tip["config"]["shots"] == 4 and tip["config"]["tip_beta"] == 3.0
    tipf = _adapt(small, "tipf", "tip_adapter_f")
    assert _eval(small, "--head", tipf, "--tip-alpha", "0")["per_class"] == zs["per_class"]
    from lt_bench.report.results import aggregate, load_result

    cache, d = small
    (d / "tn.json").write_text(json.dumps(tn))
    assert "tau-norm (tau=1)" in aggregate([load_result(d / "tn.json")])[0].label


@pytest.mark.parametrize("args,message", [
    (["--head", "{ballad}", "--tau-norm", "1"], "--tau-norm needs a linear, crt or cosine head"),
    (["--baseline", "ncm", "--ensemble", "0.5"], "post-hoc steps on a trained head"),
    (["--head", "{ballad}", "--tip-alpha", "1"], "apply to a tip_adapter_f head"),
    (["--head", "{ballad}", "--shots", "4"], "--shots sizes the tip_adapter baseline's cache"),
])
def test_cli_eval_posthoc_bad_input(small, args, message):
    cache, d = small
    ballad = d / "ballad.pt"
    if not ballad.exists():
        _adapt(small, "ballad", "ballad")
    r = run_cli("eval", cache, *[a.format(ballad=ballad) for a in args])
    assert r.returncode == 1 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
