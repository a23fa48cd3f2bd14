"""torch.distributed in one place: torchrun-aware, single-process when launched plainly.

Usage (any command that may run under ``torchrun --nproc_per_node N``)::

    from lt_bench import distributed as dist_

    ctx = dist_.init_distributed("auto")   # reads RANK/WORLD_SIZE/LOCAL_RANK set by torchrun
    device = ctx.device                    # cuda:LOCAL_RANK under torchrun on GPUs, else as asked
    if ctx.is_main: ...                    # rank 0 writes files, logs progress
    dist_.barrier()
    parts = dist_.all_gather_tensor(t)     # list of world_size tensors (rank order)
    obj = dist_.broadcast_object(obj)      # rank 0's value on every rank
    tot = dist_.all_reduce_sum([a, b])     # element-wise sums over ranks
    model = dist_.wrap_ddp(model, ctx)     # DistributedDataParallel, or the module itself
    dist_.cleanup()                        # at the end (no-op single-process)

Backend choice: NCCL when the run's device is CUDA, gloo otherwise (CPU tests run 2 gloo
processes). Without torchrun's environment (``WORLD_SIZE`` unset or 1) nothing is initialised
and every helper is a cheap single-process no-op, so library code calls them unconditionally.
"""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from .device import resolve_device
from .log import get_logger

log = get_logger(__name__)


@dataclass
class DistContext:
    """Where this process stands in the run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str = ""  # "" when single-process
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def env_world_size() -> int:
    """WORLD_SIZE from torchrun's environment (1 when launched plainly)."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def env_rank() -> int:
    """RANK from torchrun's environment (0 when launched plainly)."""
    return int(os.environ.get("RANK", "0") or 0)


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def get_rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def get_world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    """True on rank 0 (and in a single process): the rank that writes files and logs progress."""
    return get_rank() == 0


def init_distributed(device: str = "auto", timeout_s: float = 1800.0) -> DistContext:
    """Initialise the process group from torchrun's env vars, once; pick this rank's device.

    Args:
        device: ``auto|cpu|cuda[:N]`` as given by the user. Under torchrun on CUDA each rank
            takes ``cuda:LOCAL_RANK`` (the index in ``device`` is ignored).
        timeout_s: collective timeout (long: rank 0 may be writing while others wait).
    """
    dev = resolve_device(device)
    world = env_world_size()
    if world <= 1:
        return DistContext(device=dev)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if dev.type == "cuda":
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    backend = "nccl" if dev.type == "cuda" else "gloo"
    if not is_distributed():
        dist.init_process_group(backend=backend, init_method="env://",
                                timeout=_dt.timedelta(seconds=timeout_s))
        if dist.get_rank() == 0:
            log.info("distributed: %d processes, backend %s", dist.get_world_size(), backend)
    return DistContext(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local_rank,
                       backend=dist.get_backend(), device=dev)


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def cleanup() -> None:
    """Destroy the process group (call once at the end of a command)."""
    if is_distributed():
        dist.destroy_process_group()


def _comm_device() -> torch.device:
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_gather_tensor(t: torch.Tensor) -> list[torch.Tensor]:
    """Every rank's ``t`` (same shape and dtype on every rank), in rank order, on ``t``'s device.

    Pad to a common shape first when ranks hold different row counts.
    """
    if not is_distributed():
        return [t]
    comm = _comm_device()
    src = t.contiguous().to(comm)
    out = [torch.empty_like(src) for _ in range(dist.get_world_size())]
    dist.all_gather(out, src)
    return [o.to(t.device) for o in out]


def broadcast_object(obj=None, src: int = 0):
    """Rank ``src``'s picklable ``obj`` on every rank (returned; other ranks' argument ignored)."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src, device=_comm_device())
    return box[0]


def all_reduce_max(value: float) -> float:
    """The maximum of a scalar over ranks (e.g. an error flag)."""
    if not is_distributed():
        return value
    t = torch.tensor([float(value)], device=_comm_device())
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return float(t.item())


def all_reduce_sum(values: list[float]) -> list[float]:
    """Element-wise sums of a few scalars over ranks (``values`` itself single-process).

    float64, so that counts and loss sums over many batches and ranks stay exact.
    """
    if not is_distributed():
        return values
    t = torch.tensor(values, dtype=torch.float64, device=_comm_device())
    dist.all_reduce(t)
    return t.tolist()


def wrap_ddp(module: torch.nn.Module, ctx: DistContext) -> torch.nn.Module:
    """``module`` in DistributedDataParallel when the run has several processes, else as is."""
    if not ctx.distributed:
        return module
    device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(module, device_ids=device_ids)
