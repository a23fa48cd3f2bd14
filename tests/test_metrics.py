"""Metrics on hand-computed predictions."""

import json

import numpy as np
import pytest

from lt_bench.metrics import (balanced_accuracy, ece, ece_from_confidence, evaluate, group_means, harmonic_mean,
                              macro_f1, per_class_accuracy, posthoc_adjust, top1, worst_class)

# train counts: class 0 and 3 many-shot, 1 medium, 2 few
TRAIN = np.array([200, 50, 5, 150])
LABELS = np.array([0, 0, 0, 0, 1, 1, 2, 2, 3, 3])
PREDS = np.array([0, 0, 0, 1, 1, 0, 1, 0, 3, 3])


def onehot_logits(preds, c=4):
    lg = np.zeros((len(preds), c), dtype=np.float32)
    lg[np.arange(len(preds)), preds] = 5.0
    return lg


def test_accuracies_by_hand():
    assert top1(PREDS, LABELS) == pytest.approx(0.6)
    pc = per_class_accuracy(PREDS, LABELS, 4)
    np.testing.assert_allclose(pc, [0.75, 0.5, 0.0, 1.0])
    assert group_means(pc, TRAIN) == pytest.approx({"many": 0.875, "medium": 0.5, "few": 0.0})
    assert balanced_accuracy(pc) == pytest.approx(0.5625)
    assert harmonic_mean(pc) == 0.0  # one class at zero
    assert harmonic_mean(np.array([0.5, 1.0])) == pytest.approx(2 / 3)
    assert worst_class(pc) == 0.0
    assert worst_class(np.array([0.5, np.nan, 0.25])) == 0.25


def test_macro_f1_by_hand():
    # class 0: TP 3, support 4, predicted 5 -> 6/9; class 1: 1, 2, 3 -> 2/5; class 2: 0; class 3: 1
    assert macro_f1(PREDS, LABELS, 4) == pytest.approx((6 / 9 + 2 / 5 + 0 + 1) / 4)


def test_empty_group_is_none_and_missing_class_skipped():
    pc = np.array([0.5, np.nan, 1.0])
    g = group_means(pc, np.array([500, 300, 200]))
    assert g == {"many": pytest.approx(0.75), "medium": None, "few": None}
    res = evaluate(onehot_logits(np.array([0, 1, 2, 2]), 3), np.array([0, 0, 2, 2]), [500, 300, 200])
    assert res["metrics"]["medium"] is None and res["metrics"]["few"] is None
    assert res["per_class"][1] is None
    json.dumps(res, allow_nan=False)  # never NaN


def test_ece_by_hand():
    conf = np.array([0.9, 0.9, 0.62, 0.3])
    correct = np.array([1, 0, 1, 1])
    # bins of width 1/15: {0.9, 0.9} acc 0.5; {0.62} acc 1; {0.3} acc 1
    expected = (2 * 0.4 + 0.38 + 0.7) / 4
    assert ece_from_confidence(conf, correct, 15) == pytest.approx(expected)
    # the same from logits: softmax rows with max probabilities 0.9, 0.9, 0.62, 0.41
    lg3 = np.log(np.array([[0.9, 0.05, 0.05], [0.05, 0.9, 0.05], [0.62, 0.2, 0.18], [0.3, 0.29, 0.41]]))
    labels = np.array([0, 0, 0, 2])
    exp2 = (2 * 0.4 + 0.38 + abs(1 - 0.41)) / 4
    assert ece(lg3, labels) == pytest.approx(exp2)


def test_evaluate_percent_and_posthoc():
    res = evaluate(onehot_logits(PREDS), LABELS, TRAIN)
    m = res["metrics"]
    assert m["overall"] == pytest.approx(60.0)
    assert (m["many"], m["medium"], m["few"]) == pytest.approx((87.5, 50.0, 0.0))
    assert res["per_class"] == pytest.approx([75.0, 50.0, 0.0, 100.0])
    assert res["group_sizes"] == {"many": 2, "medium": 1, "few": 1}
    # post-hoc: equal logits, the rare class wins after subtracting tau * log prior
    adj = posthoc_adjust(np.zeros((1, 2), np.float32), [100, 1], 1.0)
    assert adj.argmax() == 1
    assert np.array_equal(posthoc_adjust(np.ones((1, 2)), [100, 1], 0.0), np.ones((1, 2)))
    # evaluate(posthoc_tau=...) scores the adjusted logits
    lg = np.random.default_rng(0).normal(size=(len(LABELS), len(TRAIN))).astype(np.float32)
    via = evaluate(lg, LABELS, TRAIN, posthoc_tau=2.0)
    direct = evaluate(posthoc_adjust(lg, TRAIN, 2.0), LABELS, TRAIN)
    assert via["per_class"] == direct["per_class"] and via["metrics"]["overall"] == direct["metrics"]["overall"]
    assert via["per_class"] != evaluate(lg, LABELS, TRAIN)["per_class"]
