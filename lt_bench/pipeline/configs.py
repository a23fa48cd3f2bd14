"""The configs of the pipeline steps: one dataclass per step, the single source of its options.

``ltbench``'s options, the ``--config`` files, the recipes' step sections and the resolved
config written beside each output all use these fields' option names. Torch-free, so that
``ltbench --help`` and recipe checks stay cheap.

``FinetuneConfig`` (Phase A) lives with its loop in ``lt_bench.finetune.config``;
``ExtractConfig`` extends the library's ``ExtractOptions``; ``adapt`` takes ``AdaptConfig`` plus
the head's ``TrainConfig`` options (each unset one takes the head's default).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..features.options import SPLIT_NAMES, ExtractOptions
from ..finetune.config import FinetuneConfig
from ..heads.config import BASELINES, TRAINED_HEADS
from ..options import (dataset_option, dataset_options_option, device_option, option, optional_str, out_option,
                       root_option, seed_option, splits_dir_option)

__all__ = ["AdaptConfig", "DatasetsConfig", "DemoConfig", "EvalConfig", "ExtractConfig", "FinetuneConfig",
           "LeaderboardConfig", "ReportConfig", "ReproduceConfig", "TuneConfig", "FORMATS", "TUNE_SAMPLERS"]

FORMATS = ("rich", "md", "latex", "csv")
TUNE_SAMPLERS = ("grid", "tpe")  # lt_bench.tune.space.SAMPLERS (kept here: configs stay torch- and numpy-free)


@dataclass
class DatasetsConfig:
    """`ltbench datasets`: the known datasets, or one dataset's splits, classes and shot groups."""

    dataset: str | None = option(None, "Describe this dataset; without it, list them all.", short="-d")
    root: str | None = root_option()
    splits_dir: str | None = splits_dir_option()
    imbalance: float | None = option(None, "Imbalance factor, for datasets that take one.", gt=0)
    dataset_options: dict = dataset_options_option()
    verify: bool = option(False, "Open and decode every image; exit 1 naming the bad ones.")
    json: bool = option(False, "Print JSON instead of a table.")
    seed: int = seed_option()
    device: str = option("auto", "Unused (every command takes it).", hidden=True)


@dataclass
class ExtractConfig(ExtractOptions):
    """`ltbench extract`: run the backbone once over a dataset's splits into a feature cache."""

    dataset: str = dataset_option()
    root: str | None = root_option()
    splits_dir: str | None = splits_dir_option()
    dataset_options: dict = dataset_options_option()
    model: str = option(None, "open_clip model name (e.g. ViT-B-16, ltb-tiny-vit).", required=True)
    pretrained: str = option(None, "Hub tag, checkpoint path, or none.", required=True)
    out: str = out_option("The feature cache to write (.h5).")
    device: str = device_option()


@dataclass
class AdaptConfig:
    """`ltbench adapt`: train a head on a feature cache (Phase B) and write HEAD.pt.

    ``recipe`` holds the head's training options that were set (``TrainConfig`` names); every
    other one takes the head's default (``ballad``: the BALLAD reference's Phase B).
    """

    features: str = option(None, "Feature cache written by `ltbench extract`.", argument=True, required=True,
                           from_cli=optional_str)
    head: str = option("ballad", "Trained head: " + ", ".join(TRAINED_HEADS) + ".", choices=TRAINED_HEADS)
    out: str = out_option("Where to write HEAD.pt.")
    base: str | None = option(None, "lws only: the trained linear HEAD.pt whose class weights it scales (default: "
                              "train the linear head first, same seed).", from_cli=optional_str)
    recipe: dict = field(default_factory=dict)  # TrainConfig overrides (None = the head's default)
    seed: int = seed_option()
    device: str = device_option()


