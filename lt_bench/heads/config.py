"""A trained head's recipe (``TrainConfig``) and the names of heads, losses and samplers.

Torch-free on purpose: ``ltbench --help`` and the recipe checks read these without importing
torch. The registry (``heads/registry.py``) is the runtime truth; ``tests/test_cli_help.py``
checks that the names here match it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..options import option

TRAINED_HEADS = ("ballad", "clip_adapter", "cosine", "crt", "linear", "lws", "tip_adapter_f")
BASELINES = ("knn", "ncm", "tip_adapter", "zeroshot")
LOSSES = ("ce", "logit_adjusted", "balanced_softmax", "ldam")
OPTIMIZERS = ("sgd", "adamw")
SAMPLERS = ("instance", "class_aware", "class_aware_replace", "sqrt")
SCHEDULES = ("reference", "cosine")  # reference: BALLAD's per-epoch staircase; cosine: per step
SELECTS = ("best-val", "last")


@dataclass
class TrainConfig:
    """A head's training recipe; ``resolve_config`` fills unset fields from the head's defaults
    (``ballad``: the BALLAD reference's Phase B, see docs/protocol.md)."""

    head: str = option("ballad", "Trained head: " + ", ".join(TRAINED_HEADS) + ".", choices=TRAINED_HEADS)
    loss: str = option("ce", "Training loss: " + ", ".join(LOSSES) + ".", choices=LOSSES)
    tau: float = option(1.0, "Logit-adjustment strength (logit_adjusted).")
    drw: bool = option(False, "Deferred re-weighting (LDAM-DRW): class-balanced loss weights (beta 0.9999) "
                       "from 80 % of the epochs on.", flag="--drw/--no-drw")
    sampler: str = option("class_aware", "Sampler: " + ", ".join(SAMPLERS) + " (class_aware: the reference's "
                          "cycles without replacement; class_aware_replace: draws with replacement).",
                          choices=SAMPLERS)
    k_per_class: int = option(4, "Images per class visit (class_aware).", min=1)
    epochs: int = option(10, "Epochs of len(train) // batch steps.", min=1)
    batch_size: int = option(512, "Images per step.", min=1)
    optimizer: str = option("sgd", "Optimizer: sgd (with --momentum) or adamw (eps 1e-4, as Tip-Adapter-F).",
                            choices=OPTIMIZERS)
    lr: float = option(0.2, "Peak learning rate (cosine to 0).", gt=0)
    schedule: str = option("reference", "LR schedule: reference (cosine stepped once per epoch, before it, as "
                           "BALLAD's code: the last epoch trains at 0) or cosine (per step).", choices=SCHEDULES)
    momentum: float = option(0.9, "SGD momentum.", min=0)
    weight_decay: float = option(5e-4, "Weight decay.", min=0)
    alpha: float = option(0.2, "Residual ratio of the adapter (ballad, clip_adapter).", min=0, max=1)
    tip_alpha: float = option(1.17, "Tip-Adapter's cache weight (tip_adapter_f).", min=0)
    tip_beta: float = option(1.0, "Tip-Adapter's affinity sharpness (tip_adapter_f).", gt=0)
    shots: int = option(16, "Tip-Adapter's cache: at most this many train images per class, a seeded "
                        "class-balanced draw (0: all).", min=0)
    scale: float = option(100.0, "Logit scale.", gt=0)
    views: bool = option(True, "Train on the cached augmented views when there are some.",
                         flag="--views/--no-views")
    select: str = option("best-val", "Which epoch's head is kept: best-val (best val top-1, as BALLAD's test "
                         "path) or last.", choices=SELECTS)
    seed: int = option(0, "Random seed (same seed, same head, bit for bit on CPU).")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# The recipe options of `ltbench adapt` (the head and seed are the command's own).
RECIPE_OPTIONS = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.name not in ("head", "seed"))
