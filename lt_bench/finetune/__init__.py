"""Phase A: contrastive finetuning of both CLIP towers on the long-tailed train set.

``run_finetune(FinetuneConfig(...))`` is the library entry point (``lt_bench.pipeline`` and
``ltbench finetune`` call it); see ``train.py`` for launching under torchrun. The training
names load on first use, so that the torch-free ``FinetuneConfig`` can be read without torch.
"""

from importlib import import_module

from .config import FinetuneConfig

_LAZY = {"CosineSchedule": "schedule", "cosine_lr": "schedule", "run_finetune": "train"}
__all__ = ["FinetuneConfig", *_LAZY]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'lt_bench.finetune' has no attribute {name!r}")
    return getattr(import_module(f".{_LAZY[name]}", __name__), name)
