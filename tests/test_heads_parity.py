"""Parity with BALLAD's released code (github gaopengcuhk/BALLAD @ 189603c): the class-aware
sampler and the Phase B learning-rate schedule, ported in a few lines and compared exactly.

Sampler: the port below is data/ClassAwareSampler.py, lines 10-65, with one change: the
reference shuffles with Python's global ``random``, the port with a shuffle function given per
cycle. Given lt_bench's streams (one numpy Generator per class and one for the class cycle,
spawned from the seed), the port and ``ClassAwareSampler`` must yield the same indices, epoch
after epoch. Run on the reference's own global ``random``, the port and lt_bench must show the
same structure (k consecutive draws of one class per visit, the class cycle, per-class cycles
without replacement).

Schedule: the port is train.py, lines 173-178 and 274 (CosineAnnealingLR(T_max=epochs),
stepped at the top of each epoch); lt_bench's optimizer must see the same rate at every step.
"""

import itertools
import random
import warnings

import numpy as np
import pytest
import torch

from lt_bench.heads import resolve_config, train_on_arrays
from lt_bench.heads.samplers import ClassAwareSampler, make_sampler
from lt_bench.heads.train import reference_epoch_lrs

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ---- the reference's sampler, ported (data/ClassAwareSampler.py, lines 10-65) -----------------
class RandomCycleIter:
    def __init__(self, data, shuffle):
        self.data_list = list(data)
        self.length = len(self.data_list)
        self.i = self.length - 1
        self.shuffle = shuffle  # the reference: random.shuffle

    def __iter__(self):
        return self

    def __next__(self):
        self.i += 1
        if self.i == self.length:
            self.i = 0
            self.shuffle(self.data_list)
        return self.data_list[self.i]


def class_aware_sample_generator(cls_iter, data_iter_list, n, num_samples_cls=1):
    i = 0
    j = 0
    while i < n:
        if j >= num_samples_cls:
            j = 0
        if j == 0:
            temp_tuple = next(zip(*[data_iter_list[next(cls_iter)]] * num_samples_cls))
            yield temp_tuple[j]
        else:
            yield temp_tuple[j]
        i += 1
        j += 1


class RefClassAwareSampler:
    def __init__(self, labels, num_samples_cls, shuffles):
        num_classes = len(np.unique(labels))
        self.class_iter = RandomCycleIter(range(num_classes), shuffles[num_classes])
        cls_data_list = [list() for _ in range(num_classes)]
        for i, label in enumerate(labels):
            cls_data_list[label].append(i)
        self.data_iter_list = [RandomCycleIter(x, shuffles[c]) for c, x in enumerate(cls_data_list)]
        self.num_samples = max([len(x) for x in cls_data_list]) * len(cls_data_list)
        self.num_samples_cls = num_samples_cls

    def __iter__(self):
        return class_aware_sample_generator(self.class_iter, self.data_iter_list, self.num_samples,
                                            self.num_samples_cls)


def ref_epochs(sampler, per_epoch: int, epochs: int) -> list[np.ndarray]:
    """What the reference's epoch loop trains on: a new iterator per epoch, cut after its steps."""
    return [np.array(list(itertools.islice(iter(sampler), per_epoch))) for _ in range(epochs)]


def lt_streams(seed: int, num_classes: int):
    """lt_bench's streams (ClassAwareSampler's SeedSequence spawn), as shuffle functions."""
    return [np.random.default_rng(s).shuffle for s in np.random.SeedSequence(seed).spawn(num_classes + 1)]


def long_tailed_labels(num_classes: int, max_per_class: int, imbalance: float, seed: int) -> np.ndarray:
    counts = np.maximum(1, (max_per_class * imbalance ** (-np.arange(num_classes) / max(1, num_classes - 1)))
                        .astype(int))
    labels = np.repeat(np.arange(num_classes), counts)
    return np.random.default_rng(seed).permutation(labels)  # the train set's order is arbitrary


# (classes, max per class, imbalance, batch, k): tail classes of 1-3 images (cycles wrap inside a
# visit), batches not a multiple of k (an epoch ends inside a visit), k = 1 and k > class size.
CASES = [(10, 60, 30, 32, 4), (7, 40, 40, 30, 4), (25, 100, 100, 64, 4), (5, 12, 6, 8, 3), (12, 50, 50, 17, 1),
         (3, 9, 9, 10, 5)]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("seed", [0, 1, 12345])
def test_class_aware_equals_reference_on_the_same_streams(case, seed):
    c, top, imb, b, k = case
    labels = long_tailed_labels(c, top, imb, seed)
    steps = len(labels) // b  # int(N / B), train.py line 89
    epochs = 6
    ref = ref_epochs(RefClassAwareSampler(labels, k, lt_streams(seed, c)), steps * b, epochs)
    ours = ClassAwareSampler(labels, k, seed)
    for e in range(epochs):
        np.testing.assert_array_equal(ours.draw(steps * b).numpy(), ref[e], err_msg=f"epoch {e + 1}")


def structure(labels: np.ndarray, epochs: list[np.ndarray], k: int) -> None:
    """The reference sampler's structure, checked exactly (the batch is a multiple of k here, so
    every drawn image is trained on and the per-class streams are complete)."""
    c = labels.max() + 1
    members = [set(np.flatnonzero(labels == i).tolist()) for i in range(c)]
    visits = []
    for idx in epochs:
        v = labels[idx].reshape(-1, k)
        assert (v == v[:, :1]).all()  # k consecutive draws share the class of their visit
        visits.append(idx.reshape(-1, k))
    visits = np.concatenate(visits)
    cls = labels[visits[:, 0]]
    for s in range(0, len(cls) - c + 1, c):  # the class cycle: every C visits are all classes once
        assert sorted(cls[s:s + c].tolist()) == list(range(c))
    for i in range(c):  # per class: consecutive blocks of n_c draws are its n_c images, each once
        stream = visits[cls == i].reshape(-1)
        m = len(members[i])
        for s in range(0, len(stream) - m + 1, m):
            assert set(stream[s:s + m].tolist()) == members[i] and len(set(stream[s:s + m].tolist())) == m


