"""Phase A data: the train/val index sets, the samplers and loaders of one rank."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler

from ..data import LTDataset
from ..data.decode import Collate, ImagePath
from ..errors import LTBenchError

HOLDOUT_SEED = 20211129  # fixed, not --seed: every seed of a dataset validates on the same images


def holdout_indices(labels: np.ndarray, fraction: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """A deterministic stratified split of train into (train, held-out val) row indices.

    Each class gives ``round(fraction * n)`` images, at least 1 when it has 2 or more, and
    always keeps at least 1 for training.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(HOLDOUT_SEED)
    train, val = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        n = len(idx)
        k = 0 if n < 2 else min(n - 1, max(1, int(round(fraction * n))))
        perm = rng.permutation(idx)
        val.append(perm[:k])
        train.append(perm[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def train_val_indices(ds: LTDataset, val_fraction: float):
    """(train indices, val split name, val indices): the dataset's val split, or a train slice."""
    train_labels = ds.split("train").labels
    if "val" in ds.splits and len(ds.splits["val"]):
        train_idx, val_name, val_idx = np.arange(len(train_labels)), "val", np.arange(len(ds.splits["val"]))
    else:
        train_idx, val_idx = holdout_indices(train_labels, val_fraction)
        val_name = "train"
    counts = np.bincount(train_labels[train_idx], minlength=ds.num_classes)
    empty = np.flatnonzero(counts == 0)
    if len(empty):
        c = int(empty[0])
        more = f" (and {len(empty) - 1} more classes)" if len(empty) > 1 else ""
        raise LTBenchError(f"{ds.name}: class {c} ({ds.classnames[c]!r}) has no training images{more}; "
                           "every class needs at least one: fix the split file or the dataset options")
    return train_idx, val_name, val_idx


class PreparedImages(torch.utils.data.Dataset):
    """(``Prepared`` image, label, index) of one split's images through an input path
    (``lt_bench.data.decode``): one augmented view drawn from the worker's RNG (``augment``;
    the draws BALLAD's transform makes there), or the eval view."""

    def __init__(self, split, path: ImagePath, augment: bool, indices):
        self.split, self.path, self.augment = split, path, augment
        self.indices = np.asarray(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, k: int):
        i = int(self.indices[k])
        prepared = self.path.prepare(self.split, i, [None] if self.augment else [], center=not self.augment)
        return prepared, int(self.split.labels[i]), i


class FinishedLoader:
    """A DataLoader of ``PreparedImages`` whose batches come out as normalised model input on
    ``device`` (``ImagePath.finish``: uint8 normalised there; nvJPEG decode for ``gpu``)."""

    def __init__(self, loader: DataLoader, dataset: PreparedImages, device: torch.device):
        self.loader, self.dataset, self.device = loader, dataset, torch.device(device)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        ds = self.dataset
        for prepared, labels, idx in self.loader:
            x, xs, bad = ds.path.finish(prepared, self.device)
            if bad:
                i = int(idx[bad[0]])
                raise LTBenchError(f"cannot decode image {ds.split.root / ds.split.ids[i]}: not a readable JPEG "
                                   "(fix or remove the file)")
            yield (xs if ds.augment else x), labels, idx


def _loader(dataset: PreparedImages, device, **kw) -> FinishedLoader:
    # Workers are not persistent: every epoch's workers are seeded afresh from the loader's
    # generator (reseeded per epoch by train.py), which is what makes a resumed run draw the
    # augmentations of an uninterrupted one. uint8 batches are small: keep more in flight.
    if kw.get("num_workers", 0) > 0:
        kw["prefetch_factor"] = 4
    return FinishedLoader(DataLoader(dataset, collate_fn=Collate(dataset.path.size), **kw), dataset, device)


def train_loader(ds: LTDataset, indices, path: ImagePath, augment: bool, local_batch: int, rank: int, world: int,
                 seed: int, workers: int, device: torch.device):
    """This rank's loader and its sampler (``set_epoch`` it every epoch).

    DistributedSampler shuffles one permutation for every world size (seeded by seed + epoch)
    and hands rank r the items r, r + W, ...; with local batch B/W the ranks' k-th batches
    together are exactly the k-th batch of B of a single process. Incomplete batches are
    dropped so that every step sees a full, equal-sized batch on every rank.
    """
    dataset = PreparedImages(ds.split("train"), path, augment, indices)
    sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True, seed=seed, drop_last=False)
    if len(sampler) < local_batch:
        raise LTBenchError(f"{ds.name}: {len(dataset)} training images are fewer than one batch of "
                           f"{local_batch * world}: lower --batch-size")
    generator = torch.Generator()
    loader = _loader(dataset, device, batch_size=local_batch, sampler=sampler, num_workers=workers, drop_last=True,
                     pin_memory=torch.device(device).type == "cuda", generator=generator)
    return loader, sampler, generator


def val_loader(ds: LTDataset, split_name: str, indices, path: ImagePath, batch: int, rank: int, world: int,
               workers: int, device: torch.device):
    """This rank's shard of the validation images (no padding, so no image counts twice)."""
    dataset = PreparedImages(ds.split(split_name), path, False, np.asarray(indices)[rank::world])
    return _loader(dataset, device, batch_size=batch, shuffle=False, num_workers=workers,
                   pin_memory=torch.device(device).type == "cuda")
