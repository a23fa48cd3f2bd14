"""``create_model``: one entry point over open_clip for hub tags, local checkpoints,
random init and the tiny configs shipped with lt_bench.

Which weights win, in order: ``pretrained`` as an existing local file (open_clip format or a
``{"state_dict": ...}`` file as ``ltbench finetune`` writes), then ``none`` (random init),
then a hub tag of ``model`` (needs a network the first time; ``openai`` tags get QuickGELU).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import open_clip
import torch

from ..errors import LTBenchError, known
from ..io import sha256_file
from ..log import get_logger
from .transforms import ballad_train_transform

log = get_logger(__name__)

CONFIG_DIR = Path(__file__).parent / "configs"
open_clip.add_model_config(CONFIG_DIR)  # registers ltb-tiny-* by file name
TINY_MODELS = sorted(p.stem for p in CONFIG_DIR.glob("*.json"))
RANDOM_INIT = ("none", "", "random")


@dataclass
class ModelInfo:
    """What identifies the weights: recorded in every cache, checkpoint and result."""

    model: str
    pretrained: str  # hub tag, "none", or the checkpoint path as given
    checkpoint_sha256: str  # "" for a hub tag or random init
    image_size: int
    embed_dim: int
    mean: tuple
    std: tuple

    def as_dict(self) -> dict:
        return dict(model=self.model, pretrained=self.pretrained,
                    checkpoint_sha256=self.checkpoint_sha256, image_size=self.image_size,
                    embed_dim=self.embed_dim)


@dataclass
class ClipBundle:
    model: torch.nn.Module
    preprocess_val: Callable  # deterministic: resize, center crop, normalise
    preprocess_train: Callable  # BALLAD augmentation at the model's size
    tokenizer: Callable
    info: ModelInfo


def list_models() -> list[str]:
    return sorted(open_clip.list_models())


def _image_size(model) -> int:
    size = model.visual.image_size
    return int(size[0] if isinstance(size, (tuple, list)) else size)


def create_model(model: str, pretrained: str = "none", device: str | torch.device = "cpu") -> ClipBundle:
    """Build an open_clip model, its transforms and tokenizer.

    Args:
        model: an open_clip architecture name (``ViT-B-16``, ``RN50``, ``ltb-tiny-vit``...).
        pretrained: a hub tag (``openai``, ``laion2b_s34b_b88k``...), a local checkpoint
            path, or ``none`` for random init.
        device: where the model goes.
    """
    if model not in open_clip.list_models():
        raise LTBenchError(f"unknown model {model!r}; known: {', '.join(TINY_MODELS)} and open_clip's "
                           f"{len(open_clip.list_models()) - len(TINY_MODELS)} (see `python -c \"import open_clip; print(open_clip.list_models())\"`)")
    sha = ""
    path = Path(os.path.expanduser(str(pretrained)))
    if str(pretrained).lower() in RANDOM_INIT:
        clip_model, _, preprocess_val = open_clip.create_model_and_transforms(model, pretrained=None)
        pretrained = "none"
    elif path.is_file():
        clip_model, _, preprocess_val = open_clip.create_model_and_transforms(model, pretrained=None)
        try:
            open_clip.load_checkpoint(clip_model, str(path))
        except Exception as e:
            raise LTBenchError(f"checkpoint {path} does not fit model {model}: {str(e).splitlines()[0][:300]}") from None
        sha = sha256_file(path)
    else:
        tags = open_clip.list_pretrained_tags_by_model(model)
        if pretrained not in tags:
            hint = f"known tags for {model}: {known(tags)}" if tags else f"{model} has no hub tags"
            raise LTBenchError(f"--pretrained {pretrained!r} is neither a file nor a known tag; {hint}, "
                               f"or give a local checkpoint path, or 'none'")
        try:
            clip_model, _, preprocess_val = open_clip.create_model_and_transforms(
                model, pretrained=pretrained, force_quick_gelu=(pretrained == "openai"))
        except Exception as e:
            raise LTBenchError(
                f"could not load {model}/{pretrained} weights ({type(e).__name__}: {str(e).splitlines()[0][:200]}); "
                "without a network, download the checkpoint elsewhere and pass its path to --pretrained") from None
    clip_model = clip_model.to(device).eval()
    mean = tuple(getattr(clip_model.visual, "image_mean", None) or open_clip.OPENAI_DATASET_MEAN)
    std = tuple(getattr(clip_model.visual, "image_std", None) or open_clip.OPENAI_DATASET_STD)
    size = _image_size(clip_model)
    info = ModelInfo(model=model, pretrained=str(pretrained), checkpoint_sha256=sha, image_size=size,
                     embed_dim=int(open_clip.get_model_config(model)["embed_dim"]),
                     mean=mean, std=std)
    return ClipBundle(model=clip_model, preprocess_val=preprocess_val,
                      preprocess_train=ballad_train_transform(size, mean, std),
                      tokenizer=open_clip.get_tokenizer(model), info=info)
