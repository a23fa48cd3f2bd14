"""Trained heads on cached image features: BALLAD's adapter, a linear probe, a cosine classifier.

Each factory takes ``num_classes``, ``dim``, ``text_classifier`` (C, D) and the head's own
options; its registered ``defaults`` are the training recipe ``adapt`` uses unless told otherwise:

- ``ballad``: the reference's Phase B as its released code runs it (docs/protocol.md): CE,
  class-aware sampler 4 per class (per-class cycles without replacement), SGD lr 0.2 momentum
  0.9 wd 5e-4, 10 epochs, batch 512, alpha 0.2, scale 100, schedule ``reference`` (cosine
  stepped once per epoch before the epoch: constant within an epoch, the last epoch at 0),
  select ``best-val`` (the epoch with the best val top-1, as the reference's test path).
- ``cosine``: LIFT's classifier and recipe (without its AdaptFormer): init from text, scale 25,
  logit-adjusted loss tau 1, instance sampling, SGD lr 0.01, batch 128, 10 epochs, wd 5e-4,
  schedule ``cosine`` (annealed per step to 0), select ``last``.
- ``linear``: a plain linear probe ``scale * (W f + b)`` (default init) on the unit-norm
  features. Unit-norm inputs give tiny logits at init; the scale 25 (as the cosine head's)
  lets SGD lr 0.05, batch 128, no weight decay, CE, instance sampling converge in 10 epochs
  (on a synthetic long-tailed cache, lr 0.1 and batch 512 underfit or overshoot). Schedule
  ``cosine``, select ``last``. Use --loss/--sampler for balanced variants.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .registry import register_head

_COMMON = dict(tau=1.0, k_per_class=4, epochs=10, momentum=0.9, views=True)


def _text(text_classifier, num_classes: int, dim: int) -> torch.Tensor:
    t = torch.as_tensor(text_classifier, dtype=torch.float32)
    assert t.shape == (num_classes, dim), (t.shape, num_classes, dim)
    return t.clone()


class BalladHead(nn.Module):
    """``scale * norm(alpha * W f + (1 - alpha) * f) @ T^T``, T the fixed text classifier."""

    def __init__(self, num_classes: int, dim: int, text_classifier, alpha: float = 0.2, scale: float = 100.0):
        super().__init__()
        self.alpha, self.scale = float(alpha), float(scale)
        self.adapter = nn.Linear(dim, dim, bias=False)  # default (kaiming-uniform) init, as the reference
        self.register_buffer("classifier", _text(text_classifier, num_classes, dim))

    def adapt(self, x: torch.Tensor) -> torch.Tensor:
        # One fused addmm: (1 - a) x + a x W^T; x needs no gradient, so backward is W's only.
        z = torch.addmm(x, x, self.adapter.weight.t(), beta=1.0 - self.alpha, alpha=self.alpha)
        return F.normalize(z, dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * (self.adapt(x) @ self.classifier.t())


class LinearHead(nn.Module):
    """``scale * (W f + b)``: a linear probe."""

    def __init__(self, num_classes: int, dim: int, text_classifier=None, alpha: float = 0.0, scale: float = 25.0):
        super().__init__()
        self.scale = float(scale)
        self.fc = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.fc(x)
        return out if self.scale == 1.0 else self.scale * out


class CosineHead(nn.Module):
    """``scale * norm(f) @ norm(W)^T`` with W initialised from the text classifier (LIFT)."""

    def __init__(self, num_classes: int, dim: int, text_classifier, alpha: float = 0.0, scale: float = 25.0):
        super().__init__()
        self.scale = float(scale)
        self.weight = nn.Parameter(_text(text_classifier, num_classes, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * (F.normalize(x, dim=-1) @ F.normalize(self.weight, dim=-1).t())


@register_head("ballad", defaults=dict(_COMMON, loss="ce", sampler="class_aware", batch_size=512, lr=0.2,
                                       weight_decay=5e-4, alpha=0.2, scale=100.0, schedule="reference",
                                       select="best-val"))
def ballad(**kw) -> BalladHead:
    """BALLAD Phase B: residual linear adapter on image features, fixed text classifier."""
    return BalladHead(**kw)


@register_head("linear", defaults=dict(_COMMON, loss="ce", sampler="instance", batch_size=128, lr=0.05,
                                       weight_decay=0.0, alpha=0.0, scale=25.0, schedule="cosine", select="last"))
def linear(**kw) -> LinearHead:
    """Linear probe on the image features."""
    return LinearHead(**kw)


@register_head("cosine", defaults=dict(_COMMON, loss="logit_adjusted", sampler="instance", batch_size=128,
                                       lr=0.01, weight_decay=5e-4, alpha=0.0, scale=25.0, schedule="cosine",
                                       select="last"))
def cosine(**kw) -> CosineHead:
    """Cosine classifier initialised from the text classifier (LIFT-style), scale 25."""
    return CosineHead(**kw)
