"""The one place that decides FAISS GPU vs CPU, and says what it chose."""

from __future__ import annotations

import numpy as np

from ..errors import LTBenchError
from ..log import get_logger

log = get_logger(__name__)


def choose_faiss_backend(device: str = "auto") -> str:
    """``"gpu"`` when the installed faiss has GPUs and torch sees CUDA (and ``device`` allows it), else ``"cpu"``."""
    import faiss
    import torch

    gpus = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
    cuda = torch.cuda.is_available()
    if str(device) != "cpu" and gpus > 0 and cuda:
        backend, why = "gpu", f"faiss sees {gpus} GPU(s)"
    else:
        why = ("--device cpu" if str(device) == "cpu" else
               "this faiss build has no GPU support" if not hasattr(faiss, "StandardGpuResources") else
               "faiss sees no GPU" if gpus == 0 else "torch sees no CUDA")
        backend = "cpu"
    log.info("faiss %s: %s index (%s)", faiss.__version__, backend.upper(), why)
    return backend


def as_faiss_input(x, dim: int, what: str) -> np.ndarray:
    """C-contiguous float32 (N, dim), checked here so faiss never fails on a bare assert."""
    x = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
    if x.ndim != 2 or x.shape[1] != dim:
        raise LTBenchError(f"{what} have shape {tuple(x.shape)}, expected (N, {dim})")
    return x


def ip_index(dim: int, backend: str = "cpu"):
    """An exact inner-product index (``IndexFlatIP``) on the chosen backend."""
    import faiss

    index = faiss.IndexFlatIP(dim)
    if backend == "gpu":
        res = faiss.StandardGpuResources()
        index = faiss.index_cpu_to_gpu(res, 0, index)
        index._lt_bench_res = res  # keep the GPU resources alive as long as the index
    return index


def faiss_inner_products(queries: np.ndarray, base: np.ndarray) -> np.ndarray:
    """All (Q, B) inner products, computed by FAISS (CPU); for when every score is needed."""
    import faiss

    return faiss.pairwise_distances(queries, base, faiss.METRIC_INNER_PRODUCT)
