"""The one place that decides the device (and says what it chose)."""

from __future__ import annotations

import torch

from .errors import LTBenchError
from .log import get_logger

log = get_logger(__name__)


def resolve_device(name: str = "auto") -> torch.device:
    """Map ``auto|cpu|cuda|cuda:N`` to a torch device, refusing CUDA where there is none."""
    if name == "auto":
        dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    elif name == "cpu" or name.startswith("cuda"):
        if name.startswith("cuda") and not torch.cuda.is_available():
            raise LTBenchError("--device cuda asked for, but torch sees no CUDA GPU; use --device cpu or auto")
        dev = torch.device(name)
    else:
        raise LTBenchError(f"unknown --device {name!r}; use auto, cpu or cuda")
    log.debug("device: %s", dev)
    return dev


def seed_everything(seed: int) -> torch.Generator:
    """Seed python, numpy and torch; return a torch CPU generator seeded the same."""
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)
