"""How many augmented views each train image gets, and how extraction batches ragged views.

Torch-free (numpy only). Two ways to give views (``ExtractOptions``; mutually exclusive):

- ``views = K`` (flat): every train image gets K views.
- ``view_budget = M`` (by expected draws): image i of class c gets
  ``min(M, ceil(d_c))`` views, at least 1, where ``d_c`` is how often BALLAD's Phase B is
  expected to draw one image of class c under the class-aware sampler::

      d_c = (steps x batch x epochs) / C' / n_c,    steps = max(1, N // batch)

  with N the train images, C' the classes that have train images and n_c class c's images.
  The class-aware sampler visits every class equally often, so each class receives
  ``steps x batch x epochs / C'`` draws over the run, spread over its n_c images. The reference
  augments afresh at every draw: with about ``d_c`` views per image the cache offers as many
  distinct augmentations as the reference's run sees (up to M). Tail images get up to M,
  head images few (ImageNet-LT: 5-image classes ~231 draws per image -> M; 1280-image classes
  0.9 -> 1).

The Phase B run the estimate assumes is BALLAD's (``PHASE_B_EPOCHS``, ``PHASE_B_BATCH``:
the ``ballad`` head's and every ``ballad_*`` recipe's defaults, the reference's
``config/*/clip_B_*.yaml``). They are constants, not options, on purpose: the cache is made
once, before any head is trained, and must not depend on a later ``adapt``'s settings; a
Phase B run of other length scales every ``d_c`` alike, which moving M covers. ``steps`` is
lt_bench's Phase B epoch (``heads/train.py``: ``int(N / batch)`` as the reference, but at
least one step).

Augmented views travel through extraction in batches of contiguous images (``plan_batches``):
at most ``batch_size`` images and at most ``AUG_PER_BATCH x batch_size`` augmented views per
batch (a flat ``--views 4`` batch's worth of augmented images, what extraction held in memory
before budgets), but never less than one image. The plan is greedy from its start, so a resume
from any batch boundary reproduces the uninterrupted run's batches exactly.
"""

from __future__ import annotations

import numpy as np

PHASE_B_EPOCHS = 10   # BALLAD's Phase B epochs (the ``ballad`` head's default)
PHASE_B_BATCH = 512   # BALLAD's Phase B batch (the ``ballad`` head's default)
AUG_PER_BATCH = 4     # augmented views per image of a full batch at most (flat --views 4's memory)


def expected_draws(train_counts, epochs: int = PHASE_B_EPOCHS, batch: int = PHASE_B_BATCH) -> np.ndarray:
    """(C,) float: expected Phase B draws per image of each class under the class-aware sampler
    (0 for a class without images)."""
    counts = np.asarray(train_counts, dtype=np.int64)
    present = int((counts > 0).sum())
    if present == 0:
        return np.zeros(len(counts))
    draws = max(1, int(counts.sum()) // batch) * batch * epochs
    return np.where(counts > 0, draws / present / np.maximum(counts, 1), 0.0)


def budget_per_class(train_counts, budget: int, epochs: int = PHASE_B_EPOCHS,
                     batch: int = PHASE_B_BATCH) -> np.ndarray:
    """(C,) int64 views per image of each class: ``min(budget, ceil(expected draws))``, at
    least 1 (0 for a class without images, and everywhere when ``budget`` is 0).

    Integer arithmetic: ``ceil(draws / (C' n_c))`` exactly, no float rounding."""
    counts = np.asarray(train_counts, dtype=np.int64)
    present = int((counts > 0).sum())
    if budget <= 0 or present == 0:  # no budget, or a train split without images
        return np.zeros(len(counts), dtype=np.int64)
    draws = max(1, int(counts.sum()) // batch) * batch * epochs
    denom = present * np.maximum(counts, 1)
    per = -(-draws // denom)
    return np.where(counts > 0, np.clip(per, 1, budget), 0).astype(np.int64)


def views_per_image(labels, num_classes: int, *, views: int = 0, view_budget: int = 0) -> np.ndarray:
    """(N,) int64 augmented views of each train image (``labels``: the split's labels).

    ``views`` (flat) and ``view_budget`` are mutually exclusive; with neither, all zeros."""
    labels = np.asarray(labels, dtype=np.int64)
    if views and view_budget:
        raise ValueError("views and view_budget are mutually exclusive")
    if view_budget:
        counts = np.bincount(labels, minlength=num_classes)
        return budget_per_class(counts, view_budget)[labels]
    return np.full(len(labels), int(views), dtype=np.int64)


def total_views(train_counts, *, views: int = 0, view_budget: int = 0) -> int:
    """Augmented views a train split of these class counts gets (the extra forward passes)."""
    counts = np.asarray(train_counts, dtype=np.int64)
    if view_budget:
        return int((budget_per_class(counts, view_budget) * counts).sum())
    return int(views) * int(counts.sum())


def plan_batches(counts: np.ndarray, start: int, batch_size: int) -> list[tuple[int, int]]:
    """Batches ``[(s, e), ...]`` covering images ``start..N``: contiguous, at most
    ``batch_size`` images and ``AUG_PER_BATCH * batch_size`` augmented views each, at least
    one image each. Greedy from ``start`` (a resume at a batch boundary continues the same plan).
    """
    counts = np.asarray(counts, dtype=np.int64)
    n = len(counts)
    cap = AUG_PER_BATCH * batch_size
    if n == 0 or start >= n:
        return []
    if not counts[start:].any() or counts[start:].max() * batch_size <= cap:
        # every full batch fits (flat views <= AUG_PER_BATCH, or none): plain batch_size strides
        return [(s, min(n, s + batch_size)) for s in range(start, n, batch_size)]
    cum = np.concatenate([[0], np.cumsum(counts)])
    out, s = [], start
    while s < n:
        # the furthest e with cum[e] - cum[s] <= cap, within batch_size images, at least s + 1
        e = int(np.searchsorted(cum, cum[s] + cap, side="right")) - 1
        e = max(s + 1, min(e, s + batch_size, n))
        out.append((s, e))
        s = e
    return out
