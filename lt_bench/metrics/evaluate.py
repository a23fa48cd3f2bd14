"""Evaluate logits on a split: every metric as a dict.

``evaluate(logits, labels, train_counts)`` returns (all values in **percent**, ECE included;
``None`` where undefined, e.g. an empty shot group; never NaN)::

    {"metrics": {"overall", "many", "medium", "few", "balanced_accuracy", "macro_f1",
                 "harmonic_mean", "worst_class", "ece"},
     "per_class": [C per-class accuracies, None for a class without test images],
     "group_sizes": {"many", "medium", "few"}  # number of classes
     "num_images": N}

The result file built from it (``ltbench eval --json``) is written and read in one place,
``lt_bench.report.results``.
"""

from __future__ import annotations

import math

import numpy as np

from .accuracy import balanced_accuracy, harmonic_mean, per_class_accuracy, top1, worst_class
from .ece import ece
from .f1 import macro_f1
from .groups import group_means, group_sizes

METRIC_KEYS = ("overall", "many", "medium", "few", "balanced_accuracy", "macro_f1", "harmonic_mean",
               "worst_class", "ece")


def log_prior(train_counts) -> np.ndarray:
    """log of the training class prior; a class without training images counts as one image."""
    c = np.maximum(np.asarray(train_counts, dtype=np.float64), 1.0)
    return np.log(c / c.sum())


def posthoc_adjust(logits: np.ndarray, train_counts, tau: float) -> np.ndarray:
    """Post-hoc logit adjustment (Menon et al. 2021): ``logits - tau * log prior``."""
    if not tau:
        return logits
    return (np.asarray(logits) - tau * log_prior(train_counts)[None, :]).astype(np.asarray(logits).dtype)


def _pct(v: float | None) -> float | None:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return 100.0 * float(v)


def evaluate(logits: np.ndarray, labels: np.ndarray, train_counts, posthoc_tau: float = 0.0,
             ece_bins: int = 15) -> dict:
    """All metrics of ``logits`` (N, C) against ``labels`` (N,), in percent (see module docstring).

    Args:
        logits: class scores; argmax is the prediction, softmax feeds ECE.
        labels: true classes.
        train_counts: training images per class (defines the shot groups and the prior).
        posthoc_tau: subtract ``tau * log prior`` from the logits first (0: off).
        ece_bins: equal-width confidence bins of ECE.
    """
    logits = np.asarray(logits)
    labels = np.asarray(labels, dtype=np.int64)
    num_classes = logits.shape[1]
    if len(train_counts) != num_classes:
        raise ValueError(f"{num_classes} logit columns but {len(train_counts)} train counts")
    logits = posthoc_adjust(logits, train_counts, posthoc_tau)
    preds = logits.argmax(axis=1)
    pc = per_class_accuracy(preds, labels, num_classes)
    metrics = {"overall": top1(preds, labels), **group_means(pc, train_counts),
               "balanced_accuracy": balanced_accuracy(pc), "macro_f1": macro_f1(preds, labels, num_classes),
               "harmonic_mean": harmonic_mean(pc), "worst_class": worst_class(pc),
               "ece": ece(logits, labels, ece_bins)}
    return {"metrics": {k: _pct(metrics[k]) for k in METRIC_KEYS},
            "per_class": [_pct(v) for v in pc.tolist()],
            "group_sizes": group_sizes(train_counts),
            "num_images": int(len(labels))}

