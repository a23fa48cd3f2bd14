"""The embedded default: the whole BALLAD pipeline on real images, on a laptop CPU.

Fashion-MNIST-LT (Debian's ``dataset-fashion-mnist``, 2,478 long-tailed train images) and the
tiny ViT (``ltb-tiny-vit``, random init):

1. Phase A: contrastive finetuning with BALLAD's class loss (both towers). From random init
   the reference's SGD at lr 1e-5 would not move; AdamW at 2e-3 with a short warm-up learns
   on CPU in a few epochs.
2. One extraction (center view + augmented train views) with the best Phase A checkpoint.
3. On the cache, in seconds: the Phase A zero-shot classifier, BALLAD's adapter, a cosine head
   with logit-adjusted loss (LIFT's classifier), NCM and kNN.
4. One result JSON per method, a leaderboard (Markdown) and the per-class accuracy plot.

Every step writes atomically and is skipped on a rerun with the same ``out`` once done; a
killed finetune resumes from its last epoch.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .errors import LTBenchError
from .log import get_logger

log = get_logger(__name__)


@dataclass
class DemoConfig:
    """Settings of the demo; the defaults are what the README's table was measured with."""

    out: str = "ltbench-demo"  # everything goes here; a rerun reuses finished steps
    root: str | None = None  # Fashion-MNIST's four .gz files (default: Debian's location)
    model: str = "ltb-tiny-vit"  # 32 px ViT, a few layers: seconds per epoch on CPU
    epochs: int = 30  # Phase A epochs (about a minute on 2 CPU cores)
    batch_size: int = 128  # Phase A batch
    lr: float = 2e-3  # Phase A AdamW lr (random init needs far more than BALLAD's 1e-5)
    views: int = 4  # augmented views cached per train image
    head_epochs: int = 10  # Phase B epochs (BALLAD's 10)
    knn_k: int = 20  # neighbours of the kNN baseline
    workers: int = 2  # DataLoader workers
    seed: int = 0
    device: str = "auto"
    max_per_class: int = 1000  # Fashion-MNIST-LT head-class size
    imbalance: float = 100.0  # max / min train images per class


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
    from .data.fashion_mnist import DEFAULT_DIR, find_files_dir

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
    """Run (or finish) the demo pipeline under ``cfg.out``; return the result records."""
    from .data import load_dataset
    from .device import resolve_device
    from .features import FeatureCache
    from .features.extract import ExtractOptions, extract_features
    from .finetune import checkpoint as ft_ckpt
    from .finetune.config import FinetuneConfig
    from .finetune.train import run_finetune
    from .heads import resolve_config, save_head, train_head
    from .heads.checkpoint import load_head
    from .heads.predict import baseline_logits, trained_logits
    from .io import write_json, write_text
    from .metrics import evaluate
    from .models import create_model
    from .report.results import load_results, result_record
    from .report.tables import build_tables, render_markdown
    from .report.plots import plot_per_class

    t0 = time.perf_counter()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    root = fashion_mnist_root(cfg.root, out)
    ds_options = {"max_per_class": cfg.max_per_class, "imbalance": cfg.imbalance}
    dataset = load_dataset("fashion_mnist_lt", root=root, **ds_options)
    reused: list[str] = []

    # 1. Phase A
    run_dir = out / "finetune"
    last = run_dir / ft_ckpt.LAST
    done_epochs = 0
    if last.is_file():
        done_epochs = int(ft_ckpt.load_checkpoint(last).get("epoch", 0))
    if done_epochs >= cfg.epochs:
        reused.append("finetune")
        log.info("Phase A: %s already holds %d epochs; reusing it", run_dir, done_epochs)
    else:
        log.info("Phase A: finetuning %s from random init on fashion_mnist_lt (%d epochs)%s", cfg.model,
                 cfg.epochs, f", resuming after epoch {done_epochs}" if done_epochs else "")
        run_finetune(FinetuneConfig(
            dataset="fashion_mnist_lt", out=str(run_dir), root=root, dataset_options=ds_options,
            model=cfg.model, pretrained="none", loss="class", epochs=cfg.epochs, batch_size=cfg.batch_size,
            optimizer="adamw", lr=cfg.lr, weight_decay=0.05, warmup_steps=20, workers=cfg.workers,
            seed=cfg.seed, device=cfg.device, resume=done_epochs > 0))
    best = run_dir / ft_ckpt.BEST

    # 2. one extraction
    features = out / "features.h5"
    bundle = create_model(cfg.model, str(best), device=resolve_device(cfg.device))
    res = extract_features(features, dataset, bundle, ExtractOptions(
        splits=("train", "val", "test"), views=cfg.views, seed=cfg.seed, workers=cfg.workers),
        config={"command": "demo", **asdict(cfg)})
    if res.status == "up-to-date":
        reused.append("extract")
    del bundle

    # 3. heads and baselines on the cache
    heads_dir, results_dir = out / "heads", out / "results"
    records: dict[str, dict] = {}
    files: dict[str, Path] = {}
    with FeatureCache(features) as cache:
        for label, kind, name, opts in METHODS:
            slug = label.split(" (")[0].replace(" + ", "_").replace(" ", "_").replace("-", "").lower()
            result_path = results_dir / f"{slug}.json"
            if kind == "trained":
                head_path = heads_dir / f"{slug}.pt"
                tc = resolve_config(name, seed=cfg.seed, epochs=cfg.head_epochs, **opts)
                fresh = True
                if head_path.is_file():
                    try:  # reuse a head only if made on this cache with this recipe
                        fresh = load_head(head_path, provenance=cache.provenance())[1]["config"] != tc.to_dict()
                    except LTBenchError:
                        pass  # made on another cache (features re-extracted): retrain
                if fresh:
                    save_head(head_path, train_head(cache, tc, device=cfg.device), cache.provenance())
                else:
                    reused.append(f"adapt {label}")
                pred = trained_logits(cache, head_path, "test", cfg.device)
            else:
                pred = baseline_logits(cache, name, "test", cfg.device, cfg.seed, k=cfg.knn_k)
            ev = evaluate(pred.logits, pred.labels, cache.train_counts)
            rec = result_record(ev, head=pred.head, kind=pred.kind, split="test", cache=cache,
                                config=pred.config, seed=cfg.seed, head_path=pred.head_path, label=label)
            write_json(result_path, rec)
            records[label] = rec
            files[label] = result_path

    # 4. leaderboard and plot
    results = load_results(list(files.values()))  # in METHODS order
    files["leaderboard"] = out / "leaderboard.md"
    write_text(files["leaderboard"], render_markdown(build_tables(results, published=False)))
    files["plot"] = plot_per_class(results, out / "per_class_accuracy.png")
    return DemoResult(out=out, records=records, files=files, seconds=time.perf_counter() - t0, reused=reused)
