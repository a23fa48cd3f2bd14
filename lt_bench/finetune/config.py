"""The resolved settings of one Phase A run: a dataclass with a reason per field."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields

from ..device import PRECISIONS  # the AMP policy owns the precision names
from ..errors import LTBenchError

LOSSES = ("class", "infonce")
OPTIMIZERS = ("sgd", "adamw")


@dataclass
class FinetuneConfig:
    """Phase A settings. Defaults are BALLAD's (REFERENCE.md) unless a comment says otherwise."""

    # what to train on
    dataset: str  # a registered dataset name (lt_bench.data.load_dataset)
    out: str  # RUN_DIR: last.pt, best.pt, metrics.jsonl, config.toml
    root: str | None = None  # image root / dataset files, passed to the loader
    splits_dir: str | None = None  # split files (ImageNet-LT, Places-LT, folder), passed to the loader
    dataset_options: dict = field(default_factory=dict)  # loader options (--option key=value)
    # what to start from
    model: str = "ViT-B-16"  # BALLAD's best backbone
    pretrained: str = "openai"  # hub tag, checkpoint path, or "none" (random init, tests)
    # the objective
    loss: str = "class"  # BALLAD: CE over all C class prompts; "infonce" = in-batch symmetric (ClipLoss)
    logit_scale: float | None = None  # class loss: fixed scale (None = 100, as BALLAD); infonce: initial learned scale
    template: str = "a photo of a {}."  # BALLAD's single prompt template
    # what trains
    lock_image: bool = False  # freeze the image tower (weights and BN statistics)
    lock_text: bool = False  # freeze the text tower (its class embeddings are then computed once)
    freeze_bn: bool = False  # BatchNorm in eval mode (the reference's accidental setting; ResNets)
    # optimisation
    epochs: int = 50  # BALLAD: 50
    batch_size: int = 512  # GLOBAL batch per forward pass, split across ranks (BALLAD: 512)
    accum_steps: int = 1  # micro-batches per optimizer step (effective batch = batch_size x accum_steps)
    optimizer: str = "sgd"  # BALLAD: SGD with momentum
    lr: float = 1e-5  # BALLAD: 1e-5 for both encoders
    momentum: float = 0.9  # SGD momentum (BALLAD); AdamW beta1 is 0.9 regardless
    weight_decay: float = 5e-4  # BALLAD: 5e-4 on every parameter (the learned logit scale excepted)
    warmup_steps: int = 0  # linear warm-up (optimizer steps) before the cosine decay; BALLAD has none
    grad_clip: float = 0.0  # max global grad norm; 0 = no clipping (BALLAD has none)
    precision: str = "fp32"  # fp32, or AMP autocast bf16/fp16 on CUDA; weights stay fp32 always
    # data
    augment: bool = True  # BALLAD's train augmentation; off = the deterministic val transform (debug)
    workers: int = 4  # DataLoader worker processes per rank
    val_fraction: float = 0.1  # held-out stratified slice of train when the dataset has no val split
    steps_per_epoch: int = 0  # cap on micro-batches per epoch (0 = whole epoch): smoke tests, benchmarks
    # run control
    seed: int = 0  # same seed, same result on CPU (data order, augmentation, init)
    device: str = "auto"  # auto, cpu or cuda; under torchrun each rank takes cuda:LOCAL_RANK
    resume: bool = False  # continue RUN_DIR/last.pt at its next epoch
    overwrite: bool = False  # replace a run already in RUN_DIR

    @property
    def scale(self) -> float:
        """The class loss's fixed logit scale."""
        return 100.0 if self.logit_scale is None else float(self.logit_scale)

    def validate(self) -> None:
        """Refuse nonsensical settings with a message naming the option."""
        def bad(msg):
            raise LTBenchError(msg)

        if self.loss not in LOSSES:
            bad(f"--loss {self.loss!r}: use one of {', '.join(LOSSES)}")
        if self.optimizer not in OPTIMIZERS:
            bad(f"--optimizer {self.optimizer!r}: use one of {', '.join(OPTIMIZERS)}")
        if self.precision not in PRECISIONS:
            bad(f"--precision {self.precision!r}: use one of {', '.join(PRECISIONS)}")
        # integer options and their least sensible value
        for name, least, note in (("epochs", 1, ""), ("batch_size", 1, ""), ("accum_steps", 1, ""),
                                  ("warmup_steps", 0, ""), ("workers", 0, ""),
                                  ("steps_per_epoch", 0, ", 0 for whole epochs")):
            if getattr(self, name) < least:
                bad(f"--{name.replace('_', '-')} must be at least {least}{note} (got {getattr(self, name)})")
        if not self.lr > 0:
            bad(f"--lr must be positive (got {self.lr})")
        if self.momentum < 0 or self.momentum >= 1:
            bad(f"--momentum must be in [0, 1) (got {self.momentum})")
        if self.weight_decay < 0:
            bad(f"--weight-decay must be >= 0 (got {self.weight_decay})")
        if self.grad_clip < 0:
            bad(f"--grad-clip must be >= 0, 0 for none (got {self.grad_clip})")
        if not 0 < self.val_fraction < 1:
            bad(f"--val-fraction must be between 0 and 1 (got {self.val_fraction})")
        if self.logit_scale is not None and not self.logit_scale > 0:
            bad(f"--logit-scale must be positive (got {self.logit_scale})")
        if "{}" not in self.template:
            bad(f"--template {self.template!r} needs a '{{}}' where the class name goes")
        if self.lock_image and self.lock_text:
            bad("--lock-image and --lock-text together leave nothing to train; drop one")
        if self.resume and self.overwrite:
            bad("--resume and --overwrite contradict each other; pick one")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "FinetuneConfig":
        data = json.loads(text)
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})
