"""Tip-Adapter (Zhang et al., ECCV 2022, arXiv 2111.03930): CLIP zero-shot plus a cache model.

    logits = scale * f T^T + alpha * exp(-beta * (1 - f K^T)) L

f the unit-norm query feature, T the text classifier, K the cache keys (unit-norm train
features, one row per cached image), L their one-hot labels. The reference (github
gaopengcuhk/Tip-Adapter) builds a key as the normalised mean of the image's features over 10
augmented passes (``utils.py:38-62``); on a cache with augmented views lt_bench takes the mean
of the image's cached views, else its center view. ``shots`` keeps at most that many images
per class (a seeded class-balanced draw, as the reference's few-shot sets); 0 keeps all.

Options (``adapt`` / ``eval`` / ``heads.methods``): ``tip_alpha`` (alpha), ``tip_beta`` (beta),
``shots``. Defaults alpha 1.17, beta 1: the reference's ImageNet ``init_alpha`` / ``init_beta``
(``configs/imagenet.yaml:20-21``).

- ``tip_adapter`` (a baseline: nothing trains): alpha and beta are chosen on val
  (``main.py:27-47``'s search; ``heads.methods`` selects them by grid).
- ``tip_adapter_f`` (a trained head): the keys become a parameter initialised from the cache
  and trained with CE through the same formula (``main.py:66-106``: AdamW lr 1e-3 eps 1e-4,
  cosine per step, 20 epochs, batch 256, on the cached images only).

The query x key products run in chunks of queries so that memory stays bounded whatever the
cache's size (``chunk_rows``: an ImageNet-LT cache, 115,846 keys, is a (256, 115,846) block
at a time); L is applied as a scatter-add over the keys' labels (``index_add_``), never as a
dense (K, C) matrix.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import LTBenchError
from .registry import register_head

AFFINITY_BYTES = 128 << 20  # one chunk's (queries, keys) float32 block


def chunk_rows(num_keys: int, budget: int = AFFINITY_BYTES) -> int:
    """Queries per chunk so that a (chunk, num_keys) float32 block fits ``budget`` bytes."""
    return max(1, budget // (4 * max(1, num_keys)))


def select_shots(labels: np.ndarray, shots: int, seed: int) -> np.ndarray:
    """Indices of at most ``shots`` images per class (a seeded draw, sorted); all when ``shots`` is 0."""
    labels = np.asarray(labels, dtype=np.int64)
    if shots <= 0:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    keep = [rng.permutation(np.flatnonzero(labels == c))[:shots] for c in np.unique(labels)]
    return np.sort(np.concatenate(keep))


def cache_keys(features, labels, aug=None, shots: int = 0, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(keys (K, D) float32 unit rows, their labels (K,), their train indices (K,)).

    A key is the normalised mean of the image's augmented views when ``aug`` (``(rows,
    offsets)``) is given, else its (normalised) center feature.
    """
    labels = np.asarray(labels, dtype=np.int64)
    idx = select_shots(labels, shots, seed)
    if aug is not None:
        rows, offsets = aug
        offsets = np.asarray(offsets, dtype=np.int64)
        keys = np.stack([np.asarray(rows[offsets[i]:offsets[i + 1]], dtype=np.float32).mean(0) for i in idx]) \
            if len(idx) < len(labels) else _view_means(rows, offsets)
    else:
        keys = np.asarray(features, dtype=np.float32)[idx]
    keys = keys / np.maximum(np.linalg.norm(keys, axis=1, keepdims=True), 1e-12)
    return np.ascontiguousarray(keys, dtype=np.float32), labels[idx], idx


def _view_means(rows, offsets: np.ndarray) -> np.ndarray:
    """(N, D) mean of each image's views, in float32 chunks of rows (bounded memory)."""
    n = len(offsets) - 1
    out = np.empty((n, rows.shape[1]), dtype=np.float32)
    step = 16384
    for s in range(0, n, step):
        e = min(n, s + step)
        block = torch.as_tensor(np.asarray(rows[offsets[s]:offsets[e]])).float()
        seg = torch.as_tensor(np.repeat(np.arange(e - s), np.diff(offsets[s:e + 1])))
        sums = torch.zeros(e - s, block.shape[1]).index_add_(0, seg, block)
        out[s:e] = (sums / torch.as_tensor(np.diff(offsets[s:e + 1]), dtype=torch.float32)[:, None]).numpy()
    return out


def tip_logits(x: torch.Tensor, keys: torch.Tensor, key_labels: torch.Tensor, text: torch.Tensor, alpha: float,
               beta: float, scale: float = 100.0, chunk: int | None = None) -> torch.Tensor:
    """Tip-Adapter's logits of queries ``x`` (N, D): ``scale f T^T + alpha exp(-beta (1 - f K^T)) L``.

    ``alpha == 0`` returns the zero-shot logits exactly. Differentiable in ``keys``.
    """
    f = F.normalize(x.float(), dim=-1)
    zs = scale * (f @ text.t())
    if alpha == 0:
        return zs
    chunk = chunk or chunk_rows(len(keys))
    parts = []
    for s in range(0, len(f), chunk):
        affinity = f[s:s + chunk] @ keys.t()
        if torch.is_grad_enabled() and keys.requires_grad:
            weights = torch.exp(-beta * (1.0 - affinity))
        else:  # in place: one (chunk, K) block at a time, whatever the cache's size
            weights = affinity.sub_(1.0).mul_(beta).exp_()
        parts.append(torch.zeros(len(weights), text.shape[0], dtype=weights.dtype, device=weights.device)
                     .index_add_(1, key_labels, weights))
    return zs + alpha * torch.cat(parts)


