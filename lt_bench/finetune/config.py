"""The resolved settings of one Phase A run: a dataclass with a reason per field."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields

from ..data.decode_names import DECODES
from ..errors import LTBenchError
from ..options import (check_options, dataset_option, dataset_options_option, device_option, option,
                       out_option, root_option, seed_option, splits_dir_option)
from ..precision import PRECISIONS

LOSSES = ("class", "infonce")
OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("reference", "cosine")  # finetune/schedule.py


@dataclass
class FinetuneConfig:
    """Phase A settings. Defaults are BALLAD's (docs/protocol.md) unless the help says otherwise."""

    # what to train on
    dataset: str = dataset_option()
    out: str = out_option("RUN_DIR: last.pt, best.pt, metrics.jsonl, config.toml.")
    root: str | None = root_option()
    splits_dir: str | None = splits_dir_option()
    dataset_options: dict = dataset_options_option()
    # what to start from
    model: str = option("ViT-B-16", "open_clip architecture (ltb-tiny-vit for tests); BALLAD's best backbone.")
    pretrained: str = option("openai", "Hub tag, checkpoint path, or 'none' (random init).")
    # the objective
    loss: str = option("class", "class: BALLAD's CE over all class prompts; infonce: symmetric in-batch "
                       "(open_clip ClipLoss).", choices=LOSSES)
    logit_scale: float | None = option(None, "class loss: fixed scale (default 100, as BALLAD); infonce: "
                                       "initial learned scale.", gt=0)
    template: str = option("a photo of a {}.", "Prompt template of the class loss ({} = class name); "
                           "BALLAD's single template.")
    # what trains
    lock_image: bool = option(False, "Freeze the image tower (weights and BN statistics).")
    lock_text: bool = option(False, "Freeze the text tower (its class embeddings are then computed once).")
    freeze_bn: bool = option(False, "Keep BatchNorm statistics frozen (the reference's eval-mode setting; ResNets).")
    # optimisation
    epochs: int = option(50, "Training epochs (BALLAD: 50).", min=1)
    batch_size: int = option(512, "GLOBAL batch per forward pass, split across processes (BALLAD: 512).", min=1)
    accum_steps: int = option(1, "Micro-batches per optimizer step (effective batch = batch x accum).", min=1)
    optimizer: str = option("sgd", "sgd (BALLAD) or adamw.", choices=OPTIMIZERS)
    lr: float = option(1e-5, "Peak learning rate (BALLAD: 1e-5 for both encoders).", gt=0)
    momentum: float = option(0.9, "SGD momentum (AdamW's beta1 is 0.9 regardless).", min=0, lt=1)
    weight_decay: float = option(5e-4, "Weight decay (BALLAD: 5e-4; a learned logit scale is not decayed).",
                                 min=0)
    schedule: str = option("reference", "LR schedule: reference (BALLAD's code: cosine stepped once per epoch, "
                           "before it; the last epoch trains at 0) or cosine (per step, with --warmup-steps).",
                           choices=SCHEDULES)
    warmup_steps: int = option(0, "Linear warm-up optimizer steps before the cosine (--schedule cosine; BALLAD "
                               "has none).", min=0)
    grad_clip: float = option(0.0, "Max global gradient norm (0: no clipping, as BALLAD).", min=0)
    precision: str = option("fp32", "fp32, or AMP autocast bf16/fp16 (CUDA only); weights stay fp32.",
                            choices=PRECISIONS)
    # data
    augment: bool = option(True, "BALLAD's train augmentation (off: the deterministic eval transform, "
                           "for debugging).", flag="--augment/--no-augment")
    decode: str = option("pil", "Image input path: pil (BALLAD's PIL transforms, the reference's pixels), fast "
                         "(libjpeg-turbo + uint8 tensor ops on the CPU), gpu (nvJPEG + tensor ops on the GPU), "
                         "auto (gpu on CUDA, else pil). See docs/protocol.md.", choices=DECODES)
    workers: int = option(4, "DataLoader worker processes per rank.", min=0)
    val_fraction: float = option(0.1, "Held-out stratified train slice when the dataset has no val split.",
                                 gt=0, lt=1)
    steps_per_epoch: int = option(0, "Cap on batches per epoch (0: whole epochs); smoke tests.", min=0)
    # run control
    resume: bool = option(False, "Continue RUN_DIR/last.pt at its next epoch.")
    overwrite: bool = option(False, "Replace a run already in RUN_DIR.")
    seed: int = seed_option()
    device: str = device_option()

    @property
    def scale(self) -> float:
        """The class loss's fixed logit scale."""
        return 100.0 if self.logit_scale is None else float(self.logit_scale)

    def validate(self) -> None:
        """Refuse nonsensical settings with a message naming the option."""
        def bad(msg):
            raise LTBenchError(msg)

        check_options(self)
        if self.warmup_steps and self.schedule == "reference":
            bad("--warmup-steps needs --schedule cosine (the reference schedule has no warm-up)")
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
