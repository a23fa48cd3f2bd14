"""Heads on cached features, one registry: trained heads (ballad, clip_adapter, linear, crt, lws,
cosine, tip_adapter_f) and baselines (zeroshot, ncm, knn, tip_adapter); post-hoc steps
(``posthoc``); the leaderboard's method catalogue (``methods``). ``create_head(name, **kw)``; ``train_head`` / ``save_head`` / ``load_head``.

The names below load on first use (PEP 562), so that ``lt_bench.heads.config`` (the torch-free
recipe and option definitions) can be read without importing torch.
"""

from importlib import import_module

_EXPORTS = {
    "baselines": ("KNN", "NCM", "ZeroShot", "knn_votes"),
    "checkpoint": ("load_head", "save_head"),
    "config": ("BASELINES", "LOSSES", "SAMPLERS", "TRAINED_HEADS", "TrainConfig"),
    "faiss_backend": ("choose_faiss_backend", "ip_index"),
    "losses": ("make_loss",),
    "modules": ("BalladHead", "CosineHead", "LinearHead", "LWSHead", "ResidualAdapterHead"),
    "posthoc": ("apply_posthoc",),
    "registry": ("HeadSpec", "create_head", "get_head_spec", "list_heads", "register_head"),
    "samplers": ("sample_indices",),
    "tip": ("TipAdapter", "TipAdapterFHead"),
    "train": ("TrainResult", "resolve_config", "train_head", "train_on_arrays"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'lt_bench.heads' has no attribute {name!r}")
    return getattr(import_module(f".{_WHERE[name]}", __name__), name)

