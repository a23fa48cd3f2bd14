"""The one place that decides the device and its AMP policy (and says what it chose)."""

from __future__ import annotations

import contextlib
import functools
from typing import Callable, ContextManager, NamedTuple

import torch

from .errors import LTBenchError
from .log import get_logger
from .precision import PRECISIONS

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



class Amp(NamedTuple):
    """What ``amp_policy`` chose: ``with amp.autocast(): ...`` around forward passes."""

    autocast: Callable[[], ContextManager]  # a fresh context per call (autocast contexts are not reentrant)
    scaler: torch.amp.GradScaler | None  # fp16 training only


_logged: set[tuple] = set()


def amp_policy(device: torch.device | str, precision: str | None = None, *, training: bool = False) -> Amp:
    """The one AMP decision of lt_bench, for training and inference alike.

    Args:
        device: where the model runs.
        precision: ``fp32``, ``bf16`` or ``fp16`` (finetune's ``--precision``; the last two need
            CUDA), or None for the inference default: bf16 autocast on CUDA, nothing elsewhere
            (CPU autocast would change the cached features for no speed gain).
        training: with fp16, also make a GradScaler (fp16 gradients underflow without one).

    Returns:
        ``Amp(autocast, scaler)``; weights always stay fp32, autocast only changes the compute
        dtype of the ops it covers.

    Raises:
        LTBenchError: bf16 / fp16 asked for on a device that is not CUDA.
    """
    device = torch.device(device)
    if precision is None:
        dtype = torch.bfloat16 if device.type == "cuda" else None
    elif precision == "fp32":
        dtype = None
    elif precision in ("bf16", "fp16"):
        if device.type != "cuda":
            raise LTBenchError(f"--precision {precision} needs a CUDA device (AMP autocast); on {device.type} "
                               "use --precision fp32")
        dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    else:
        raise LTBenchError(f"unknown --precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    scaler = torch.amp.GradScaler("cuda") if training and dtype == torch.float16 else None
    _log_choice(device, precision, dtype, scaler is not None)
    if dtype is None:
        return Amp(contextlib.nullcontext, scaler)
    return Amp(functools.partial(torch.autocast, "cuda", dtype=dtype), scaler)


def _log_choice(device: torch.device, precision: str | None, dtype, scaler: bool) -> None:
    """Once per process and distinct choice: extraction asks once per batch."""
    key = (device.type, precision, scaler)
    if key in _logged:
        return
    _logged.add(key)
    source = "inference default" if precision is None else f"--precision {precision}"
    if dtype is None:  # nothing changes numerics: not worth a line at the default level
        log.debug("AMP: off, fp32 on %s (%s)", device.type, source)
    else:
        log.info("AMP: %s autocast%s on %s (%s); weights stay fp32", str(dtype).removeprefix("torch."),
                 " + GradScaler" if scaler else "", device.type, source)
