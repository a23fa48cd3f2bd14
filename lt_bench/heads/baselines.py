"""Baselines on the cache: zero-shot (text classifier), NCM and kNN through FAISS.

Each baseline has ``fit(train_features, train_labels)`` and ``logits(features) -> (N, C)``.
Logits are cosine similarities times ``scale`` (100, CLIP's logit scale); kNN's are
``scale * votes / k`` with ``votes[c]`` the summed similarity of the neighbours of class c.
The scale changes no prediction, only the softmax that ECE reads.
"""

from __future__ import annotations

import numpy as np

from ..errors import LTBenchError
from ..log import get_logger
from .faiss_backend import as_faiss_input, choose_faiss_backend, faiss_inner_products, ip_index
from .registry import register_head

log = get_logger(__name__)


def _normalize(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(n, 1e-12)


class ZeroShot:
    """CLIP zero-shot: ``scale * f @ T^T``."""

    def __init__(self, text_classifier, scale: float = 100.0, **_):
        self.t = np.asarray(text_classifier, dtype=np.float32)
        self.scale = float(scale)

    def fit(self, features=None, labels=None) -> "ZeroShot":
        return self

    def logits(self, features) -> np.ndarray:
        f = _normalize(np.asarray(features, dtype=np.float32))
        out = f @ self.t.T
        out *= self.scale  # in place: the (N, C) logits are the one full-size array of an eval
        return out


class NCM:
    """Nearest class mean: means of normalised train features, renormalised; IndexFlatIP over them."""

    def __init__(self, text_classifier, scale: float = 100.0, device: str = "auto", **_):
        self.num_classes, self.dim = np.asarray(text_classifier).shape
        self.scale = float(scale)
        self.backend = choose_faiss_backend(device)

    def fit(self, features, labels) -> "NCM":
        labels = np.asarray(labels, dtype=np.int64)
        sums = np.zeros((self.num_classes, self.dim), dtype=np.float32)
        for s, x in _normalized_chunks(features, self.dim, "train features"):
            sums += _class_sums(labels[s:s + len(x)], x, self.num_classes)
        self.means = np.ascontiguousarray(_normalize(sums).astype(np.float32))  # a class without images: zero mean
        self.index = ip_index(self.dim, self.backend)
        self.index.add(self.means)
        return self

    def logits(self, features, batch: int = 65536) -> np.ndarray:
        q = _normalize(as_faiss_input(features, self.dim, "features"))
        out = np.empty((len(q), self.num_classes), dtype=np.float32)
        batch = max(256, min(batch, (1 << 25) // self.num_classes))  # each batch's scores ~128 MB whatever C
        for s in range(0, len(q), batch):
            if self.backend == "cpu":
                # Every class's score is wanted, so no k-selection: FAISS's exhaustive inner
                # products (one BLAS call) are 13x faster here than search(k=C) over 1000 means.
                out[s:s + batch] = faiss_inner_products(q[s:s + batch], self.means)
            else:
                sims, ids = self.index.search(q[s:s + batch], self.num_classes)
                np.put_along_axis(out[s:s + batch], ids, sims, axis=1)
        out *= self.scale
        return out


def _normalized_chunks(features, dim: int, what: str, rows: int = 65536):
    """``(start, normalised float32 rows)`` of ``features`` (any float dtype, e.g. a cache's
    float16) ``rows`` at a time: a baseline's fit never holds a float32 copy of the whole train
    set beside its own (437,513 x 768 iNaturalist keys: 1.3 GB each)."""
    if np.ndim(features) != 2 or np.shape(features)[1] != dim:
        raise LTBenchError(f"{what} have shape {tuple(np.shape(features))}, expected (N, {dim})")
    for s in range(0, len(features), rows):
        yield s, _normalize(as_faiss_input(features[s:s + rows], dim, what))


def _class_sums(labels: np.ndarray, x: np.ndarray, num_classes: int) -> np.ndarray:
    """(C, D) sums of the rows of x per label: one O(N D) scatter-add (torch's, multithreaded).

    float32 accumulation: a class sums at most a few thousand unit vectors, far inside its precision.
    """
    import torch

    acc = torch.zeros((num_classes, x.shape[1]), dtype=torch.float32)
    acc.index_add_(0, torch.from_numpy(np.ascontiguousarray(labels, dtype=np.int64)), torch.from_numpy(x))
    return acc.numpy()


class KNN:
    """k nearest train features (IndexFlatIP on normalised features), similarity-weighted vote."""

    def __init__(self, text_classifier, k: int = 20, scale: float = 100.0, device: str = "auto",
                 query_batch: int = 8192, **_):
        self.num_classes, self.dim = np.asarray(text_classifier).shape
        self.k, self.scale, self.query_batch = int(k), float(scale), int(query_batch)
        if self.k < 1:
            raise LTBenchError(f"--k must be at least 1, not {self.k}")
        self.backend = choose_faiss_backend(device)

    def fit(self, features, labels) -> "KNN":
        n = len(features)
        if self.k > n:
            raise LTBenchError(f"--k {self.k} is larger than the train set ({n} images): use --k {n} or less")
        self.labels = np.asarray(labels, dtype=np.int64)
        self.index = ip_index(self.dim, self.backend)
        for _, x in _normalized_chunks(features, self.dim, "train features"):
            self.index.add(x)  # the index holds the one float32 copy of the keys
        return self

    def neighbours(self, features) -> tuple[np.ndarray, np.ndarray]:
        """(similarities, train indices), each (N, k), best first; queries in batches to bound memory."""
        q = _normalize(as_faiss_input(features, self.dim, "features"))
        sims = np.empty((len(q), self.k), dtype=np.float32)
        ids = np.empty((len(q), self.k), dtype=np.int64)
        for s in range(0, len(q), self.query_batch):
            sims[s:s + self.query_batch], ids[s:s + self.query_batch] = self.index.search(q[s:s + self.query_batch], self.k)
        return sims, ids

    def logits(self, features) -> np.ndarray:
        sims, ids = self.neighbours(features)
        out = knn_votes(sims, self.labels[ids], self.num_classes)
        out *= self.scale / self.k
        return out


def knn_votes(sims: np.ndarray, neighbour_labels: np.ndarray, num_classes: int, rows: int = 4096) -> np.ndarray:
    """(N, C) float32 summed similarity per class of each row's neighbours.

    Summed in float64 ``rows`` rows at a time: a float64 (N, C) intermediate would be twice the
    logits (24,426 x 8,142 iNaturalist queries: 1.6 GB).
    """
    n = len(sims)
    out = np.empty((n, num_classes), dtype=np.float32)
    for s in range(0, n, rows):
        lab, w = neighbour_labels[s:s + rows], sims[s:s + rows]
        flat = (np.arange(len(lab))[:, None] * num_classes + lab).ravel()
        out[s:s + rows] = np.bincount(flat, weights=w.ravel().astype(np.float64),
                                      minlength=len(lab) * num_classes).reshape(len(lab), num_classes)
    return out


@register_head("zeroshot", kind="baseline", needs_train=False, defaults={"scale": 100.0})
def zeroshot(**kw) -> ZeroShot:
    """CLIP zero-shot: the cache's text classifier (template ensemble)."""
    return ZeroShot(**kw)


@register_head("ncm", kind="baseline", defaults={"scale": 100.0})
def ncm(**kw) -> NCM:
    """Nearest class mean of normalised train features (FAISS IndexFlatIP)."""
    return NCM(**kw)


@register_head("knn", kind="baseline", defaults={"k": 20, "scale": 100.0})
def knn(**kw) -> KNN:
    """k nearest train features, similarity-weighted vote (FAISS IndexFlatIP)."""
    return KNN(**kw)