@dataclass
class EvalConfig:
    """`ltbench eval`: score a trained head or a baseline on one split of a cache."""

    features: str = option(None, "Feature cache written by `ltbench extract`.", argument=True, required=True,
                           from_cli=optional_str)
    head: str | None = option(None, "HEAD.pt written by `ltbench adapt`.", from_cli=optional_str)
    baseline: str | None = option(None, "Baseline instead of a head: " + ", ".join(BASELINES) + ".",
                                  choices=BASELINES)
    split: str = option("test", "Split to evaluate: train, val or test.", choices=SPLIT_NAMES)
    json_out: str | None = option(None, "Also write the result as JSON here.", name="json", flag="--json",
                                  from_cli=optional_str)
    posthoc_tau: float = option(0.0, "Subtract tau * log(train prior) from the logits.")
    tau_norm: float | None = option(None, "Tau-normalise a linear, crt or cosine head's class weights: "
                                    "w_c / ||w_c||^TAU, bias dropped (Kang et al. 2020; the paper's grid 0..2).", min=0)
    ensemble: float | None = option(None, "Mix a trained head with zero-shot: (1 - W) * head + W * zero-shot at the "
                                    "head's logit scale (WiSE-FT's output-space ensemble).", min=0, max=1)
    k: int = option(20, "Neighbours of the knn baseline.", min=1)
    tip_alpha: float | None = option(None, "Tip-Adapter's cache weight alpha (tip_adapter baseline, or post-hoc on "
                                     "a tip_adapter_f head; default: 1.17 / the head's).", min=0)
    tip_beta: float | None = option(None, "Tip-Adapter's sharpness beta (as --tip-alpha; default: 1 / the head's).",
                                    gt=0)
    shots: int | None = option(None, "tip_adapter baseline: at most this many train images per class in its "
                               "cache, class-balanced (default 0: all).", min=0)
    label: str | None = option(None, "Method name for tables (default: the head's name).")
    seed: int = seed_option()
    device: str = device_option()


@dataclass
class ReportConfig:
    """`ltbench report`: result files -> leaderboard tables (+ published numbers) and a plot."""

    results: tuple[str, ...] = option((), "Result files written by `ltbench eval --json`.", argument=True,
                                      required=True, cli_type=list[str],
                                      from_cli=lambda v, _: tuple(str(p) for p in v or ()))
    format: str = option("rich", "rich (terminal table), md, latex (booktabs) or csv.", choices=FORMATS,
                         short="-f")
    plot: str | None = option(None, "Also write a PNG of per-class accuracy against training-image count "
                              "(log x, shot groups shaded).", from_cli=optional_str)
    out: str | None = option(None, "Write the table here (atomically) instead of stdout.", short="-o",
                             from_cli=optional_str)
    published: bool = option(True, "Show the published numbers for the same dataset and backbone as "
                             "reference rows.", flag="--published/--no-published")
    bold_best: bool = option(True, "Mark the best value of each column (md, latex, rich).",
                             flag="--bold-best/--no-bold-best")
    seed: int = option(0, "Unused (every command takes it).", hidden=True)
    device: str = option("auto", "Unused (every command takes it).", hidden=True)


@dataclass
class ReproduceConfig:
    """`ltbench reproduce`: a recipe's finetune, extract, adapt and eval, then the report table."""

    recipe: str = option(None, "Shipped recipe name or a path to a recipe .toml.", argument=True, required=True)
    out: str = option(None, "Run directory: finetune/, features.h5, heads/, results/*.json, plan.sh.",
                      short="-o", required=True, from_cli=optional_str)
    root: str | None = option(None, "Dataset root (overrides the recipe's).", from_cli=optional_str)
    splits_dir: str | None = option(None, "Split files folder (overrides the recipe's).", from_cli=optional_str)
    dry_run: bool = option(False, "Print the commands it would run (skipped steps as comments) and exit.")
    set_: tuple[str, ...] = option((), "Override a recipe key: SECTION.KEY=VALUE (TOML value), e.g. "
                                   "adapt.epochs=1; repeatable.", name="set", cli_type=list[str],
                                   from_cli=lambda v, _: tuple(v or ()))
    force: bool = option(False, "Run every step, even those already complete.")
    nproc_per_node: int = option(1, "Run finetune and extract under torchrun with this many processes.", min=1)
    format: str = option("rich", "Format of the final table.", choices=FORMATS, short="-f")
    seed: int = seed_option()
    device: str = device_option()


def _tuning_options(trials: int):
    """The options ``tune`` and ``leaderboard`` share, as fields (trials: the default budget)."""
    return dict(
        trials=option(trials, "Completed trials wanted per method, those of an earlier run included (grid: at "
                      "most the grid's size; a method without hyperparameters runs one).", min=1),
        sampler=option("grid", "grid (the declared grid, in a seeded random order) or tpe (Optuna's TPE).",
                       choices=TUNE_SAMPLERS),
        seeds=option(3, "Final fits of the selected configuration on all of train, evaluated on test.", min=1),
        views=option(True, "Trained heads draw the cached augmented train views.", flag="--views/--no-views"),
        threads=option(0, "torch CPU threads for the fits (0: torch's default; 1 is faster for small heads, "
                       "whose steps are too small to share between cores).", min=0),
    )


