"""What the benchmark suite and ``gpu_check.py`` both measure with: the ImageNet-LT-like count
profile, BALLAD's step FLOPs, the torch.mm reference rate, and torch NCM / kNN references.

No pytest or psutil here: ``gpu_check.py`` imports this module on a bare GPU machine.
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F

from lt_bench.data import long_tail_counts
from lt_bench.heads import knn_votes


def sync(device) -> None:
    """Wait for queued CUDA work, so that a timer reads the work and not its launch."""
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def counts_summing_to(total: int, c: int) -> np.ndarray:
    """ImageNet-LT-like profile (1280..5 exponential) rescaled to sum to ``total``."""
    base = np.array(long_tail_counts(1280, c, 256), dtype=np.float64)
    counts = np.maximum(np.round(base * total / base.sum()).astype(np.int64), 1)
    counts[0] += total - counts.sum()
    return counts


def ballad_step_flops(batch: int, dim: int, classes: int) -> int:
    """Matmul FLOPs of one BALLAD training step on cached features: adapter forward 2BD^2,
    classifier forward 2BCD, classifier backward to the adapted features 2BCD, adapter weight
    gradient 2BD^2 (the text classifier is fixed and the features need no gradient): 4BD(D + C)."""
    return 4 * batch * dim * (dim + classes)


def matmul_gflops(batch: int, dim: int, classes: int, seconds: float, device="cpu") -> float:
    """torch.mm rate on the BALLAD step's shapes (B x D @ D x D and B x D @ D x C) on ``device``,
    under the current float32 matmul precision: the reference a head's GFLOP/s is compared to."""
    a, w, t = (torch.randn(*s, device=device) for s in ((batch, dim), (dim, dim), (dim, classes)))
    for _ in range(3):  # warm-up (BLAS / cuBLAS choices)
        torch.mm(a, w), torch.mm(a, t)
    sync(device)
    n, t0 = 0, time.perf_counter()
    while n < 3 or time.perf_counter() - t0 < seconds:
        for _ in range(10):  # several per sync: a sync per pair would time the GPU's idle gaps
            torch.mm(a, w)
            torch.mm(a, t)
        sync(device)
        n += 10
    return n * 2 * batch * dim * (dim + classes) / (time.perf_counter() - t0) / 1e9


def torch_ncm(xtr, ytr, xte, num_classes: int, device="cpu", batch: int | None = None) -> np.ndarray:
    """Nearest-class-mean predictions with plain torch (normalised class means, argmax of
    cosine); queries ``batch`` at a time (None: all at once)."""
    x = F.normalize(torch.from_numpy(xtr).to(device), dim=1)
    sums = torch.zeros(num_classes, x.shape[1], device=device).index_add_(0, torch.from_numpy(ytr).to(device), x)
    means = F.normalize(sums, dim=1)
    q = torch.from_numpy(xte)
    step = batch or max(1, len(q))
    out = [(F.normalize(q[s:s + step].to(device), dim=1) @ means.t()).argmax(1) for s in range(0, len(q), step)]
    return torch.cat(out).cpu().numpy()


def torch_knn(xtr, ytr, xte, k: int, num_classes: int, device="cpu", batch: int = 2048) -> np.ndarray:
    """Exhaustive cosine kNN predictions with torch matmul + topk on ``device``; the votes are
    lt_bench's own (``knn_votes``), so only the search differs from ``lt_bench.heads.KNN``.

    ``batch`` queries at a time bounds the (batch x N) similarity block (2,048 x 115,846 float32
    is 0.95 GB).
    """
    x = F.normalize(torch.from_numpy(xtr).to(device), dim=1)
    q = torch.from_numpy(xte)
    preds = np.empty(len(q), dtype=np.int64)
    for s in range(0, len(q), batch):
        sims, ids = torch.topk(F.normalize(q[s:s + batch].to(device), dim=1) @ x.t(), k, dim=1)
        ids = ids.cpu().numpy()
        preds[s:s + batch] = knn_votes(sims.cpu().numpy(), ytr[ids], num_classes).argmax(1)
    return preds


def long_tail_profile(most: int, fewest: int, groups: tuple[int, int, int], total: int) -> np.ndarray:
    """A decreasing class-count profile with ``total`` images, ``most`` in the first class,
    ``fewest`` in the last and ``groups`` = (many, medium, few) classes with > 100, 20..100 and
    < 20 images: log-linear from 100 to 20 over the medium classes and from 19 to ``fewest``
    over the few, and ``exp(log most + (log 101 - log most) * (i / (many - 1)) ** g)`` over the
    many, g found by bisection so the counts sum to ``total`` (the rounding remainder spread
    over the many classes but the first). Stands in for a dataset's real counts where its split
    files are not at hand (ImageNet-LT: 115,846 images, 1280..5, 385 / 479 / 136 classes)."""
    many, medium, few = groups
    mid = np.round(np.exp(np.linspace(np.log(100), np.log(20), medium))).astype(np.int64)
    tail = np.round(np.exp(np.linspace(np.log(19), np.log(fewest), few))).astype(np.int64)
    x = np.arange(many) / max(1, many - 1)

    def head(g: float) -> np.ndarray:
        return np.round(np.exp(np.log(most) + (np.log(101) - np.log(most)) * x ** g)).astype(np.int64)

    need = total - int(mid.sum() + tail.sum())
    lo, hi = 1e-3, 1e3  # a larger g decays later: more images
    for _ in range(200):
        g = (lo * hi) ** 0.5
        lo, hi = (g, hi) if head(g).sum() < need else (lo, g)
    top = head(lo)
    rest = need - int(top.sum())
    top[1:1 + abs(rest)] += int(np.sign(rest))
    return np.concatenate([top, mid, tail])
