"""Samplers: one epoch's training indices at once, vectorised (no per-sample Python loop).

- ``instance``: every image equally likely (shuffled passes over the train set).
- ``class_aware``: BALLAD's reference sampler (``data/ClassAwareSampler.py`` of
  gaopengcuhk/BALLAD; see docs/protocol.md): classes in a persistent shuffled cycle,
  ``k`` consecutive images per class visit taken from the class's own shuffled image list,
  cycled *without* replacement and reshuffled when exhausted. The state (where each cycle
  stands) lives in a :class:`ClassAwareSampler` object and carries over from one epoch to the
  next, as the reference's sampler object does.
- ``class_aware_replace``: the same class cycle, but each of the ``k`` images of a visit drawn
  uniformly *with* replacement from the class, freshly per call (lt_bench's earlier
  ``class_aware``; the same class frequencies, different within-class coverage).
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


class _Cycle:
    """An endless stream over ``items``: shuffled in place each time it is exhausted.

    The reference's ``RandomCycleIter`` (data/ClassAwareSampler.py, lines 10-29): the first
    read shuffles (its position starts at the end), and each reshuffle permutes the previous
    order in place. ``take(n)`` returns the next n items of the stream in one go: the r
    reshuffles it needs come from one ``Generator.permuted`` call, whose rows are the
    permutations r successive ``Generator.shuffle`` calls apply (the parity test replays
    the reference with ``shuffle`` itself).
    """

    __slots__ = ("order", "pos", "rng")

    def __init__(self, items: np.ndarray, rng: np.random.Generator):
        self.order = np.array(items, dtype=np.int64)
        self.pos = len(self.order)
        self.rng = rng

    def take(self, n: int) -> np.ndarray:
        m = len(self.order)
        head = self.order[self.pos:self.pos + n].copy()
        need = n - len(head)
        if need == 0:
            self.pos += n
            return head
        r = -(-need // m)
        perms = self.rng.permuted(np.tile(np.arange(m), (r, 1)), axis=1)
        parts, order = [head], self.order
        for p in perms:
            order = order[p]
            parts.append(order)
        self.order, self.pos = order, need - (r - 1) * m
        parts[-1] = order[:self.pos]
        return np.concatenate(parts)


class ClassAwareSampler:
    """BALLAD's class-aware sampler, vectorised: ``draw(n)`` is the next n indices.

    Each ``draw`` is one epoch as the reference's ``class_aware_sample_generator`` yields it
    (data/ClassAwareSampler.py, lines 31-50): it starts with a new class visit, takes whole
    visits of ``k`` images, and drops the unused images of a last partial visit (the
    reference has already pulled them from the class's cycle when the epoch stops). The class
    cycle and every class's image cycle persist across draws.

    Random streams: one numpy Generator for the class cycle and one per class (spawned from
    ``seed``), where the reference shares Python's global ``random``. Streams per cycle let a
    draw take each class's images in one slice; the order of the shuffles between cycles is
    then immaterial, and the draws have the reference's distribution exactly
    (tests/test_heads_parity.py replays the reference's code on the same streams).

    Classes without train images are left out of the class cycle (the reference requires
    every class to have one).
    """

    def __init__(self, labels, k: int = 4, seed: int = 0, num_classes: int | None = None):
        if k < 1:
            raise LTBenchError(f"--k-per-class must be at least 1, not {k}")
        labels = np.asarray(labels, dtype=np.int64)
        c = int(num_classes or int(labels.max()) + 1)
        self.k = int(k)
        order = np.argsort(labels, kind="stable")
        count = np.bincount(labels, minlength=c)
        bounds = np.concatenate([[0], np.cumsum(count)])
        present = np.flatnonzero(count)
        seqs = np.random.SeedSequence(int(seed)).spawn(c + 1)
        self.classes = _Cycle(present, np.random.default_rng(seqs[c]))
        self.images = [_Cycle(order[bounds[i]:bounds[i + 1]], np.random.default_rng(seqs[i])) if count[i] else None
                       for i in range(c)]

    def draw(self, n: int) -> torch.Tensor:
        """The next ``n`` train indices (int64, CPU): ceil(n / k) class visits of k images."""
        k = self.k
        visits = -(-int(n) // k)
        cls = self.classes.take(visits)
        counts = np.bincount(cls, minlength=len(self.images))
        grouped = np.concatenate([self.images[c].take(int(counts[c]) * k) for c in np.flatnonzero(counts)])
        out = np.empty((visits, k), dtype=np.int64)
        out[np.argsort(cls, kind="stable")] = grouped.reshape(visits, k)  # class by class, each in visit order
        return torch.from_numpy(out.reshape(-1)[:n])


class _Stateless:
    """A sampler without state between epochs: each draw is ``sample_indices`` on one generator."""

    def __init__(self, name: str, labels, k: int, generator: torch.Generator, num_classes: int | None):
        self.name, self.labels, self.k, self.gen, self.c = name, labels, k, generator, num_classes

    def draw(self, n: int) -> torch.Tensor:
        return sample_indices(self.name, self.labels, n, self.gen, self.k, self.c)


def make_sampler(name: str, labels, generator: torch.Generator, k_per_class: int = 4,
                 num_classes: int | None = None):
    """The sampler ``name`` for one training run: an object whose ``draw(n)`` gives the next n indices.

    Create it once per run: ``class_aware`` keeps its cycles from one epoch to the next.

    Args:
        name: a name in ``SAMPLERS``.
        labels: (N,) train labels.
        generator: the run's seeded torch generator (``class_aware`` takes its seed from it).
        k_per_class: images per class visit (``class_aware``, ``class_aware_replace``).
        num_classes: C (default max label + 1).
    """
    if name not in SAMPLERS:
        raise LTBenchError(f"unknown sampler {name!r}; known: {known(SAMPLERS)}")
    if name == "class_aware":
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        return ClassAwareSampler(labels, k_per_class, seed, num_classes)
    return _Stateless(name, labels, k_per_class, generator, num_classes)


def sample_indices(name: str, labels, num: int, generator: torch.Generator, k_per_class: int = 4,
                   num_classes: int | None = None) -> torch.Tensor:
    """``num`` train indices (int64, CPU) drawn by sampler ``name`` in one call.

    For ``class_aware`` this is the first epoch of a fresh :class:`ClassAwareSampler`; a
    training run uses :func:`make_sampler` instead, whose state persists across epochs.

    Args:
        name: a name in ``SAMPLERS``.
        labels: (N,) train labels.
        num: how many indices (steps x batch of one epoch).
        generator: the seeded torch generator (same seed, same indices).
        k_per_class: images per class visit of ``class_aware`` and ``class_aware_replace``.
        num_classes: C (default max label + 1).
    """
    if name not in SAMPLERS:
        raise LTBenchError(f"unknown sampler {name!r}; known: {known(SAMPLERS)}")
    if name == "class_aware":
        return make_sampler(name, labels, generator, k_per_class, num_classes).draw(num)
    labels = torch.as_tensor(np.asarray(labels), dtype=torch.int64)
    n = len(labels)
    if name == "instance":
        reps = -(-num // n)
        return torch.cat([torch.randperm(n, generator=generator) for _ in range(reps)])[:num]
    c = int(num_classes or int(labels.max()) + 1)
    by = _ByClass(labels, c)
    present = torch.nonzero(by.count > 0).flatten()
    if name == "class_aware_replace":
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
