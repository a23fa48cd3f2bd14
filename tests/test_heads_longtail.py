"""Mechanism test: on a synthetic long-tailed cache, balancing raises few-shot accuracy over plain CE."""

import pytest
import torch

from lt_bench.features import FeatureCache
from lt_bench.features.synthetic import make_synthetic_cache
from lt_bench.heads import resolve_config, train_head
from lt_bench.metrics import evaluate


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def lt_cache(tmp_path_factory):
    # 50 classes, 300..5 train images (imbalance 60), 40 test images per class: classes overlap
    # enough (noise 2.5 in 64-d) that a head trained with plain CE favours the head classes.
    p = make_synthetic_cache(tmp_path_factory.mktemp("lt") / "lt.h5", num_classes=50, dim=64, max_per_class=300,
                             imbalance=60, test_per_class=40, noise=2.5, text_noise=2.0, seed=0)
    with FeatureCache(p) as c:
        yield c


def _few(cache, posthoc_tau=0.0, **kw):
    res = train_head(cache, resolve_config("ballad", **kw), device="cpu")
    with torch.no_grad():
        logits = res.head(torch.from_numpy(cache.features("test"))).numpy()
    m = evaluate(logits, cache.labels("test"), cache.train_counts, posthoc_tau=posthoc_tau)["metrics"]
    return m


def test_balancing_raises_few_shot(lt_cache):
    plain = _few(lt_cache, sampler="instance", loss="ce")
    assert plain["many"] > plain["few"] + 30  # the imbalance shows
    results = {
        "class_aware": _few(lt_cache, sampler="class_aware", loss="ce"),
        "sqrt": _few(lt_cache, sampler="sqrt", loss="ce"),
        "logit_adjusted": _few(lt_cache, sampler="instance", loss="logit_adjusted", tau=1.0),
        "balanced_softmax": _few(lt_cache, sampler="instance", loss="balanced_softmax"),
        "posthoc": _few(lt_cache, sampler="instance", loss="ce", posthoc_tau=1.0),
    }
    for name, m in results.items():
        assert m["few"] > plain["few"] + 2, (name, m["few"], plain["few"])
    # the class-aware sampler (BALLAD's default) gains the most few-shot accuracy, and overall too
    assert results["class_aware"]["few"] > plain["few"] + 10
    assert results["class_aware"]["overall"] > plain["overall"]
