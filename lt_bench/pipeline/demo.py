"""The embedded default: the whole BALLAD pipeline on real images, on a laptop CPU.

Fashion-MNIST-LT (Debian's ``dataset-fashion-mnist``, 2,478 long-tailed train images) and the
tiny ViT (``ltb-tiny-vit``, random init):

1. Phase A: contrastive finetuning with BALLAD's class loss (both towers). From random init
   the reference's SGD at lr 1e-5 would not move; AdamW at 2e-3 with a short warm-up learns
   on CPU in a few epochs.
2. One extraction (center view + augmented train views, by default as many per image as
   BALLAD's Phase B is expected to draw it, at most 64: ``--view-budget``) with the best
   Phase A checkpoint.
3. On the cache, in seconds: the Phase A zero-shot classifier, BALLAD's adapter, a cosine head
   with logit-adjusted loss (LIFT's classifier), NCM and kNN.
4. One result JSON per method, a leaderboard (Markdown) and the per-class accuracy plot.

Every step writes atomically. On a rerun with the same ``out``, Phase A, the extraction and the
trained heads are reused when they hold what this run would make (``pipeline/steps.py``); a
killed finetune resumes from its last epoch; the evaluations and the leaderboard (seconds) are
always redone.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import LTBenchError
from ..log import get_logger
from .configs import AdaptConfig, DemoConfig, EvalConfig, ExtractConfig, FinetuneConfig, ReportConfig
from .steps import run_adapt, run_eval, run_extract, run_finetune, run_report

log = get_logger(__name__)

DATASET = "fashion_mnist_lt"


@dataclass
class DemoResult:
    out: Path
    records: dict[str, dict]  # method label -> result record
    files: dict[str, Path] = field(default_factory=dict)
    seconds: float = 0.0
    reused: list[str] = field(default_factory=list)  # steps skipped because already done


# (label, kind, name, head training overrides or baseline options)
METHODS = [
    ("zero-shot (Phase A)", "baseline", "zeroshot", {}),
    ("BALLAD", "trained", "ballad", {}),
    ("cosine + LA loss", "trained", "cosine", {"loss": "logit_adjusted", "tau": 1.0}),
    ("NCM", "baseline", "ncm", {}),
    ("kNN", "baseline", "knn", {}),
]


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

    # 3. heads and baselines on the cache, one result file each
    from ..features import FeatureCache

    records: dict[str, dict] = {}
    files: dict[str, Path] = {}
    with FeatureCache(features) as cache:
        for label, kind, name, opts in METHODS:
            slug = label.split(" (")[0].replace(" + ", "_").replace(" ", "_").replace("-", "").lower()
            which = {"baseline": name}
            if kind == "trained":
                head_path = out / "heads" / f"{slug}.pt"
                adapted = run_adapt(AdaptConfig(features=str(features), head=name, out=str(head_path), seed=cfg.seed,
                                                device=cfg.device, recipe={"epochs": cfg.head_epochs, **opts}),
                                    cache=cache, reuse=True)
                if adapted.reused:
                    reused.append(f"adapt {label}")
                which = {"head": str(head_path)}
            files[label] = out / "results" / f"{slug}.json"
            records[label] = run_eval(EvalConfig(features=str(features), json_out=str(files[label]), k=cfg.knn_k,
                                                 label=label, seed=cfg.seed, device=cfg.device, **which), cache=cache)

    # 4. leaderboard and plot (methods in METHODS order)
    report = run_report(ReportConfig(results=tuple(str(files[m[0]]) for m in METHODS), format="md",
                                     published=False, out=str(out / "leaderboard.md"),
                                     plot=str(out / "per_class_accuracy.png")))
    files["leaderboard"], files["plot"] = report.files["table"], report.plot
    return DemoResult(out=out, records=records, files=files, seconds=time.perf_counter() - t0, reused=reused)