_TUNE = _tuning_options(trials=20)
_BOARD = _tuning_options(trials=8)


@dataclass
class TuneConfig:
    """`ltbench tune`: select a method's hyperparameters on val, then fit them with several seeds
    and evaluate on test."""

    features: str = option(None, "Feature cache written by `ltbench extract`.", argument=True, required=True,
                           from_cli=optional_str)
    method: str = option(None, "The method (lt_bench.heads.methods; an unknown name lists them).", short="-m",
                         required=True)
    out: str = option(None, "The tune folder: study.db (Optuna), results/seed*.json, tune.json; a rerun reuses "
                      "finished trials and seeds.", short="-o", required=True, from_cli=optional_str)
    trials: int = _TUNE["trials"]
    sampler: str = _TUNE["sampler"]
    seeds: int = _TUNE["seeds"]
    views: bool = _TUNE["views"]
    threads: int = _TUNE["threads"]
    space: tuple[str, ...] = option((), "Override a hyperparameter's search range: NAME=LOW:HIGH or NAME=V1,V2,... "
                                    "(e.g. lr=0.01:0.5); repeatable.", cli_type=list[str],
                                    from_cli=lambda v, _: tuple(v or ()))
    seed: int = seed_option()
    device: str = device_option()


@dataclass
class LeaderboardConfig:
    """`ltbench leaderboard`: every method tuned on val, several seeds, one table."""

    features: str = option(None, "Feature cache written by `ltbench extract`.", argument=True, required=True,
                           from_cli=optional_str)
    out: str = option(None, "The leaderboard folder: one tune folder per method, leaderboard.{md,tex,csv,json}, "
                      "per_class_accuracy.png; a rerun reuses finished work.", short="-o", required=True,
                      from_cli=optional_str)
    methods: str = option("all", "all, or methods separated by commas (e.g. ncm,ballad,logit_adjusted).")
    trials: int = _BOARD["trials"]
    sampler: str = _BOARD["sampler"]
    seeds: int = _BOARD["seeds"]
    views: bool = _BOARD["views"]
    threads: int = _BOARD["threads"]
    format: str = option("rich", "The table on stdout: rich, md, latex or csv (all four are written to --out).",
                         choices=FORMATS, short="-f")
    plot_best: int = option(3, "Methods in the per-class plot (the best by overall accuracy).", min=1)
    seed: int = seed_option()
    device: str = device_option()


@dataclass
class DemoConfig:
    """`ltbench demo`; the defaults are what the README's table was measured with."""

    out: str = option("ltbench-demo", "Output folder; a rerun with the same folder reuses finished steps.",
                      from_cli=optional_str)
    root: str | None = option(None, "Folder with Fashion-MNIST's four .gz files (default: "
                              "/usr/share/datasets/fashion-mnist, from Debian's dataset-fashion-mnist).",
                              from_cli=optional_str)
    model: str = option("ltb-tiny-vit", "Model (32 px ViT, a few layers: seconds per epoch on CPU).", cli=False)
    epochs: int = option(30, "Phase A epochs.", min=1)
    batch_size: int = option(128, "Phase A batch.", min=1, cli=False)
    lr: float = option(2e-3, "Phase A AdamW lr (random init needs far more than BALLAD's 1e-5).", gt=0,
                       cli=False)
    views: int = option(0, "Augmented views per train image, flat (instead of --view-budget; 0 = off).", min=0)
    view_budget: int = option(64, "Augmented views by expected Phase B draws, at most this many per image "
                              "(ltbench extract --view-budget; 0 = off).", min=0)
    trials: int = option(8, "Grid points tried on val per method (ltbench leaderboard --trials).", min=1)
    seeds: int = option(3, "Seeds of each method's selected configuration, evaluated on test.", min=1)
    workers: int = option(2, "DataLoader worker processes.", min=0)
    max_per_class: int = option(1000, "Fashion-MNIST-LT head-class size.", min=1, cli=False)
    imbalance: float = option(100.0, "Max / min train images per class.", min=1, cli=False)
    seed: int = seed_option()
    device: str = device_option()
