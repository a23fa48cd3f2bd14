"""Heads on cached features, one registry: trained heads (ballad, linear, cosine) and baselines
(zeroshot, ncm, knn). ``create_head(name, **kw)``; ``train_head`` / ``save_head`` / ``load_head``."""

from . import baselines, modules  # noqa: F401  (importing registers the heads)
from .baselines import KNN, NCM, ZeroShot, knn_votes
from .checkpoint import load_head, save_head
from .faiss_backend import choose_faiss_backend, ip_index
from .losses import LOSSES, make_loss
from .modules import BalladHead, CosineHead, LinearHead
from .registry import HeadSpec, create_head, get_head_spec, list_heads, register_head
from .samplers import SAMPLERS, sample_indices
from .train import TrainConfig, TrainResult, resolve_config, train_head, train_on_arrays

__all__ = ["KNN", "LOSSES", "NCM", "SAMPLERS", "BalladHead", "CosineHead", "HeadSpec", "LinearHead",
           "TrainConfig", "TrainResult", "ZeroShot", "choose_faiss_backend", "create_head", "get_head_spec",
           "ip_index", "knn_votes", "list_heads", "load_head", "make_loss", "register_head", "resolve_config",
           "sample_indices", "save_head", "train_head", "train_on_arrays"]
