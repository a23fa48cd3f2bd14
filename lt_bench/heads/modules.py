"""Trained heads on cached image features: BALLAD's and CLIP-Adapter's residual adapters, a linear
probe, cRT and LWS (Kang et al. 2020), a cosine classifier. (Tip-Adapter-F: ``heads/tip.py``.)

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
- ``crt``: the linear probe re-trained from scratch with cRT's recipe (``cls_crt.yaml``):
  class-aware sampler 4 per class, SGD 0.2 momentum 0.9 wd 5e-4, batch 512, 10 epochs,
  schedule ``reference`` (the same per-epoch cosine code as BALLAD's), select ``best-val``.
- ``lws``: per-class scales on a frozen trained ``linear`` head (``cls_lws.yaml``): the same
  recipe, 5 epochs. Its base is a HEAD.pt given to ``adapt --base`` or, by default, the
  ``linear`` head trained first with its own recipe and the same seed (``heads/stages.py``).
- ``clip_adapter``: CLIP-Adapter's residual bottleneck MLP (alpha 0.2, scale 100, fixed text
  classifier), CE with instance sampling (CLIP-Adapter is not a long-tail method), otherwise
  BALLAD's Phase B recipe; BALLAD's adapter is its linear special case (one class).
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


class ResidualAdapterHead(nn.Module):
    """``scale * norm(alpha * A(f) + (1 - alpha) * f) @ T^T``, T the fixed text classifier.

    The adapter ``A`` is BALLAD's ``linear`` body (``nn.Linear(D, D, bias=False)``) or
    CLIP-Adapter's ``mlp`` bottleneck (``Linear(D, D/4) -> ReLU -> Linear(D/4, D) -> ReLU``, no
    biases: ``clip_adapter.py:55-67`` of gaopengcuhk/CLIP-Adapter). Both are positively
    homogeneous, so on the cache's unit-norm features the normalised result is the reference's
    on CLIP's raw features. ``alpha`` 0 is zero-shot CLIP exactly.
    """

    def __init__(self, num_classes: int, dim: int, text_classifier, alpha: float = 0.2, scale: float = 100.0,
                 body: str = "linear", reduction: int = 4, **_):
        super().__init__()
        self.alpha, self.scale, self.body = float(alpha), float(scale), body
        if body == "linear":
            self.adapter = nn.Linear(dim, dim, bias=False)  # default (kaiming-uniform) init, as the reference
        elif body == "mlp":
            hidden = max(1, dim // reduction)
            self.adapter = nn.Sequential(nn.Linear(dim, hidden, bias=False), nn.ReLU(),
                                         nn.Linear(hidden, dim, bias=False), nn.ReLU())
        else:
            raise ValueError(f"adapter body must be 'linear' or 'mlp', not {body!r}")
        self.register_buffer("classifier", _text(text_classifier, num_classes, dim))

    def adapt(self, x: torch.Tensor) -> torch.Tensor:
        if self.body == "linear":
            # One fused addmm: (1 - a) x + a x W^T; x needs no gradient, so backward is W's only.
            z = torch.addmm(x, x, self.adapter.weight.t(), beta=1.0 - self.alpha, alpha=self.alpha)
        else:
            z = torch.lerp(x, self.adapter(x), self.alpha)
        return F.normalize(z, dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * (self.adapt(x) @ self.classifier.t())


class BalladHead(ResidualAdapterHead):
    """BALLAD's adapter: the residual head with a linear body."""

    def __init__(self, num_classes: int, dim: int, text_classifier, alpha: float = 0.2, scale: float = 100.0, **_):
        super().__init__(num_classes, dim, text_classifier, alpha, scale, body="linear")


class LinearHead(nn.Module):
    """``scale * (W f + b)``: a linear probe."""

    def __init__(self, num_classes: int, dim: int, text_classifier=None, alpha: float = 0.0, scale: float = 25.0, **_):
        super().__init__()
        self.scale = float(scale)
        self.fc = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.fc(x)
        return out if self.scale == 1.0 else self.scale * out


class CosineHead(nn.Module):
    """``scale * norm(f) @ norm(W)^T`` with W initialised from the text classifier (LIFT)."""

    def __init__(self, num_classes: int, dim: int, text_classifier, alpha: float = 0.0, scale: float = 25.0, **_):
        super().__init__()
        self.scale = float(scale)
        self.weight = nn.Parameter(_text(text_classifier, num_classes, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * (F.normalize(x, dim=-1) @ F.normalize(self.weight, dim=-1).t())


class LWSHead(nn.Module):
    """Learnable weight scaling (Kang et al. 2020): ``f_c * linear_c(f)`` with the linear head frozen.

    The reference's ``TauNormClassifier.py:16-29``: ``fc(x) * scales``, ``fc`` loaded from the
    stage-1 model with ``requires_grad = False``, ``scales`` initialised to ones.
    """

    def __init__(self, num_classes: int, dim: int, text_classifier=None, scale: float = 25.0, base=None, **_):
        super().__init__()
        self.scale = float(scale)
        self.fc = nn.Linear(dim, num_classes)
        if base is not None:  # a trained LinearHead: its weights, frozen
            self.fc.load_state_dict(base.fc.state_dict())
        self.fc.requires_grad_(False)
        self.scales = nn.Parameter(torch.ones(num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * self.fc(x) * self.scales


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


# cRT: the reference's cls_crt.yaml (classifier-balancing): a freshly initialised linear classifier
# retrained with the class-aware sampler (4 per class), SGD 0.2 momentum 0.9 wd 5e-4, batch 512,
# 10 epochs, cosine stepped per epoch (run_networks.py:155-160, :255), best-val epoch (:357-362).
_DECOUPLED = dict(_COMMON, loss="ce", sampler="class_aware", batch_size=512, lr=0.2, weight_decay=5e-4, alpha=0.0,
                  scale=25.0, schedule="reference", select="best-val")


@register_head("crt", defaults=_DECOUPLED)
def crt(**kw) -> LinearHead:
    """cRT: a linear classifier re-trained with class-balanced sampling (Kang et al. 2020)."""
    return LinearHead(**kw)


@register_head("lws", defaults=dict(_DECOUPLED, epochs=5))
def lws(**kw) -> LWSHead:
    """LWS: per-class scales of a frozen trained linear head, class-balanced sampling (Kang et al. 2020)."""
    return LWSHead(**kw)


@register_head("clip_adapter", defaults=dict(_COMMON, loss="ce", sampler="instance", batch_size=512, lr=0.2,
                                             weight_decay=5e-4, alpha=0.2, scale=100.0, schedule="reference",
                                             select="best-val"))
def clip_adapter(**kw) -> ResidualAdapterHead:
    """CLIP-Adapter: residual bottleneck MLP adapter (D -> D/4 -> D), fixed text classifier (Gao et al. 2021)."""
    return ResidualAdapterHead(**kw, body="mlp")


@register_head("cosine", defaults=dict(_COMMON, loss="logit_adjusted", sampler="instance", batch_size=128,
                                       lr=0.01, weight_decay=5e-4, alpha=0.0, scale=25.0, schedule="cosine",
                                       select="last"))
def cosine(**kw) -> CosineHead:
    """Cosine classifier initialised from the text classifier (LIFT-style), scale 25."""
    return CosineHead(**kw)
