"""Accuracy-type metrics from predictions (fractions in [0, 1]).

Per-class values are NaN for a class without test images; the summaries skip those classes.
"""

from __future__ import annotations

import numpy as np


def top1(preds: np.ndarray, labels: np.ndarray) -> float:
    """Plain top-1 over all images."""
    preds, labels = np.asarray(preds), np.asarray(labels)
    return float((preds == labels).mean()) if len(labels) else float("nan")


def per_class_accuracy(preds: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """(C,) accuracy of each class (recall); NaN where the class has no test image."""
    preds, labels = np.asarray(preds), np.asarray(labels)
    total = np.bincount(labels, minlength=num_classes).astype(np.float64)
    correct = np.bincount(labels[preds == labels], minlength=num_classes).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, correct / np.maximum(total, 1), np.nan)


def _present(per_class: np.ndarray) -> np.ndarray:
    return np.asarray(per_class, dtype=np.float64)[~np.isnan(per_class)]


def balanced_accuracy(per_class: np.ndarray) -> float:
    """Mean per-class accuracy over the classes with test images."""
    v = _present(per_class)
    return float(v.mean()) if len(v) else float("nan")


def harmonic_mean(per_class: np.ndarray) -> float:
    """Harmonic mean of per-class accuracies (0 as soon as one class is at 0)."""
    v = _present(per_class)
    if not len(v):
        return float("nan")
    if (v == 0).any():
        return 0.0
    return float(len(v) / (1.0 / v).sum())


def worst_class(per_class: np.ndarray) -> float:
    """Lowest per-class accuracy."""
    v = _present(per_class)
    return float(v.min()) if len(v) else float("nan")
