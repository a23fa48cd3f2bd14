"""What extraction's DataLoader workers compute: each image's center view and its augmented
views (as many as ``views.views_per_image`` gives it), seeded per ``(seed, image, view)``, as
uint8 pixels (or, ``--decode gpu``, JPEG bytes) that ``finish_batch`` normalises on the device
(``lt_bench.data.decode``)."""

from __future__ import annotations

import numpy as np
import torch

from ..data.base import Split
from ..data.decode import Collate, ImagePath, Prepared, eval_is_resize_crop, split_eval_transform
from ..errors import LTBenchError


def view_seed(seed: int, index: int, view: int) -> int:
    return int(np.random.SeedSequence([seed, index, view]).generate_state(1)[0])


class Items(torch.utils.data.Dataset):
    """Image i -> (``Prepared`` center view and k_i augmented views, i, ok). Never raises for a
    bad image: it returns zeros and ok=0, and the main process decides (skip or stop).

    Args:
        path: the decode path (``ImagePath``).
        view_counts: (N,) augmented views of each image (None: none).
    """

    def __init__(self, split: Split, path: ImagePath, view_counts, seed: int):
        self.split, self.path = split, path
        self.counts = None if view_counts is None else np.asarray(view_counts, dtype=np.int64)
        self.seed, self.size = seed, path.size

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i: int):
        k = 0 if self.counts is None else int(self.counts[i])
        try:
            out = self.path.prepare(self.split, i, [view_seed(self.seed, i, v) for v in range(k)])
            ok = 1
        except Exception:  # noqa: BLE001 - any unreadable image; the main process names it
            s = self.size
            out = Prepared(center=torch.zeros(3, s, s, dtype=torch.uint8),
                           views=torch.zeros(k, 3, s, s, dtype=torch.uint8))
            ok = 0
        return out, i, ok


def image_path(bundle, decode: str, device: torch.device) -> ImagePath:
    """The model's input path for a resolved ``decode`` (``data.decode.resolve_decode``)."""
    parts = split_eval_transform(bundle.preprocess_val)
    if parts is None:
        raise LTBenchError(f"{bundle.info.model}'s eval transform does not end in ToTensor + Normalize: "
                           "lt_bench cannot feed it uint8 batches")
    size = bundle.info.image_size
    if decode != "pil" and not eval_is_resize_crop(bundle.preprocess_val, size):
        raise LTBenchError(f"--decode {decode} computes the eval view as resize (bicubic) + centre crop, and "
                           f"{bundle.info.model}'s eval transform is another: use --decode pil")
    return ImagePath(decode, size, parts[0], parts[1], parts[2])


def finish_batch(path: ImagePath, batch, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor,
                                                                          torch.Tensor]:
    """(centers (B, 3, S, S), augmented views in image order (sum k_i, 3, S, S), indices, ok) of
    a collated batch: normalised float32 on ``device``; images the device could not decode
    either get ok=0 like a worker's unreadable ones."""
    prepared, idx, ok = batch
    x, xs, bad = path.finish(prepared, device)
    if bad:
        ok = ok.clone()
        ok[bad] = 0
    return x, xs, idx, ok


def loader(items: Items, batches: list[list[int]], workers: int, device: torch.device):
    import multiprocessing as mp

    kw = {}
    if workers > 0:
        # fork: the dataset (closures, open files) need not pickle, and workers start fast
        kw["multiprocessing_context"] = "fork" if "fork" in mp.get_all_start_methods() else None
        kw["prefetch_factor"] = 4  # uint8 batches are small: keep more in flight
    return torch.utils.data.DataLoader(items, batch_sampler=batches, num_workers=workers, collate_fn=Collate(items.size),
                                       pin_memory=device.type == "cuda", **kw)


def raise_bad_image(split: Split, split_name: str, i: int) -> None:
    """Reproduce the loader's one-line error for image i in this process (workers wrap theirs)."""
    try:
        split.load_image(i)
    except LTBenchError as e:
        raise LTBenchError(f"{e} ({split_name} image {split.ids[i]}; pass --skip-bad to leave "
                           "unreadable images out)") from None
    except Exception as e:  # noqa: BLE001
        raise LTBenchError(f"cannot read {split_name} image {split.ids[i]}: {e} "
                           "(pass --skip-bad to leave unreadable images out)") from None
    raise LTBenchError(f"cannot transform {split_name} image {split.ids[i]} "
                       "(pass --skip-bad to leave unreadable images out)")
