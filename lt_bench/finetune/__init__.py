"""Phase A: contrastive finetuning of both CLIP towers on the long-tailed train set.

``run_finetune(FinetuneConfig(...))`` is the library entry point (``ltbench finetune`` parses
options into the config and calls it); see ``train.py`` for launching under torchrun.
"""

from .config import FinetuneConfig
from .schedule import CosineSchedule, cosine_lr
from .train import run_finetune

__all__ = ["FinetuneConfig", "CosineSchedule", "cosine_lr", "run_finetune"]
