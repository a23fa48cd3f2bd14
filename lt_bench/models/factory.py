"""``create_model``: one entry point over open_clip for hub tags, local checkpoints,
random init and the tiny configs shipped with lt_bench.

Which weights win, in order: ``pretrained`` as an existing local file (open_clip format or a
``{"state_dict": ...}`` file as ``ltbench finetune`` writes), then ``none`` (random init),
then a hub tag of ``model`` (needs a network the first time; QuickGELU where open_clip's tag table
says the weights were trained with it: every ``openai`` tag, and others such as ``dfn2b``).

The architecture of a local checkpoint (open_clip issue 771: OpenAI's weights run QuickGELU, the
plain open_clip configs nn.GELU, and the weights load into either without complaint):

- a checkpoint that records its architecture (``arch``: what ``architecture()`` returns; every
  ``ltbench finetune`` checkpoint) is rebuilt from it: QuickGELU when recorded, its
  preprocessing. ``model`` must name the same network up to the activation (``ViT-B-16`` and
  ``ViT-B-16-quickgelu`` both take a QuickGELU ViT-B-16 checkpoint); another network, or a
  config that sets ``quick_gelu`` itself to the other value, is refused.
- an ``ltbench finetune`` checkpoint written before ``arch`` was recorded is rebuilt as the
  lt_bench of its day built it: ``model``'s open_clip config, QuickGELU exactly when it was
  trained from the ``openai`` tag (or the config sets it).
- any other file (a plain open_clip state_dict) carries no facts: it gets ``model``'s open_clip
  config as it is, nn.GELU unless the config sets ``quick_gelu``. For OpenAI-trained weights
  pass the ``-quickgelu`` name (``ViT-B-16-quickgelu``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import open_clip
import torch
from open_clip.transformer import QuickGELU

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
    arch: dict = field(default_factory=dict)  # architecture(): what the weights are run in

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


def _plain(value):
    """JSON-shaped (tuples become lists): comparable, and loadable with weights_only."""
    return json.loads(json.dumps(value))


def architecture(model_name: str, clip_model: torch.nn.Module) -> dict:
    """The facts that decide which function a set of weights computes, read off the network.

    ``model`` (the open_clip name it was built from), ``quick_gelu`` (whether its activations
    are QuickGELU), ``image_size``, ``model_cfg`` (the open_clip config with ``quick_gelu`` as
    built) and ``preprocess_cfg`` (the model's preprocessing: size, mean, std, interpolation...).
    Every ``ltbench finetune`` checkpoint records this as ``arch``.
    """
    net = getattr(clip_model, "module", clip_model)  # a DDP wrapper
    quick = any(isinstance(m, QuickGELU) for m in net.modules())
    cfg = open_clip.get_model_config(model_name) or {}
    cfg["quick_gelu"] = quick
    return {"model": model_name, "quick_gelu": quick, "image_size": _image_size(net),
            "model_cfg": _plain(cfg), "preprocess_cfg": _plain(getattr(net.visual, "preprocess_cfg", {}))}


def _recorded_arch(path: Path) -> dict | None:
    """The architecture a checkpoint file records, or None when it records none (see the module docstring)."""
    try:  # mmap: the tensors are not read
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:
        return None  # not a torch zip file (safetensors, npz, TorchScript...): open_clip's loader decides
    if not isinstance(ckpt, dict):
        return None
    if isinstance(ckpt.get("arch"), dict):
        return ckpt["arch"]
    if all(k in ckpt for k in ("state_dict", "model", "pretrained", "config", "lt_bench_version")):
        cfg = open_clip.get_model_config(str(ckpt["model"]))  # finetune before arch was recorded
        if cfg is None:
            return None
        quick = ckpt["pretrained"] == "openai" or bool(cfg.get("quick_gelu", False))
        cfg["quick_gelu"] = quick
        return {"model": ckpt["model"], "quick_gelu": quick, "model_cfg": _plain(cfg)}
    return None


def builds_quick_gelu(model: str, pretrained: str) -> bool:
    """Whether ``create_model(model, pretrained)`` builds QuickGELU activations, without building
    it (what an extraction's identity records; ``pipeline.extract_state`` compares it)."""
    own = bool((open_clip.get_model_config(model) or {}).get("quick_gelu", False))
    path = Path(os.path.expanduser(str(pretrained)))
    if str(pretrained).lower() in RANDOM_INIT:
        return own
    if path.is_file():
        arch = _recorded_arch(path)
        return bool(arch["quick_gelu"]) if arch is not None else own
    if pretrained in open_clip.list_pretrained_tags_by_model(model):
        return bool(open_clip.get_pretrained_cfg(model, pretrained).get("quick_gelu", False)) or own
    return own


def _activation(quick: bool) -> str:
    return "QuickGELU" if quick else "nn.GELU"


def _check_arch(path: Path, model: str, arch: dict) -> None:
    """Refuse ``model`` when it is not the network the checkpoint records (activation aside)."""
    want = _plain(open_clip.get_model_config(model))
    rec = dict(arch["model_cfg"])
    rec_quick = bool(arch["quick_gelu"])
    explicit = want.pop("quick_gelu", None)
    rec.pop("quick_gelu", None)
    if want != rec:
        keys = sorted(k for k in set(want) | set(rec) if want.get(k) != rec.get(k))
        if arch["model"] == model:
            raise LTBenchError(f"{path} was trained with open_clip's {model} config as it was then, and this "
                               f"open_clip's differs ({', '.join(keys)}): use the open_clip version recorded in "
                               "the checkpoint's environment")
        raise LTBenchError(f"{path} holds a {arch['model']} network, not {model} ({', '.join(keys)} differ): "
                           f"pass --model {arch['model']}")
    if explicit is not None and bool(explicit) != rec_quick:
        fix = f"pass --model {arch['model']}" if arch["model"] != model else "pass a --model without quick_gelu set"
        raise LTBenchError(f"{path} was trained with {_activation(rec_quick)} but --model {model} sets "
                           f"{_activation(bool(explicit))}: {fix}")


def _checkpoint_error(path: Path, model: str, e: Exception) -> LTBenchError:
    """Why ``path`` could not be loaded into ``model``, in one line that never relays torch's advice
    to load with ``weights_only=False`` (that runs arbitrary code from the file)."""
    first = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
    if "Error(s) in loading state_dict" in first or "size mismatch" in str(e):
        return LTBenchError(f"checkpoint {path} does not fit model {model}: {first}")
    if "Weights only load failed" in str(e):
        why = ("is not a plain PyTorch checkpoint of tensors (torch.load(weights_only=True) refused it: another "
               "format, or Python objects, which lt_bench does not unpickle as that could run code)")
    else:
        why = f"is not a PyTorch checkpoint of a state_dict ({type(e).__name__})"
    return LTBenchError(f"--pretrained {path} {why}: give a state_dict checkpoint (open_clip's, or "
                        "`ltbench finetune`'s best.pt), a hub tag or 'none'")


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
        arch = _recorded_arch(path)
        if arch is None:
            log.info("%s records no architecture: building open_clip's %s config as it is (%s)", path, model,
                     _activation(bool(open_clip.get_model_config(model).get("quick_gelu", False))))
            clip_model, _, preprocess_val = open_clip.create_model_and_transforms(model, pretrained=None)
        else:
            _check_arch(path, model, arch)
            quick = bool(arch["quick_gelu"])
            if quick and not open_clip.get_model_config(model).get("quick_gelu", False):
                log.info("%s was trained with QuickGELU: building %s with QuickGELU", path, model)
            pp = arch.get("preprocess_cfg") or {}  # the recorded preprocessing; the size follows the network
            clip_model, _, preprocess_val = open_clip.create_model_and_transforms(
                model, pretrained=None, force_quick_gelu=quick, image_mean=pp.get("mean"), image_std=pp.get("std"),
                image_interpolation=pp.get("interpolation"), image_resize_mode=pp.get("resize_mode"))
            if architecture(model, clip_model)["quick_gelu"] != quick:
                raise LTBenchError(f"could not build {model} with {_activation(quick)} as {path} records; "
                                   "pass --model " + str(arch["model"]))
        try:
            open_clip.load_checkpoint(clip_model, str(path))
        except Exception as e:
            raise _checkpoint_error(path, model, e) from None
        sha = sha256_file(path)
    else:
        tags = open_clip.list_pretrained_tags_by_model(model)
        if pretrained not in tags:
            hint = f"known tags for {model}: {known(tags)}" if tags else f"{model} has no hub tags"
            raise LTBenchError(f"--pretrained {pretrained!r} is neither a file nor a known tag; {hint}, "
                               f"or give a local checkpoint path, or 'none'")
        quick = bool(open_clip.get_pretrained_cfg(model, pretrained).get("quick_gelu", False))
        try:
            clip_model, _, preprocess_val = open_clip.create_model_and_transforms(
                model, pretrained=pretrained, force_quick_gelu=quick)
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
                     mean=mean, std=std, arch=architecture(model, clip_model))
    return ClipBundle(model=clip_model, preprocess_val=preprocess_val,
                      preprocess_train=ballad_train_transform(size, mean, std),
                      tokenizer=open_clip.get_tokenizer(model), info=info)
