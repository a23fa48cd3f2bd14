"""What extraction's DataLoader workers compute: each image's center view and its augmented
views (as many as ``views.views_per_image`` gives it), seeded per ``(seed, image, view)``."""

from __future__ import annotations

import random

import numpy as np
import torch

from ..data.base import Split
from ..errors import LTBenchError


def view_seed(seed: int, index: int, view: int) -> int:
    return int(np.random.SeedSequence([seed, index, view]).generate_state(1)[0])


class Items(torch.utils.data.Dataset):
    """Image i -> (center view (3, S, S), augmented views (k_i, 3, S, S), i, ok). Never raises
    for a bad image: it returns zeros and ok=0, and the main process decides (skip or stop).

    Args:
        view_counts: (N,) augmented views of each image (None: none).
    """

    def __init__(self, split: Split, center, augment, view_counts, seed: int, size: int):
        self.split, self.center, self.augment = split, center, augment
        self.counts = None if view_counts is None else np.asarray(view_counts, dtype=np.int64)
        self.seed, self.size = seed, size

    def __len__(self) -> int:
        return len(self.split)

    def _augmented(self, img, i: int, v: int) -> torch.Tensor:
        # torchvision v1 transforms draw from torch's global CPU RNG (and python's random);
        # seed both per (seed, image, view) and restore them, so the view is the same whatever
        # the batching, worker or resume point.
        s = view_seed(self.seed, i, v)
        py_state, t_state = random.getstate(), torch.get_rng_state()
        random.seed(s)
        torch.default_generator.manual_seed(s)
        try:
            return self.augment(img)
        finally:
            random.setstate(py_state)
            torch.set_rng_state(t_state)

    def __getitem__(self, i: int):
        k = 0 if self.counts is None else int(self.counts[i])
        try:
            img = self.split.load_image(i)
            x = self.center(img)
            xs = torch.stack([self._augmented(img, i, v) for v in range(k)]) if k else torch.empty(0, 3, *x.shape[1:])
            ok = 1
        except Exception:  # noqa: BLE001 - any unreadable image; the main process names it
            x = torch.zeros(3, self.size, self.size)
            xs = torch.zeros(k, 3, self.size, self.size)
            ok = 0
        return x, xs, i, ok


def collate(items):
    """(centers (B, 3, S, S), augmented views of the batch's images in order (sum k_i, 3, S, S),
    indices (B,), ok flags (B,))."""
    x, xs, idx, ok = zip(*items)
    return torch.stack(x), torch.cat(xs), torch.tensor(idx, dtype=torch.int64), torch.tensor(ok, dtype=torch.int64)


def loader(items: Items, batches: list[list[int]], workers: int, device: torch.device):
    import multiprocessing as mp

    kw = {}
    if workers > 0:
        # fork: the dataset (closures, open files) need not pickle, and workers start fast
        kw["multiprocessing_context"] = "fork" if "fork" in mp.get_all_start_methods() else None
    return torch.utils.data.DataLoader(items, batch_sampler=batches, num_workers=workers, collate_fn=collate,
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
