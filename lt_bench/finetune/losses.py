"""Phase A objectives, and the module DDP wraps so that one forward feeds both towers.

``class`` (BALLAD): cross-entropy of ``scale * norm(image) @ norm(text_c)^T`` over *all* C class
prompts, re-encoded with gradients every step (unless the text tower is locked), scale fixed.
``infonce``: open_clip's symmetric in-batch ``ClipLoss`` with each image's class prompt as its
text and the model's learned logit scale (clamped to ln 100 after each step, as open_clip
does). Two images of one class in a batch are then false negatives: why ``class`` is default.

Under DDP each rank encodes its local images and all C prompts; the class loss is the mean over
the rank's local batch, and since every rank holds the same number of images (the sampler pads,
the loader drops incomplete batches) DDP's gradient average is the mean over the GLOBAL batch:
2 processes x batch b step exactly as 1 process x batch 2b.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ClipTrainWrapper(nn.Module):
    """``forward(images, class_idx)`` -> (normalised image features, normalised text features
    of the classes ``class_idx`` (all when None), exp(logit_scale)).

    DDP needs one forward that touches every trained parameter; encoding the prompts outside it
    would leave the text tower's gradients unsynchronised.
    """

    def __init__(self, model: nn.Module, class_tokens: torch.Tensor, cache_text: bool = False):
        super().__init__()
        self.model = model
        self.class_tokens = class_tokens  # a plain attribute, not a buffer: DDP need not broadcast it
        self.cache_text = cache_text  # locked text tower: class embeddings never change
        self._text_cache: torch.Tensor | None = None

    def encode_classes(self, class_idx: torch.Tensor | None = None) -> torch.Tensor:
        if self.cache_text:
            if self._text_cache is None:
                with torch.no_grad():
                    self._text_cache = F.normalize(self.model.encode_text(self.class_tokens).float(), dim=-1)
            t = self._text_cache
            return t if class_idx is None else t[class_idx]
        tokens = self.class_tokens if class_idx is None else self.class_tokens[class_idx]
        return F.normalize(self.model.encode_text(tokens), dim=-1)

    def forward(self, images: torch.Tensor, class_idx: torch.Tensor | None = None):
        image_features = F.normalize(self.model.encode_image(images), dim=-1)
        text_features = self.encode_classes(class_idx)
        return image_features, text_features, self.model.logit_scale.exp()


class ClassPromptLoss(nn.Module):
    """BALLAD's loss: CE over all class prompts at a fixed scale (image-to-class only)."""

    needs_all_classes = True

    def __init__(self, scale: float = 100.0):
        super().__init__()
        self.scale = float(scale)

    def text_index(self, labels: torch.Tensor):
        """Which class prompts the forward must encode (None = all) and the per-image index."""
        return None, labels

    def forward(self, image_features, text_features, logit_scale, target) -> torch.Tensor:
        logits = self.scale * image_features.float() @ text_features.float().t()
        return F.cross_entropy(logits, target)


class InfoNCELoss(nn.Module):
    """Symmetric in-batch InfoNCE (open_clip ``ClipLoss``), gathered over ranks with gradients."""

    needs_all_classes = False

    def __init__(self, rank: int = 0, world_size: int = 1):
        super().__init__()
        from open_clip.loss import ClipLoss

        self.clip_loss = ClipLoss(local_loss=False, gather_with_grad=world_size > 1, cache_labels=True,
                                  rank=rank, world_size=world_size)

    def text_index(self, labels: torch.Tensor):
        # Encode each class present once; every image then takes its class's embedding.
        classes, inverse = torch.unique(labels, return_inverse=True)
        return classes, inverse

    def forward(self, image_features, text_features, logit_scale, target) -> torch.Tensor:
        return self.clip_loss(image_features.float(), text_features[target].float(), logit_scale.float())


def create_loss(name: str, scale: float = 100.0, rank: int = 0, world_size: int = 1) -> nn.Module:
    if name == "class":
        return ClassPromptLoss(scale)
    if name == "infonce":
        return InfoNCELoss(rank, world_size)
    raise ValueError(f"unknown loss {name!r}")
