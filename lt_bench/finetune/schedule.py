"""Phase A's learning-rate schedules, as a function of the optimizer step.

- ``reference`` (BALLAD's released code, train.py: ``CosineAnnealingLR(T_max=epochs)`` stepped
  once per epoch *before* the epoch): the lr is constant within an epoch, epoch e (1-based)
  trains at ``lr * (1 + cos(pi * e / epochs)) / 2``, so the last epoch trains at 0. No warm-up.
- ``cosine``: linear warm-up, then cosine towards 0, per optimizer step. The lr used by step
  ``s`` (0-based) is ``cosine_lr(s)``: applied before the first step and advanced after each,
  so no step runs at lr 0 and the first one does not skip the warm-up.

See docs/protocol.md. The state is one integer, so checkpoints stay plain.
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


def reference_lr(step: int, base_lr: float, steps_per_epoch: int, epochs: int) -> float:
    """BALLAD's per-epoch staircase: the closed form of ``CosineAnnealingLR(T_max=epochs)`` after
    ``epoch`` calls, the scheduler having been stepped before each epoch."""
    epoch = step // max(1, steps_per_epoch) + 1
    return 0.5 * base_lr * (1.0 + math.cos(math.pi * min(epoch, epochs) / epochs))


class CosineSchedule:
    """Sets every param group's lr for the coming optimizer step (``kind``: reference or cosine)."""

    def __init__(self, optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int = 0,
                 kind: str = "cosine", steps_per_epoch: int = 1):
        self.optimizer = optimizer
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.kind = kind
        self.steps_per_epoch = int(steps_per_epoch)
        for g in optimizer.param_groups:
            g.setdefault("initial_lr", g["lr"])
        self.step_count = 0
        self._apply()

    def lr_at(self, step: int, base_lr: float) -> float:
        """The lr of optimizer step ``step`` for a group whose initial lr is ``base_lr``."""
        if self.kind == "reference":
            epochs = max(1, self.total_steps // max(1, self.steps_per_epoch))
            return reference_lr(step, base_lr, self.steps_per_epoch, epochs)
        return cosine_lr(step, base_lr, self.total_steps, self.warmup_steps)

    def _apply(self) -> None:
        for g in self.optimizer.param_groups:
            g["lr"] = self.lr_at(self.step_count, g["initial_lr"])

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
