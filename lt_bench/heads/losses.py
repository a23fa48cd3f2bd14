"""Losses for trained heads: plain CE, logit-adjusted CE (Menon et al. 2021), balanced softmax."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .config import LOSSES
from ..errors import LTBenchError, known
from ..metrics.evaluate import log_prior



def make_loss(name: str, train_counts, tau: float = 1.0,
              device: torch.device | str = "cpu") -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``loss(logits, labels)`` for training.

    - ``ce``: cross-entropy.
    - ``logit_adjusted``: CE of ``logits + tau * log prior`` (the model learns to undo the prior).
    - ``balanced_softmax``: CE of ``logits + log prior`` (Ren et al. 2020; logit_adjusted at tau 1).
    """
    if name not in LOSSES:
        raise LTBenchError(f"unknown loss {name!r}; known: {known(LOSSES)}")
    if name == "ce":
        return F.cross_entropy
    lp = torch.as_tensor(log_prior(np.asarray(train_counts)), dtype=torch.float32, device=device)
    shift = (tau if name == "logit_adjusted" else 1.0) * lp

    def adjusted(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits + shift, labels)

    return adjusted
