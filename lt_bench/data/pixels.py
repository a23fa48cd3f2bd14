"""Pixels as uint8 tensors: BALLAD's augmentation and the eval resize/crop as tensor ops that
run alike on the CPU and the GPU, and normalisation of a whole batch at once.

Why uint8 until the batch: ``ToTensor`` + ``Normalize`` per image cost as much as the decode of
a small JPEG, and float32 images are 4x the bytes a DataLoader worker hands over. Every input
path (``decode.py``) therefore stops at uint8 (3, S, S) and ``normalize_batch`` makes the model's
input on the device, with the same float32 operations ``ToTensor`` and ``Normalize`` apply (so
the ``pil`` path's batches are bit-identical to the per-image transforms it replaces).

The augmentation's random parameters are drawn once, by ``draw_ballad_params``, with the same
torch RNG calls in the same order as torchvision's ``RandomResizedCrop`` -> ``RandomHorizontalFlip``
-> ``ColorJitter`` (``models/transforms.py``): under one seed, the PIL path (``apply_pil``) and
the tensor path (``augment_tensor`` + ``jitter_batch``) crop, flip and jitter an image alike.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

import numpy as np
import torch
import torchvision.transforms.functional as TF
import torchvision.transforms.v2.functional as F2
from PIL import Image
from torchvision.transforms import InterpolationMode

# BALLAD's train augmentation (the reference's data/dataloader.py), one definition
CROP_SCALE = (0.5, 1.0)
CROP_RATIO = (3.0 / 4.0, 4.0 / 3.0)
JITTER = 0.4  # brightness, contrast and saturation; hue 0 (off)
BICUBIC = InterpolationMode.BICUBIC


@dataclass(frozen=True)
class AugParams:
    """One augmented view: crop box in the source image, flip, jitter order and factors."""

    top: int
    left: int
    height: int
    width: int
    flip: bool
    order: tuple[int, ...]  # ColorJitter's fn_idx: 0 brightness, 1 contrast, 2 saturation (3 hue: off)
    brightness: float
    contrast: float
    saturation: float

    def scaled(self, sy: float, sx: float) -> "AugParams":
        """The same view of the image decoded at another size (draft mode): the box scaled."""
        top, left = int(round(self.top * sy)), int(round(self.left * sx))
        return replace(self, top=top, left=left, height=max(1, int(round(self.height * sy))),
                       width=max(1, int(round(self.width * sx))))


def draw_ballad_params(height: int, width: int) -> AugParams:
    """Draw one view's parameters from torch's global RNG, exactly as torchvision's transforms
    of ``ballad_train_transform`` would for an image of this size (the same calls, in order)."""
    from torchvision import transforms as T

    box = T.RandomResizedCrop.get_params(torch.empty(1, 1, 1).expand(3, height, width), list(CROP_SCALE),
                                         list(CROP_RATIO))
    flip = bool(torch.rand(1) < 0.5)
    lo, hi = max(0.0, 1 - JITTER), 1 + JITTER
    order, b, c, s, _ = T.ColorJitter.get_params([lo, hi], [lo, hi], [lo, hi], None)
    return AugParams(*box, flip=flip, order=tuple(int(k) for k in order), brightness=b, contrast=c, saturation=s)


def seeded_params(seed: int, height: int, width: int) -> AugParams:
    """``draw_ballad_params`` from RNGs seeded by ``seed``; the global RNG states are restored,
    so a view is the same whatever the batching, worker or resume point."""
    py_state, t_state = random.getstate(), torch.get_rng_state()
    random.seed(seed)
    torch.default_generator.manual_seed(seed)
    try:
        return draw_ballad_params(height, width)
    finally:
        random.setstate(py_state)
        torch.set_rng_state(t_state)


# -- the PIL path (BALLAD's own transforms, applied with given parameters) ------------------------

def apply_pil(img: Image.Image, p: AugParams, size: int) -> Image.Image:
    """What ``ballad_train_transform`` does before ``ToTensor``, with the parameters ``p``."""
    img = TF.resized_crop(img, p.top, p.left, p.height, p.width, [size, size], BICUBIC)
    if p.flip:
        img = TF.hflip(img)
    adjust = {0: (TF.adjust_brightness, p.brightness), 1: (TF.adjust_contrast, p.contrast),
              2: (TF.adjust_saturation, p.saturation)}
    for k in p.order:
        if k in adjust:
            fn, factor = adjust[k]
            img = fn(img, factor)
    return img


def to_uint8(img: Image.Image) -> torch.Tensor:
    """An RGB PIL image as a (3, H, W) uint8 tensor (no copy of the values beyond one)."""
    return torch.from_numpy(np.array(img, dtype=np.uint8, copy=True)).permute(2, 0, 1).contiguous()


# -- the tensor path (CPU or GPU) --------------------------------------------------------------------

def eval_tensor(img: torch.Tensor, size: int) -> torch.Tensor:
    """Resize the shorter side to ``size`` (bicubic, antialiased) and crop the centre square:
    the eval transform (BALLAD's and open_clip's default) on a (3, H, W) uint8 tensor."""
    img = F2.resize(img, [size], interpolation=BICUBIC, antialias=True)
    return F2.center_crop(img, [size, size])


def augment_tensor(img: torch.Tensor, p: AugParams, size: int) -> torch.Tensor:
    """Crop, resize (bicubic, antialiased) and flip one (3, H, W) uint8 tensor; the colour jitter
    is ``jitter_batch`` (one pass over a whole batch)."""
    out = F2.resized_crop(img, p.top, p.left, p.height, p.width, [size, size], interpolation=BICUBIC,
                          antialias=True)
    return out.flip(-1) if p.flip else out


def _luma(x: torch.Tensor) -> torch.Tensor:
    """PIL's RGB -> L of integer-valued float32 (B, 3, H, W): ``(19595 R + 38470 G + 7471 B +
    2^15) >> 16``, as ``Image.convert("L")`` computes it (exact in float32: every partial sum is
    an integer below 2^24)."""
    grey = x[:, 0] * 19595
    grey.add_(x[:, 1], alpha=38470).add_(x[:, 2], alpha=7471)
    return grey.add_(32768).mul_(1 / 65536).floor_().unsqueeze(1)


def _as_uint8(y: torch.Tensor) -> torch.Tensor:
    """Integer-valued float32 in 0..255 -> uint8 (numpy's cast is ~8x torch's on the CPU)."""
    if y.device.type == "cpu":
        return torch.from_numpy(y.numpy().astype(np.uint8))
    return y.to(torch.uint8)


def _adjust(y: torch.Tensor, op: int, factor: torch.Tensor) -> torch.Tensor:
    """One ImageEnhance step, in place: PIL's ``Image.blend(degenerate, y, factor)`` =
    ``degenerate + factor * (y - degenerate)`` in float32, clipped to 0..255 and truncated."""
    f = factor.view(-1, 1, 1, 1)
    if op == 0:  # brightness: the degenerate image is black
        y.mul_(f)
    else:  # contrast: the mean grey level (PIL: int(mean + 0.5)); saturation: the grey image
        grey = _luma(y)
        d = torch.floor(grey.mean(dim=(1, 2, 3), keepdim=True) + 0.5) if op == 1 else grey
        y.sub_(d).mul_(f).add_(d)
    return y.clamp_(0, 255).floor_()


def jitter_batch(x: torch.Tensor, params: list[AugParams]) -> torch.Tensor:
    """BALLAD's colour jitter (brightness, contrast, saturation, each by its factor, in each view's
    own random order) on a (B, 3, S, S) uint8 batch, as PIL's ImageEnhance computes it: every
    step truncates to uint8 values like PIL's intermediate images, so given the same input the
    result is PIL's exactly. The views that take the same operation at a step go together."""
    if not params:
        return x
    y = x.float()
    factors = torch.tensor([[p.brightness, p.contrast, p.saturation] for p in params], dtype=torch.float32,
                           device=y.device)
    orders = [[k for k in p.order if k < 3] for p in params]
    for step in range(len(orders[0])):
        for op in sorted({o[step] for o in orders}):
            rows = [b for b, o in enumerate(orders) if o[step] == op]
            if len(rows) == len(orders):
                y = _adjust(y, op, factors[:, op])
            else:
                idx = torch.tensor(rows, device=y.device)
                y[idx] = _adjust(y[idx], op, factors[idx, op])
    return _as_uint8(y)


def normalize_batch(x: torch.Tensor, mean, std, device: torch.device | str | None = None) -> torch.Tensor:
    """(B, 3, S, S) uint8 -> float32 model input on ``device``: ``ToTensor``'s ``/ 255`` then
    ``Normalize``'s ``(x - mean) / std``, the same float32 operations in the same order."""
    x = x.to(device, non_blocking=True) if device is not None else x
    # the cast is exact either way; on the CPU numpy's is several times torch's (issue 14's
    # benchmark: 2 vs 17 ms for a 64 x 224 px batch), the rest is in place
    y = torch.from_numpy(x.numpy().astype(np.float32)) if x.device.type == "cpu" else x.to(torch.float32)
    y = y.div_(255)
    m = torch.as_tensor(mean, dtype=torch.float32, device=y.device).view(1, -1, 1, 1)
    s = torch.as_tensor(std, dtype=torch.float32, device=y.device).view(1, -1, 1, 1)
    return y.sub_(m).div_(s)