class TipAdapter:
    """Training-free Tip-Adapter (a baseline): ``fit`` builds the cache, ``logits`` scores."""

    uses_views = True  # fit takes the train split's augmented views (keys: their means)

    def __init__(self, text_classifier, tip_alpha: float = 1.17, tip_beta: float = 1.0, shots: int = 0,
                 scale: float = 100.0, seed: int = 0, **_):
        self.text = torch.as_tensor(np.asarray(text_classifier), dtype=torch.float32)
        self.alpha, self.beta, self.shots, self.scale, self.seed = (float(tip_alpha), float(tip_beta), int(shots),
                                                                    float(scale), int(seed))
        if self.beta <= 0 or self.alpha < 0 or self.shots < 0:
            raise LTBenchError(f"Tip-Adapter needs --tip-alpha >= 0, --tip-beta > 0 and --shots >= 0, not "
                               f"{tip_alpha}, {tip_beta}, {shots}")

    def fit(self, features, labels, aug=None) -> "TipAdapter":
        keys, key_labels, _ = cache_keys(features, labels, aug, self.shots, self.seed)
        self.keys, self.key_labels = torch.from_numpy(keys), torch.from_numpy(key_labels)
        self._primed = None
        return self

    @classmethod
    def of_head(cls, head: "TipAdapterFHead") -> "TipAdapter":
        """The scorer of a trained ``tip_adapter_f`` head (its keys as they are), for the val search."""
        out = cls(head.classifier.detach().cpu(), head.tip_alpha, head.tip_beta, scale=head.scale)
        out.keys, out.key_labels = head.keys.detach().cpu().float(), head.key_labels.detach().cpu()
        out._primed = None
        return out

    @torch.no_grad()
    def prime(self, features, betas) -> None:
        """Compute ``features``' zero-shot and cache logits for every beta of ``betas`` in one pass
        over the keys, and keep them: ``logits`` of the same array at those betas then costs an
        (N, C) sum, not a pass over the cache (the val search of alpha and beta)."""
        x = F.normalize(torch.as_tensor(np.asarray(features), dtype=torch.float32), dim=-1)
        betas = sorted({float(b) for b in betas})
        zs = self.scale * (x @ self.text.t())
        cache = {b: torch.zeros_like(zs) for b in betas}
        chunk = chunk_rows(len(self.keys))
        for s in range(0, len(x), chunk):
            shifted = (x[s:s + chunk] @ self.keys.t()).sub_(1.0)  # affinity - 1
            for b in betas:
                cache[b][s:s + chunk].index_add_(1, self.key_labels, torch.mul(shifted, b).exp_())
        self._primed = (features, zs, cache)

    @torch.no_grad()
    def logits(self, features, tip_alpha: float | None = None, tip_beta: float | None = None) -> np.ndarray:
        """Logits of ``features``; ``tip_alpha`` / ``tip_beta`` override the fitted ones (post-hoc, no refit)."""
        x = torch.as_tensor(np.asarray(features), dtype=torch.float32)
        a = self.alpha if tip_alpha is None else float(tip_alpha)
        b = self.beta if tip_beta is None else float(tip_beta)
        primed = getattr(self, "_primed", None)
        if primed is not None and primed[0] is features and b in primed[2]:
            return (primed[1] + a * primed[2][b]).numpy() if a else primed[1].numpy()
        return tip_logits(x, self.keys, self.key_labels, self.text, a, b, self.scale).numpy()


class TipAdapterFHead(nn.Module):
    """Tip-Adapter-F: the cache keys as a trained parameter (``keys`` (K, D), ``key_labels`` (K,))."""

    def __init__(self, num_classes: int, dim: int, text_classifier, keys=None, key_labels=None,
                 tip_alpha: float = 1.17, tip_beta: float = 1.0, scale: float = 100.0, **_):
        super().__init__()
        self.tip_alpha, self.tip_beta, self.scale = float(tip_alpha), float(tip_beta), float(scale)
        t = torch.as_tensor(np.asarray(text_classifier), dtype=torch.float32)
        self.register_buffer("classifier", t.clone())
        k = torch.zeros(0, dim) if keys is None else torch.as_tensor(np.asarray(keys), dtype=torch.float32)
        lab = torch.zeros(0, dtype=torch.int64) if key_labels is None else torch.as_tensor(np.asarray(key_labels))
        self.keys = nn.Parameter(k.clone())
        self.register_buffer("key_labels", lab.to(torch.int64).clone())

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # a HEAD.pt's cache size is known only from its state: take the stored shapes
        for name in ("keys", "key_labels"):
            if prefix + name in state_dict:
                getattr(self, name).data = torch.empty_like(state_dict[prefix + name])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return tip_logits(x, self.keys, self.key_labels, self.classifier, self.tip_alpha, self.tip_beta, self.scale)


@register_head("tip_adapter", kind="baseline", defaults={"tip_alpha": 1.17, "tip_beta": 1.0, "shots": 0, "scale": 100.0})
def tip_adapter(**kw) -> TipAdapter:
    """Tip-Adapter, training-free: zero-shot plus a cache model of the train features."""
    return TipAdapter(**kw)


@register_head("tip_adapter_f", defaults=dict(loss="ce", sampler="instance", k_per_class=4, batch_size=256, lr=1e-3,
                                              epochs=20, optimizer="adamw", weight_decay=0.01, momentum=0.9,
                                              schedule="cosine", select="best-val", scale=100.0, tip_alpha=1.17,
                                              tip_beta=1.0, shots=16, views=True, tau=1.0, alpha=0.0))
def tip_adapter_f(**kw) -> TipAdapterFHead:
    """Tip-Adapter-F: the cache keys fine-tuned (AdamW), zero-shot classifier fixed."""
    return TipAdapterFHead(**kw)
