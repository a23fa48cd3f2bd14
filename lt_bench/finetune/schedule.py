"""Cosine learning-rate schedule with linear warm-up, stepped once per optimizer step.

The lr used by optimizer step ``s`` (0-based) is ``lr(s)``: the schedule is applied before the
first step and advanced *after* each optimizer step, so no step runs at lr 0 and the first one
does not skip the warm-up (the reference steps its scheduler before the epoch: off by one).
The state is one integer, so checkpoints stay plain.
"""

from __future__ import annotations

import math

import torch


def cosine_lr(step: int, base_lr: float, total_steps: int, warmup_steps: int = 0) -> float:
    """Learning rate at optimizer step ``step``: linear warm-up, then cosine towards 0."""
    if warmup_steps > 0 and step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    decay_steps = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / decay_steps)
    return 0.5 * base_lr * (1.0 + math.cos(math.pi * progress))


class CosineSchedule:
    """Sets every param group's lr to ``cosine_lr(step, group's initial lr, ...)``."""

    def __init__(self, optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int = 0):
        self.optimizer = optimizer
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        for g in optimizer.param_groups:
            g.setdefault("initial_lr", g["lr"])
        self.step_count = 0
        self._apply()

    def _apply(self) -> None:
        for g in self.optimizer.param_groups:
            g["lr"] = cosine_lr(self.step_count, g["initial_lr"], self.total_steps, self.warmup_steps)

    def step(self) -> None:
        """Call after ``optimizer.step()``: the next step's lr."""
        self.step_count += 1
        self._apply()

    def get_last_lr(self) -> list[float]:
        return [g["lr"] for g in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        return {"step": self.step_count, "total_steps": self.total_steps, "warmup_steps": self.warmup_steps}

    def load_state_dict(self, state: dict) -> None:
        self.step_count = int(state["step"])
        self._apply()
