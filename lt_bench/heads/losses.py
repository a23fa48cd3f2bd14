"""Losses for trained heads: plain CE, logit-adjusted CE (Menon et al. 2021), balanced softmax, LDAM
(Cao et al. 2019), and the deferred class-balanced re-weighting (DRW) that LDAM-DRW trains with."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .config import LOSSES
from ..errors import LTBenchError, known
from ..metrics.evaluate import log_prior

LDAM_MAX_MARGIN = 0.5  # the reference's max_m (kaidic/LDAM-DRW cifar_train.py:213)
DRW_BETA = 0.9999  # class-balanced "effective number" beta (cifar_train.py:202)
DRW_START = 0.8  # DRW re-weights from this fraction of the epochs on (cifar_train.py:201: epoch // 160 of 200)


def ldam_margins(train_counts, max_margin: float = LDAM_MAX_MARGIN) -> np.ndarray:
    """Per-class margins ``m_c`` proportional to ``n_c^(-1/4)``, the largest ``max_margin``
    (``losses.py:27-28``; a class without training images counts as one image)."""
    m = 1.0 / np.sqrt(np.sqrt(np.maximum(np.asarray(train_counts, dtype=np.float64), 1.0)))
    return m * (max_margin / m.max())


def class_balanced_weights(train_counts, beta: float = DRW_BETA) -> np.ndarray:
    """Cui et al.'s weights ``(1 - beta) / (1 - beta^n_c)``, normalised to sum to C
    (``cifar_train.py:203-205``); ``beta`` 0 gives all ones."""
    n = np.maximum(np.asarray(train_counts, dtype=np.float64), 1.0)
    w = (1.0 - beta) / (1.0 - np.power(beta, n))
    return w / w.sum() * len(n)


def drw_weights(train_counts, epoch: int, epochs: int) -> np.ndarray | None:
    """DRW's class weights for 0-based ``epoch`` of ``epochs``: None (plain loss) before
    ``int(0.8 * epochs)``, the class-balanced weights from there on (the reference's
    ``betas[epoch // 160]`` at 200 epochs)."""
    return class_balanced_weights(train_counts) if epoch >= int(DRW_START * epochs) else None


class Loss:
    """``loss(logits, labels)``; ``weight`` (C,) optional per-class weights (CE's ``weight``:
    a weighted mean, as the reference), settable between epochs (DRW)."""

    def __init__(self, name: str, shift: torch.Tensor | None = None, margins: torch.Tensor | None = None):
        self.name, self.shift, self.margins, self.weight = name, shift, margins, None

    def __call__(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.shift is not None:
            logits = logits + self.shift
        if self.margins is not None:  # subtract the true class's margin from its logit only
            logits = logits - F.one_hot(labels, logits.shape[1]).to(logits.dtype) * self.margins[labels, None]
        return F.cross_entropy(logits, labels, weight=self.weight)


def make_loss(name: str, train_counts, tau: float = 1.0, device: torch.device | str = "cpu",
              scale: float = 1.0) -> Loss:
    """``loss(logits, labels)`` for training.

    - ``ce``: cross-entropy.
    - ``logit_adjusted``: CE of ``logits + tau * log prior`` (the model learns to undo the prior).
    - ``balanced_softmax``: CE of ``logits + log prior`` (Ren et al. 2020; logit_adjusted at tau 1).
    - ``ldam``: CE of ``logits - scale * m_y`` on the true class (``ldam_margins``). The head's
      logits are ``scale * cos`` (or ``scale * (W f + b)``), so this is the reference's
      ``CE(s * (cos - m_y))`` with ``s`` the head's ``scale`` (LDAM's s = 30: ``ldam_drw``).
    """
    if name not in LOSSES:
        raise LTBenchError(f"unknown loss {name!r}; known: {known(LOSSES)}")
    if name == "ce":
        return Loss(name)
    if name == "ldam":
        return Loss(name, margins=torch.as_tensor(scale * ldam_margins(train_counts), dtype=torch.float32, device=device))
    lp = torch.as_tensor(log_prior(np.asarray(train_counts)), dtype=torch.float32, device=device)
    return Loss(name, shift=(tau if name == "logit_adjusted" else 1.0) * lp)
