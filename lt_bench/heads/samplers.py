"""Samplers: one epoch's training indices at once, vectorised in torch (no per-sample Python loop).

- ``instance``: every image equally likely (shuffled passes over the train set).
- ``class_aware``: classes visited in shuffled order (a fresh permutation of the classes per
  round), ``k`` images per visit drawn uniformly from the class: class frequency uniform.
  The reference cycles through each class's images without replacement; drawing with
  replacement gives the same class frequencies and keeps the draw one tensor operation.
- ``sqrt``: class c drawn with probability proportional to sqrt(n_c), then an image uniformly
  from it (Mahajan et al. 2018's square-root sampling).
"""

from __future__ import annotations

import numpy as np
import torch

from .config import SAMPLERS
from ..errors import LTBenchError, known



class _ByClass:
    """Train indices grouped by class: ``order[start[c] : start[c] + count[c]]`` are class c's."""

    def __init__(self, labels: torch.Tensor, num_classes: int):
        self.order = torch.argsort(labels, stable=True)
        self.count = torch.bincount(labels, minlength=num_classes)
        self.start = torch.cumsum(self.count, 0) - self.count

    def draw(self, classes: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        within = (torch.rand(len(classes), generator=g, dtype=torch.float64) * self.count[classes]).long()
        within = torch.minimum(within, self.count[classes] - 1)
        return self.order[self.start[classes] + within]


def sample_indices(name: str, labels, num: int, generator: torch.Generator, k_per_class: int = 4,
                   num_classes: int | None = None) -> torch.Tensor:
    """``num`` train indices (int64, CPU) drawn by sampler ``name``.

    Args:
        name: instance, class_aware or sqrt.
        labels: (N,) train labels.
        num: how many indices (steps x batch of one epoch).
        generator: the seeded torch generator (same seed, same indices).
        k_per_class: images per class visit of ``class_aware``.
        num_classes: C (default max label + 1).
    """
    if name not in SAMPLERS:
        raise LTBenchError(f"unknown sampler {name!r}; known: {known(SAMPLERS)}")
    labels = torch.as_tensor(np.asarray(labels), dtype=torch.int64)
    n = len(labels)
    if name == "instance":
        reps = -(-num // n)
        return torch.cat([torch.randperm(n, generator=generator) for _ in range(reps)])[:num]
    c = int(num_classes or int(labels.max()) + 1)
    by = _ByClass(labels, c)
    present = torch.nonzero(by.count > 0).flatten()
    if name == "class_aware":
        if k_per_class < 1:
            raise LTBenchError(f"--k-per-class must be at least 1, not {k_per_class}")
        visits = -(-num // k_per_class)
        rounds = -(-visits // len(present))
        seq = torch.cat([present[torch.randperm(len(present), generator=generator)] for _ in range(rounds)])
        classes = seq[:visits].repeat_interleave(k_per_class)[:num]
    else:  # sqrt
        p = by.count[present].double().sqrt()
        classes = present[torch.multinomial(p / p.sum(), num, replacement=True, generator=generator)]
    return by.draw(classes, generator)
