"""Post-hoc steps on a trained head: nothing retrains, so their parameters are cheap to choose on val.

- ``tau_norm`` (Kang et al., ICLR 2020): the class weights rescaled ``w_c / ||w_c||^tau``, the
  bias dropped (``tau_norm.py:102-107`` of facebookresearch/classifier-balancing, whose
  classifier is ``dotproduct_similarity``, no bias: ``:82-86``). On a ``linear`` / ``crt`` head:
  ``scale * f @ W_tau^T``; on a ``cosine`` head, whose forward normalises W, the step replaces
  that normalisation: ``scale * norm(f) @ W_tau^T`` (tau 1: the cosine head itself, tau 0: the raw
  weights). The paper's grid is tau in 0..2 step 0.1 (``tau_norm.py:110``), chosen on val.
- ``ensemble`` (WiSE-FT's output-space ensemble, Wortsman et al., CVPR 2022):
  ``(1 - w) * head(f) + w * zero-shot(f)``, the zero-shot logits ``scale * norm(f) @ T^T`` at
  the head's own logit ``scale`` (so a cosine or adapter head and zero-shot are cosines on
  the same scale; a linear head's logits are ``scale * (W f + b)``). w 0 is the head, 1 zero-shot.

Both wrap the head in a module (``apply_posthoc``), so ``eval`` and the leaderboard score them
as any head. Tip-Adapter's alpha and beta are post-hoc too: ``TipAdapter.logits(x, alpha, beta)``
and ``with_tip`` on a ``tip_adapter_f`` head.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import LTBenchError

TAU_NORM_GRID = tuple(round(0.1 * i, 1) for i in range(21))  # the paper's 0..2 step 0.1


def tau_normalize(weight: torch.Tensor, tau: float) -> torch.Tensor:
    """``w_c / ||w_c||^tau`` for each row c of ``weight`` (C, D)."""
    norms = weight.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return weight / norms.pow(tau)


class TauNormed(nn.Module):
    """A linear or cosine head with tau-normalised class weights and no bias (see module docstring)."""

    def __init__(self, head: nn.Module, tau: float):
        super().__init__()
        from .modules import CosineHead, LinearHead

        if isinstance(head, LinearHead):
            weight, self.normalize_input = head.fc.weight, False
        elif isinstance(head, CosineHead):
            weight, self.normalize_input = head.weight, True
        else:
            raise LTBenchError(f"--tau-norm needs a linear, crt or cosine head (one class weight matrix), "
                               f"not a {type(head).__name__}")
        self.tau, self.scale = float(tau), float(head.scale)
        self.register_buffer("weight", tau_normalize(weight.detach().float(), self.tau))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = F.normalize(x, dim=-1) if self.normalize_input else x
        return self.scale * (f @ self.weight.t())


def check_ensemble_weight(weight) -> float:
    """The zero-shot weight w as a float, refused outside [0, 1] (lerp would extrapolate)."""
    if not 0.0 <= float(weight) <= 1.0:
        raise LTBenchError(f"--ensemble is the zero-shot weight w in [0, 1], not {weight}")
    return float(weight)


class ZeroShotEnsemble(nn.Module):
    """``(1 - w) * head(f) + w * scale * norm(f) @ T^T`` (WiSE-FT's output-space ensemble)."""

    def __init__(self, head: nn.Module, text_classifier, weight: float):
        super().__init__()
        self.head, self.w, self.scale = head, check_ensemble_weight(weight), float(getattr(head, "scale", 100.0))
        self.register_buffer("text", torch.as_tensor(np.asarray(text_classifier), dtype=torch.float32).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        zs = self.scale * (F.normalize(x, dim=-1) @ self.text.t())
        return torch.lerp(self.head(x), zs, self.w)


def with_tip(head: nn.Module, tip_alpha: float | None = None, tip_beta: float | None = None) -> nn.Module:
    """A ``tip_adapter_f`` head with other alpha / beta (a shallow copy: the keys are shared)."""
    from .tip import TipAdapterFHead

    if tip_alpha is None and tip_beta is None:
        return head
    if not isinstance(head, TipAdapterFHead):
        raise LTBenchError(f"--tip-alpha / --tip-beta apply to a tip_adapter_f head, not a {type(head).__name__}")
    out = copy.copy(head)
    out.tip_alpha = head.tip_alpha if tip_alpha is None else float(tip_alpha)
    out.tip_beta = head.tip_beta if tip_beta is None else float(tip_beta)
    return out


def apply_posthoc(head: nn.Module, text_classifier, tau_norm: float | None = None, ensemble: float | None = None,
                  tip_alpha: float | None = None, tip_beta: float | None = None) -> nn.Module:
    """``head`` with the post-hoc steps that are set (None: off), in the order tip, tau-norm, ensemble."""
    head = with_tip(head, tip_alpha, tip_beta)
    if tau_norm is not None:
        head = TauNormed(head, tau_norm)
    if ensemble is not None:
        head = ZeroShotEnsemble(head, text_classifier, ensemble)
    return head.eval()
