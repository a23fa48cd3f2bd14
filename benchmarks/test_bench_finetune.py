"""Phase A on CPU: training images/s of a full step (data loading + BALLAD augmentation +
forward + backward + optimizer) against the model's forward+backward on preloaded tensors.

    pytest benchmarks/test_bench_finetune.py --benchmark-only [-s]
    LTBENCH_BENCH_QUICK=1 pytest benchmarks/test_bench_finetune.py --benchmark-only

The ratio (full step / forward+backward alone) says how much the input pipeline and the
optimizer cost on top of the model: the figure to quote, since absolute rates move with load.
"""

from __future__ import annotations

import time

import pytest
import torch

from lt_bench.data import load_dataset
from lt_bench.features.items import image_path
from lt_bench.finetune.data import train_loader
from lt_bench.finetune.losses import ClassPromptLoss, ClipTrainWrapper
from lt_bench.models import create_model

TABLE = "Phase A: finetune step on CPU"


@pytest.mark.parametrize("model_name", ["ltb-tiny-vit", "ltb-tiny-rn"])
def test_bench_finetune_step(benchmark, quick, model_name):
    batch, steps, workers = (32, 3, 0) if quick else (64, 10, 1)
    torch.manual_seed(0)
    ds = load_dataset("synthetic", num_classes=10, max_per_class=400 if not quick else 100)
    bundle = create_model(model_name, "none")
    model = bundle.model.train()
    tokens = bundle.tokenizer([f"a photo of a {c}." for c in ds.classnames])
    wrapper = ClipTrainWrapper(model, tokens)
    loss_fn = ClassPromptLoss(100.0)
    opt = torch.optim.SGD([p for n, p in model.named_parameters() if n != "logit_scale"], lr=1e-5,
                          momentum=0.9, weight_decay=5e-4)
    path = image_path(bundle, "pil", torch.device("cpu"))
    loader, sampler, gen = train_loader(ds, range(len(ds.split("train"))), path, True, batch,
                                        rank=0, world=1, seed=0, workers=workers, device=torch.device("cpu"))

    def step(images, labels):
        img, txt, scale = wrapper(images, None)
        loss = loss_fn(img, txt, scale, labels)
        loss.backward()
        return loss

    def full_steps():
        n = 0
        for images, labels, _ in loader:
            step(images, labels)
            opt.step()
            opt.zero_grad(set_to_none=True)
            n += 1
            if n == steps:
                break
        return n

    # reference: forward + backward only, on one preloaded batch
    images, labels, _ = next(iter(loader))
    rounds = 2 if quick else 3
    ref_times = []
    for _ in range(rounds + 1):  # the first round warms up
        t0 = time.perf_counter()
        for _ in range(steps):
            step(images, labels)
            opt.zero_grad(set_to_none=True)
        ref_times.append(time.perf_counter() - t0)
    ref_s = min(ref_times[1:]) / steps  # min over rounds: the least disturbed by other load

    benchmark.pedantic(full_steps, rounds=rounds, iterations=1, warmup_rounds=1)
    full_s = benchmark.stats.stats.min / steps
    info = {
        "table": TABLE,
        "row": f"{model_name}, batch {batch}, {workers} worker{'s' if workers != 1 else ''}",
        "images_per_s": round(batch / full_s, 1),
        "fwd_bwd_images_per_s": round(batch / ref_s, 1),
        "ratio": round(ref_s / full_s, 3),  # share of the model's own speed the full step keeps
    }
    benchmark.extra_info.update(info)
    print(info)
