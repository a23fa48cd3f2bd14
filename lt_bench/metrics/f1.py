"""Macro-F1."""

from __future__ import annotations

import numpy as np


def per_class_f1(preds: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """(C,) F1 = 2 TP / (2 TP + FP + FN); NaN for a class neither in labels nor in predictions."""
    preds, labels = np.asarray(preds), np.asarray(labels)
    tp = np.bincount(labels[preds == labels], minlength=num_classes).astype(np.float64)
    support = np.bincount(labels, minlength=num_classes).astype(np.float64)
    predicted = np.bincount(preds, minlength=num_classes).astype(np.float64)
    denom = support + predicted  # = 2 TP + FP + FN
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, 2 * tp / np.maximum(denom, 1), np.nan)


def macro_f1(preds: np.ndarray, labels: np.ndarray, num_classes: int) -> float:
    """Mean per-class F1 over the classes present in labels or predictions (sklearn's convention)."""
    f = per_class_f1(preds, labels, num_classes)
    f = f[~np.isnan(f)]
    return float(f.mean()) if len(f) else float("nan")
