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


def max_softmax(logits: np.ndarray, rows: int | None = None) -> np.ndarray:
    """(N,) max softmax probability, ``1 / sum exp(z - max z)`` (float64), ``rows`` rows at a
    time (default: ~32 MB of float64): the whole softmax of iNaturalist's 24,426 x 8,142 test
    logits would be 1.6 GB a copy."""
    logits = np.asarray(logits)
    rows = rows or max(1, (1 << 22) // max(1, logits.shape[1]))
    out = np.empty(len(logits), dtype=np.float64)
    for s in range(0, len(logits), rows):
        z = logits[s:s + rows].astype(np.float64)
        z -= z.max(axis=1, keepdims=True)
        out[s:s + rows] = 1.0 / np.exp(z, out=z).sum(axis=1)
    return out


def ece(logits: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """ECE of the max softmax probability against top-1 correctness (the argmax of the logits)."""
    logits = np.asarray(logits)
    return ece_from_confidence(max_softmax(logits), logits.argmax(axis=1) == np.asarray(labels), bins)