@pytest.mark.parametrize("seed", [0, 7])
@pytest.mark.parametrize("c,top,imb,b,k", [(10, 60, 30, 32, 4), (25, 100, 100, 64, 4), (6, 20, 20, 12, 3)])
def test_class_aware_structure_as_the_reference_with_global_random(c, top, imb, b, k, seed):
    labels = long_tailed_labels(c, top, imb, seed)
    steps = len(labels) // b
    random.seed(seed)
    ref = ref_epochs(RefClassAwareSampler(labels, k, [random.shuffle] * (c + 1)), steps * b, 8)
    structure(labels, ref, k)  # the checker holds for the reference itself...
    gen = torch.Generator().manual_seed(seed)
    ours = make_sampler("class_aware", labels, gen, k, c)
    structure(labels, [ours.draw(steps * b).numpy() for _ in range(8)], k)  # ...and for lt_bench's sampler


def test_class_aware_skips_empty_classes_and_is_seeded():
    labels = np.array([0, 0, 2, 2, 2, 4])
    s = ClassAwareSampler(labels, 2, seed=3, num_classes=6)
    got = s.draw(60).numpy()
    assert set(labels[got].tolist()) == {0, 2, 4}
    np.testing.assert_array_equal(ClassAwareSampler(labels, 2, seed=3, num_classes=6).draw(60).numpy(), got)
    assert not np.array_equal(ClassAwareSampler(labels, 2, seed=4, num_classes=6).draw(60).numpy(), got)


# ---- the reference's schedule, ported (train.py, lines 173-178 and 274) ----------------------
def ref_step_lrs(lr: float, epochs: int, steps: int) -> list[float]:
    """The rate each optimizer step of the reference's Phase B runs at."""
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([{"params": [p], "lr": lr, "momentum": 0.9, "weight_decay": 5e-4}])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs, eta_min=0.0)
    out = []
    with warnings.catch_warnings():  # "lr_scheduler.step() before optimizer.step()": the reference's order
        warnings.simplefilter("ignore", UserWarning)
        for epoch in range(1, epochs + 1):
            sched.step()
            for _ in range(steps):
                out.append(opt.param_groups[0]["lr"])
                p.grad = torch.zeros(1)
                opt.step()
    return out


def _arrays(n: int, c: int = 6, d: int = 8, seed: int = 0):
    g = np.random.default_rng(seed)
    labels = np.arange(n) % c
    text = g.normal(size=(c, d)).astype(np.float32)
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    feats = text[labels] + 0.8 * g.normal(size=(n, d)).astype(np.float32)
    return feats / np.linalg.norm(feats, axis=1, keepdims=True), labels, np.bincount(labels, minlength=c), text


def _step_lrs(monkeypatch, cfg, n):
    seen = []
    step = torch.optim.SGD.step

    def recording(self, *a, **kw):
        seen.append(self.param_groups[0]["lr"])
        return step(self, *a, **kw)

    monkeypatch.setattr(torch.optim.SGD, "step", recording)
    feats, labels, counts, text = _arrays(n)
    res = train_on_arrays(feats, labels, counts, text, cfg, device="cpu")
    monkeypatch.undo()
    return seen, res


@pytest.mark.parametrize("n,b,epochs,lr", [(600, 64, 10, 0.2), (130, 32, 7, 0.05), (1000, 100, 50, 1e-5),
                                           (256, 256, 3, 0.2)])
def test_reference_schedule_equals_the_reference(monkeypatch, n, b, epochs, lr):
    cfg = resolve_config("ballad", epochs=epochs, batch_size=b, lr=lr, schedule="reference", select="last")
    seen, res = _step_lrs(monkeypatch, cfg, n)
    steps = int(n / b)
    assert res.steps == steps * epochs
    assert seen == ref_step_lrs(lr, epochs, steps)  # exactly, every step
    assert res.epoch_lr == reference_epoch_lrs(lr, epochs) == seen[::steps]
    assert res.epoch_lr[-1] == 0.0  # the last epoch trains at 0


def test_reference_schedule_values():
    got = reference_epoch_lrs(0.2, 10)
    assert [round(x, 4) for x in got] == [0.1951, 0.1809, 0.1588, 0.1309, 0.1, 0.0691, 0.0412, 0.0191, 0.0049, 0.0]
    closed = [0.1 * (1 + np.cos(np.pi * e / 10)) for e in range(1, 11)]
    np.testing.assert_allclose(got, closed, rtol=0, atol=1e-15)


def test_cosine_schedule_is_per_step(monkeypatch):
    n, b, epochs, lr = 300, 50, 4, 0.1
    cfg = resolve_config("ballad", epochs=epochs, batch_size=b, lr=lr, schedule="cosine", select="last")
    seen, _ = _step_lrs(monkeypatch, cfg, n)
    total = (n // b) * epochs
    np.testing.assert_allclose(seen, [lr / 2 * (1 + np.cos(np.pi * t / total)) for t in range(total)],
                               rtol=1e-12, atol=1e-15)
