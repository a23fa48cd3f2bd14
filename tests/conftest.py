"""Tests run offline on CPU: no hub downloads, few threads, small sizes."""

import os
import sys
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")


def ltbench_cmd() -> list[str]:
    """The real console script of this environment, for subprocess tests."""
    exe = Path(sys.executable).with_name("ltbench")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "lt_bench_cli"]


@pytest.fixture
def ltbench():
    return ltbench_cmd()


@pytest.fixture
def subprocess_env():
    env = dict(os.environ)
    env["HF_HUB_OFFLINE"] = "1"
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny matmuls on a shared 2-core machine: one thread avoids OpenMP spin contention (20x here)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def bundle():
    """The tiny ViT with random init (seed 0): the model of the library-level extraction tests."""
    import torch

    from lt_bench.models import create_model

    torch.manual_seed(0)
    return create_model("ltb-tiny-vit", "none")
