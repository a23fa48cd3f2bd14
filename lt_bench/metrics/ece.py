"""Expected calibration error (Guo et al. 2017) on the softmax of the logits."""

from __future__ import annotations

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def ece_from_confidence(confidence: np.ndarray, correct: np.ndarray, bins: int = 15) -> float:
    """ECE with ``bins`` equal-width bins (lo, hi] over confidence: sum_b |acc_b - conf_b| n_b / N."""
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    if not len(confidence):
        return float("nan")
    idx = np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)
    conf_sum = np.bincount(idx, weights=confidence, minlength=bins)
    acc_sum = np.bincount(idx, weights=correct, minlength=bins)
    return float(np.abs(acc_sum - conf_sum).sum() / len(confidence))


def ece(logits: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """ECE of the max softmax probability against top-1 correctness."""
    p = softmax(logits)
    return ece_from_confidence(p.max(axis=1), p.argmax(axis=1) == np.asarray(labels), bins)
