"""The embedded default: the whole BALLAD pipeline on real images, on a laptop CPU.

Fashion-MNIST-LT (Debian's ``dataset-fashion-mnist``, 2,478 long-tailed train images) and the
tiny ViT (``ltb-tiny-vit``, random init):

1. Phase A: contrastive finetuning with BALLAD's class loss (both towers). From random init
   the reference's SGD at lr 1e-5 would not move; AdamW at 2e-3 with a short warm-up learns
   on CPU in a few epochs.
2. One extraction (center view + augmented train views, by default as many per image as
   BALLAD's Phase B is expected to draw it, at most 64: ``--view-budget``) with the best
   Phase A checkpoint.
3. The leaderboard on the cache (``run_leaderboard``): every registered method
   (``heads.methods.METHODS``) tuned on the val split (``--trials`` grid points each), its
   selection fitted with ``--seeds`` seeds on train and evaluated on test; the table in
   Markdown, LaTeX and CSV, one result JSON per method and seed, and the per-class plot of the
   best methods, under ``out/leaderboard/``.

Every step writes atomically. On a rerun with the same ``out``, Phase A and the extraction are
reused when they hold what this run would make (``pipeline/steps.py``), a killed finetune
resumes from its last epoch, and the leaderboard reuses its finished trials and seeds.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import LTBenchError
from ..log import get_logger
from .configs import DemoConfig, ExtractConfig, FinetuneConfig, LeaderboardConfig
from .steps import run_extract, run_finetune
from .tuning import run_leaderboard

log = get_logger(__name__)

DATASET = "fashion_mnist_lt"


@dataclass
class DemoResult:
    out: Path
    board: Any  # tune.Board: the leaderboard's rows
    files: dict[str, Path] = field(default_factory=dict)
    seconds: float = 0.0
    reused: list[str] = field(default_factory=list)  # steps skipped because already done


def fashion_mnist_root(root: str | None, out: Path) -> str | None:
    """Where the four Fashion-MNIST files are: ``root``, Debian's copy, or a download into ``out``.

    The download (torchvision's, from the dataset's own mirrors) is tried only when neither
    exists; without a network it fails with a message that says how to get the files.
    """
    from ..data.fashion_mnist import DEFAULT_DIR, find_files_dir

    if root is not None:
        find_files_dir(root)  # names the missing files and says how to get them
        return root
    raw = out / "fashion-mnist" / "FashionMNIST" / "raw"
    for candidate, answer in ((DEFAULT_DIR, None), (raw, str(raw))):
        try:
            find_files_dir(candidate)
            return answer
        except LTBenchError:
            pass
    log.info("Fashion-MNIST not found in %s; trying torchvision's download into %s", DEFAULT_DIR, raw)
    try:
        from torchvision.datasets import FashionMNIST

        FashionMNIST(str(out / "fashion-mnist"), train=True, download=True)
        FashionMNIST(str(out / "fashion-mnist"), train=False, download=True)
    except Exception as e:  # noqa: BLE001 - any network failure means "not here"
        raise LTBenchError(
            "Fashion-MNIST is not on this machine and could not be downloaded "
            f"({type(e).__name__}): `sudo apt-get install dataset-fashion-mnist`, or pass --root DIR "
            "holding its four .gz files") from None
    find_files_dir(raw)
    return str(raw)


def run_demo(cfg: DemoConfig) -> DemoResult:
    """Run (or finish) the demo pipeline under ``cfg.out``, holding its lock (``lt_bench.lock``);
    write ``config.toml`` there and return the result records."""
    from ..features.options import check_views
    from ..io import check_output
    from ..lock import output_lock
    from ..options import check_options
    from .steps import write_resolved_config

    check_options(cfg)
    check_views(cfg.views, cfg.view_budget)  # before Phase A, not after it
    check_output(cfg.out, directory=True)
    with output_lock(cfg.out, directory=True, stale=("config.toml",)):
        write_resolved_config(Path(cfg.out), cfg, "demo")
        return _demo(cfg)


def _demo(cfg: DemoConfig) -> DemoResult:
    t0 = time.perf_counter()
    out = Path(cfg.out)
    root = fashion_mnist_root(cfg.root, out)
    data = {"dataset": DATASET, "root": root,
            "dataset_options": {"max_per_class": cfg.max_per_class, "imbalance": cfg.imbalance}}
    reused: list[str] = []

    # 1. Phase A (from random init: AdamW at 2e-3 with a short warm-up, see the module docstring)
    run_dir = out / "finetune"
    summary = run_finetune(FinetuneConfig(
        **data, out=str(run_dir), model=cfg.model, pretrained="none", loss="class", epochs=cfg.epochs,
        batch_size=cfg.batch_size, optimizer="adamw", lr=cfg.lr, weight_decay=0.05, schedule="cosine", warmup_steps=20,
        workers=cfg.workers, seed=cfg.seed, device=cfg.device), reuse=True)
    if summary.get("status") == "reused":
        reused.append("finetune")

    # 2. one extraction with the best Phase A checkpoint
    features = out / "features.h5"
    res = run_extract(ExtractConfig(
        **data, model=cfg.model, pretrained=str(run_dir / "best.pt"), out=str(features), splits=("train", "val", "test"),
        views=cfg.views, view_budget=cfg.view_budget, seed=cfg.seed, workers=cfg.workers, device=cfg.device),
        record={"command": "demo", "demo": asdict(cfg)})
    if res.status == "up-to-date":
        reused.append("extract")

    # 3. every method tuned on val, fitted with several seeds, evaluated on test: the leaderboard
    # one torch thread: a 64-d head's steps are too small to share between cores (5-15x faster here)
    board = run_leaderboard(LeaderboardConfig(features=str(features), out=str(out / "leaderboard"), trials=cfg.trials,
                                              seeds=cfg.seeds, threads=1, format="md", seed=cfg.seed,
                                              device=cfg.device))
    return DemoResult(out=out, board=board, files=dict(board.files), seconds=time.perf_counter() - t0, reused=reused)
