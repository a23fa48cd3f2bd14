"""The one AMP policy (lt_bench.device.amp_policy) and the single-process collectives, on CPU."""

import contextlib
import logging

import pytest
import torch

from lt_bench import device as device_
from lt_bench import distributed as dist_
from lt_bench.errors import LTBenchError


@pytest.mark.parametrize("precision", [None, "fp32"])
def test_cpu_gets_no_autocast_and_no_scaler(precision):
    amp = device_.amp_policy(torch.device("cpu"), precision, training=True)
    assert amp.autocast is contextlib.nullcontext and amp.scaler is None
    with amp.autocast():
        assert not torch.is_autocast_enabled()


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_half_precision_needs_cuda_with_the_finetune_message(precision):
    with pytest.raises(LTBenchError, match=rf"^--precision {precision} needs a CUDA device \(AMP autocast\); "
                                           r"on cpu use --precision fp32$"):
        device_.amp_policy("cpu", precision, training=True)


def test_unknown_precision_is_named():
    with pytest.raises(LTBenchError, match="'fp8'"):
        device_.amp_policy("cpu", "fp8")


def test_each_choice_is_logged_once(monkeypatch):
    monkeypatch.setattr(device_, "_logged", set())
    records = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = records.append
    level = device_.log.level
    device_.log.setLevel(logging.DEBUG)  # setLevel, not the attribute: it clears the logger's cache
    device_.log.addHandler(handler)
    try:
        for _ in range(3):
            device_.amp_policy("cpu")
        device_.amp_policy("cpu", "fp32")
    finally:
        device_.log.removeHandler(handler)
        device_.log.setLevel(level)
    assert [r.getMessage() for r in records] == ["AMP: off, fp32 on cpu (inference default)",
                                                 "AMP: off, fp32 on cpu (--precision fp32)"]


def test_collectives_are_identity_in_one_process():
    assert dist_.all_reduce_sum([1.5, 2, 3]) == [1.5, 2, 3]
    m = torch.nn.Linear(2, 2)
    assert dist_.wrap_ddp(m, dist_.DistContext()) is m
