"""Image transforms: BALLAD's train augmentation at the model's own input size."""

from __future__ import annotations

from torchvision import transforms as T


def _to_rgb(img):
    return img if img.mode == "RGB" else img.convert("RGB")


def ballad_train_transform(image_size: int, mean, std) -> T.Compose:
    """RandomResizedCrop(size, scale 0.5-1, bicubic), flip, ColorJitter(0.4, 0.4, 0.4, 0).

    The reference hard-codes 224; we use the model's input size so that any backbone
    (and the 32 px test models) sees the same recipe.
    """
    return T.Compose([
        _to_rgb,
        T.RandomResizedCrop(image_size, scale=(0.5, 1.0), interpolation=T.InterpolationMode.BICUBIC),
        T.RandomHorizontalFlip(),
        T.ColorJitter(0.4, 0.4, 0.4, 0.0),
        T.ToTensor(),
        T.Normalize(mean, std),
    ])
