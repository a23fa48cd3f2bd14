"""Phase A's reference schedule equals BALLAD's loop: CosineAnnealingLR(T_max=epochs) stepped before each epoch."""

import pytest
import torch

from lt_bench.errors import LTBenchError
from lt_bench.finetune.config import FinetuneConfig
from lt_bench.finetune.schedule import CosineSchedule


def reference_lrs(lr: float, epochs: int, steps_per_epoch: int) -> list[float]:
    """The lr of every optimizer step, from a port of BALLAD's train.py loop (scheduler.step() first)."""
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr, momentum=0.9)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs, eta_min=0.0)
    out = []
    for _ in range(1, epochs + 1):
        sched.step()
        for _ in range(steps_per_epoch):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
    return out


@pytest.mark.parametrize("lr,epochs,steps", [(1e-5, 50, 3), (0.2, 10, 7), (2e-3, 4, 1)])
def test_reference_schedule_matches_the_reference_loop(lr, epochs, steps):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    sched = CosineSchedule(opt, total_steps=epochs * steps, kind="reference", steps_per_epoch=steps)
    ours = []
    for _ in range(epochs * steps):
        ours.append(opt.param_groups[0]["lr"])
        sched.step()
    assert ours == pytest.approx(reference_lrs(lr, epochs, steps), rel=1e-12, abs=1e-18)
    assert ours[-1] == pytest.approx(0.0, abs=1e-18)  # the last epoch trains at lr 0, as the reference does
    assert len(set(ours[:steps])) == 1  # constant within an epoch


def test_cosine_schedule_is_per_step_and_resumes():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = CosineSchedule(opt, total_steps=10, warmup_steps=2, kind="cosine")
    lrs = []
    for _ in range(10):
        lrs.append(opt.param_groups[0]["lr"])
        sched.step()
    assert lrs[:2] == [0.5, 1.0] and all(a > b for a, b in zip(lrs[2:], lrs[3:])) and lrs[-1] > 0
    other = CosineSchedule(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0), 10, 2, "cosine")
    other.load_state_dict({"step": 5})
    assert other.get_last_lr()[0] == lrs[5]


def test_reference_schedule_has_no_warmup():
    cfg = FinetuneConfig(dataset="synthetic", out="x", warmup_steps=10)
    with pytest.raises(LTBenchError, match="--warmup-steps needs --schedule cosine"):
        cfg.validate()
    FinetuneConfig(dataset="synthetic", out="x", warmup_steps=10, schedule="cosine").validate()
