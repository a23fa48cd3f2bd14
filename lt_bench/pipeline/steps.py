"""One entry point per pipeline step, each taking its config; the reuse rules, defined once.

``run_finetune``, ``run_extract``, ``run_adapt``, ``run_eval`` and ``run_report`` are what the
``ltbench`` commands, ``ltbench demo`` and ``ltbench reproduce`` call, in process. Each holds
its output's lock for the whole step (``lt_bench.lock``: a second run on the same output is
refused), writes the output atomically and the resolved config beside it (itself a valid
``--config``), the config just before the output is moved into place (``io.written_before``).

Reuse (``reuse=True``; the commands themselves always run what they are asked):

- finetune: a run whose ``last.pt`` holds all ``epochs`` and has ``best.pt`` is done; one with
  fewer epochs is resumed.
- extract: decided by the cache itself (``extract_features``: same identity, splits complete).
- adapt: a head made on this cache (content identity) with this exact recipe is kept.
- eval: a result of this cache, this head recipe (or baseline options), split and options is
  kept.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import LTBenchError
from ..io import check_output, to_toml, write_text, written_before
from ..lock import output_lock
from ..log import get_logger
from ..options import to_cli_values
from .configs import AdaptConfig, EvalConfig, ExtractConfig, FinetuneConfig, ReportConfig

log = get_logger(__name__)

FINETUNE_BEST = "best.pt"
FINETUNE_LAST = "last.pt"
PLOT_FORMATS = (".png", ".pdf", ".svg", ".jpg", ".jpeg")  # what matplotlib writes here


def resolved_config_path(out: str | Path) -> Path:
    """Where the resolved config of an output goes: ``RUN_DIR/config.toml`` or ``OUT.config.toml``."""
    out = Path(out)
    return out / "config.toml" if out.is_dir() else out.with_name(out.name + ".config.toml")


def resolved_config_text(values: dict[str, Any] | Any, command: str) -> str:
    """The resolved options as TOML, itself a valid ``--config`` for ``command``.

    Args:
        values: a config dataclass or a dict of option values.
        command: the ``ltbench`` command they are options of.
    """
    if not isinstance(values, dict):
        values = to_cli_values(values)
    values = {k: v for k, v in values.items() if k != "config"}
    return f"# resolved options of `ltbench {command}`; reuse with --config\n" + to_toml(values)


def write_resolved_config(out: str | Path, values: dict[str, Any] | Any, command: str) -> Path:
    """Write the resolved options beside ``out`` now (``resolved_config_text``)."""
    target = resolved_config_path(out)
    write_text(target, resolved_config_text(values, command))
    return target


def config_beside(out: str | Path, values: dict[str, Any] | Any, command: str):
    """A context in which publishing the file ``out`` first writes its resolved config, so that
    the two agree after any kill (``io.written_before``)."""
    return written_before(out, resolved_config_path(out), resolved_config_text(values, command))


# -- Phase A ---------------------------------------------------------------------------------------

def finetune_state(cfg: FinetuneConfig) -> tuple[str, str]:
    """("done" | "resume" | "changed" | "fresh", why) for ``cfg.out`` and the run ``cfg`` asks for.

    done: ``last.pt`` holds exactly ``cfg.epochs`` epochs of these settings and ``best.pt``
    exists; resume: fewer epochs of these settings; changed: a run of other settings (or more
    epochs) is there; fresh: no checkpoint.
    """
    run_dir = Path(cfg.out)
    last = run_dir / FINETUNE_LAST
    if not last.is_file():
        return "fresh", ""
    from ..finetune.checkpoint import _RUN_ONLY, load_checkpoint

    try:
        ckpt = load_checkpoint(last)
        old = json.loads(ckpt["config"])
    except (LTBenchError, TypeError, ValueError) as e:  # damaged: replace it
        return "changed", str(e)
    new = json.loads(cfg.to_json())
    diffs = [f"{k}: {old[k]!r} there, {new[k]!r} now" for k in sorted(new)
             if k in old and k not in _RUN_ONLY and k != "epochs" and old[k] != new[k]]
    done = int(ckpt.get("epoch", 0))
    if diffs:
        return "changed", f"{run_dir} holds a run of other settings ({'; '.join(diffs)})"
    if done > cfg.epochs:
        return "changed", f"{last} has {done} epochs, more than the {cfg.epochs} asked for"
    if done == cfg.epochs and (run_dir / FINETUNE_BEST).is_file():
        return "done", f"{last} has completed all {cfg.epochs} epochs"
    return "resume", f"{last} has completed {done} of {cfg.epochs} epochs"


def run_finetune(cfg: FinetuneConfig, *, reuse: bool = False) -> dict:
    """Phase A (``lt_bench.finetune.run_finetune``); with ``reuse``, a finished run of these
    settings is kept, a partial one resumed, one of other settings replaced (``finetune_state``). Returns the run's summary (``{"status": "reused"}`` when kept)."""
    from ..finetune import run_finetune as train
    from ..finetune.checkpoint import RUN_FILES
    from ..finetune.overwrite import recover

    check_output(cfg.out, inputs=[cfg.pretrained], directory=True)
    with output_lock(cfg.out, directory=True, stale=RUN_FILES):
        recover(Path(cfg.out))  # before deciding reuse (finetune.run_finetune recovers too, for direct callers)
        if reuse:
            state, why = finetune_state(cfg)
            if state == "done":
                log.info("Phase A: %s; reusing it", why)
                return {"status": "reused", "out": cfg.out}
            if state in ("resume", "changed"):  # a changed run is set aside until the new one checkpoints
                log.info("Phase A: %s; %s", why, "resuming" if state == "resume" else "replacing it")
                cfg.resume, cfg.overwrite = state == "resume", state == "changed"
        cfg.validate()
        return train(cfg, on_start=lambda: write_resolved_config(Path(cfg.out), cfg, "finetune"))


# -- extraction ------------------------------------------------------------------------------------

def run_extract(cfg: ExtractConfig, *, record: dict | None = None):
    """Extract ``cfg.splits`` into ``cfg.out`` (resumable; every rank under torchrun calls it).

    Args:
        cfg: the resolved options.
        record: extra entries for the cache's ``config`` attribute (e.g. which command ran).

    Returns:
        ``ExtractResult`` (status "written" or "up-to-date").
    """
    from .. import distributed as dist_
    from ..data import load_dataset
    from ..device import seed_everything
    from ..features.extract import extract_features
    from ..models import create_model

    cfg.validate()  # before torchrun's ranks meet and the model loads
    check_output(cfg.out, inputs=[cfg.pretrained])
    # rank 0 locks before the process group forms: refused, it exits and torchrun stops the rest
    with output_lock(cfg.out), config_beside(cfg.out, cfg, "extract"):
        ctx = dist_.init_distributed(cfg.device)
        try:
            ds = load_dataset(cfg.dataset, root=cfg.root, splits_dir=cfg.splits_dir, **cfg.dataset_options)
            seed_everything(cfg.seed)  # a random-init model is the same on every rank and rerun
            bundle = create_model(cfg.model, cfg.pretrained, device=ctx.device)
            values = {k: v for k, v in to_cli_values(cfg).items() if k != "overwrite"}
            values["option"] = dict(cfg.dataset_options)
            return extract_features(cfg.out, ds, bundle, cfg, config={**values, **(record or {})}, ctx=ctx)
        finally:
            dist_.cleanup()


def extract_state(cfg: ExtractConfig) -> tuple[str, str]:
    """("done" | "extend" | "different" | "fresh", why) for ``cfg.out``.

    done: a cache of these settings with every requested split complete; extend: of these
    settings, with requested splits missing (extraction adds them); different: another
    extraction (or not a cache); fresh: no file. The same settings: dataset and the options
    given, model, weights (a checkpoint by its hash), templates, views, view budget, seed and
    the resolved decode path (``fast`` and ``gpu`` give other pixels than ``pil``), as recorded
    in the cache's identity.
    """
    from ..data.decode import resolve_decode
    from ..device import resolve_device
    from ..errors import CacheError
    from ..features import FeatureCache
    from ..io import sha256_file
    from ..models.factory import builds_quick_gelu

    out = Path(cfg.out)
    if not out.is_file():
        return "fresh", ""
    try:
        with FeatureCache(out) as c:
            missing = [s for s in cfg.splits if not (s in c.splits and c.is_complete(s))]
            ident = json.loads(c.attrs["config"]).get("identity") or {}
    except (CacheError, ValueError, KeyError) as e:
        return "different", str(e)
    ckpt = Path(cfg.pretrained)
    weights = ({"checkpoint_sha256": sha256_file(ckpt)} if ckpt.is_file() else {"pretrained": cfg.pretrained})
    want = {"dataset": cfg.dataset, "model": cfg.model, "templates": cfg.templates, "views": cfg.views,
            "view_budget": cfg.view_budget, "seed": cfg.seed,
            "decode": resolve_decode(cfg.decode, resolve_device(cfg.device)),
            "quick_gelu": builds_quick_gelu(cfg.model, cfg.pretrained), **weights}
    ident.setdefault("view_budget", 0)  # caches from before view budgets
    ident.setdefault("quick_gelu", False)  # caches from before it was recorded ran nn.GELU
    ident.setdefault("decode", "pil")  # caches from before --decode: PIL's pixels
    diffs = [k for k, v in want.items() if ident.get(k) != v]
    recorded = ident.get("dataset_options") or {}
    diffs += [f"option {k}" for k, v in cfg.dataset_options.items() if not _same_value(recorded.get(k), v)]
    if diffs:
        return "different", f"{out} holds another extraction ({', '.join(diffs)})"
    if missing:
        return "extend", f"{out} lacks splits {', '.join(missing)}"
    return "done", f"{out} holds these settings, splits {', '.join(cfg.splits)} complete"


def _same_value(a: Any, b: Any) -> bool:
    """Equal, with 100 and 100.0 the same number (a TOML integer vs a loader's float)."""
    numbers = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (a, b))
    return float(a) == float(b) if numbers else a == b


# -- Phase B and other heads -------------------------------------------------------------------

@dataclass
class AdaptResult:
    path: Path
    config: Any  # the resolved TrainConfig
    reused: bool = False
    final_loss: float | None = None
    seconds: float = 0.0


def train_config(cfg: AdaptConfig):
    """The head's resolved recipe: its defaults, overridden by ``cfg.recipe``'s set values."""
    from ..heads import resolve_config

    return resolve_config(cfg.head, seed=cfg.seed, **cfg.recipe)


def head_reusable(path: str | Path, recipe, cache) -> bool:
    """A head file made on this cache (content identity) with exactly this recipe."""
    from ..heads import load_head

    if not Path(path).is_file():
        return False
    try:
        return load_head(path, provenance=cache.provenance())[1]["config"] == recipe.to_dict()
    except LTBenchError:  # another cache or an unreadable file: retrain
        return False


def run_adapt(cfg: AdaptConfig, *, cache=None, reuse: bool = False) -> AdaptResult:
    """Train ``cfg.head`` on the cache's train split and write HEAD.pt (+ its resolved config).

    Args:
        cfg: the resolved options.
        cache: an open ``FeatureCache`` of ``cfg.features`` (opened here when None).
        reuse: keep an existing head of this cache and recipe.
    """
    from ..features import FeatureCache
    from ..heads import save_head, train_head

    recipe = train_config(cfg)
    check_output(cfg.out, inputs=[cfg.features, cfg.base])
    if cache is None:
        with FeatureCache(cfg.features) as c:
            return run_adapt(cfg, cache=c, reuse=reuse)
    check_step_size(recipe, cache)
    with output_lock(cfg.out):
        if reuse and head_reusable(cfg.out, recipe, cache):
            log.info("%s holds this %s recipe on this cache; reusing it", cfg.out, cfg.head)
            return AdaptResult(Path(cfg.out), recipe, reused=True)
        base, base_info = _adapt_base(cfg, cache)
        result = train_head(cache, recipe, device=cfg.device, base=base)
        resolved = {"features": cfg.features, "out": cfg.out, "device": cfg.device, **recipe.to_dict()}
        if cfg.base is not None:
            resolved["base"] = cfg.base
        with config_beside(cfg.out, resolved, "adapt"):
            save_head(cfg.out, result, cache.provenance(), extra=base_info)
    log.info("wrote %s (%s, final loss %.4f, %.1f s)", cfg.out, cfg.head, result.final_loss, result.seconds)
    return AdaptResult(Path(cfg.out), recipe, final_loss=result.final_loss, seconds=result.seconds)


def _adapt_base(cfg: AdaptConfig, cache) -> tuple:
    """(the loaded ``--base`` head or None, what HEAD.pt records of it)."""
    from ..heads import load_head

    if cfg.base is None:
        return None, {}
    if cfg.head != "lws":
        raise LTBenchError(f"--base is for --head lws (a trained linear HEAD.pt to scale), not --head {cfg.head}")
    head, rec = load_head(cfg.base, provenance=cache.provenance())
    return head, {"base": {"path": str(cfg.base), "head": rec["head"], "config": rec["config"], "created": rec["created"]}}


# A step may sample more images than the train split holds (one step of ``batch`` per epoch,
# ``heads.train``); beyond this many times the split, a step only repeats each image more.
MAX_BATCH_PER_IMAGE = 64


def check_step_size(recipe, cache) -> None:
    """Refuse a ``--batch-size`` beyond ``MAX_BATCH_PER_IMAGE`` x the train split, or whose step
    would not fit in memory, before training. Memory per sampled image: its float16 row and
    float32 copy, the head's activations and gradients (about 4 float32 vectors of the dimension
    and 3 of the classes) and the epoch's index arrays; at most half the available memory (the
    cache's arrays and the rest of the process need theirs)."""
    from ..resources import check_memory

    b, n = recipe.batch_size, int(cache.train_counts.sum())
    if b > MAX_BATCH_PER_IMAGE * max(n, 1):
        raise LTBenchError(f"--batch-size {b} is more than {MAX_BATCH_PER_IMAGE} x the {n} train images of "
                           f"{cache.path}: a step would draw each image about {b // max(n, 1)} times; give at most "
                           f"{MAX_BATCH_PER_IMAGE * max(n, 1)}")
    per_image = 16 * cache.embed_dim + 12 * cache.num_classes + 40
    check_memory(2 * b * per_image, f"--batch-size {b} (a step of {b} sampled images, dimension "
                 f"{cache.embed_dim}, {cache.num_classes} classes)", f"give a smaller --batch-size (the train "
                 f"split has {n} images)")


# -- evaluation ----------------------------------------------------------------------------------

def _check_eval(cfg: EvalConfig) -> None:
    from ..heads.config import BASELINES
    from ..options import check_options

    check_options(cfg)
    if (cfg.head is None) == (cfg.baseline is None):
        raise LTBenchError(f"give exactly one of --head HEAD.pt or --baseline NAME ({', '.join(BASELINES)})")
    if cfg.baseline is not None and (cfg.tau_norm is not None or cfg.ensemble is not None):
        raise LTBenchError("--tau-norm and --ensemble are post-hoc steps on a trained head: use them with --head HEAD.pt")
    if cfg.head is not None and cfg.shots is not None:
        raise LTBenchError("--shots sizes the tip_adapter baseline's cache; a tip_adapter_f head has its own "
                           "(set at `ltbench adapt --shots`)")


def _posthoc_steps(cfg: EvalConfig) -> dict:
    """The post-hoc steps on a trained head that are set (``heads.posthoc``), as a result records them."""
    steps = {"tau_norm": cfg.tau_norm, "ensemble": cfg.ensemble, "tip_alpha": cfg.tip_alpha, "tip_beta": cfg.tip_beta}
    return {k: float(v) for k, v in steps.items() if v is not None}


def _baseline_opts(cfg: EvalConfig) -> dict:
    return {"k": cfg.k, "tip_alpha": cfg.tip_alpha, "tip_beta": cfg.tip_beta, "shots": cfg.shots}


def result_reusable(path: str | Path, cfg: EvalConfig, cache) -> bool:
    """A result file of this cache, head recipe or baseline options, split and eval options."""
    from ..heads import load_head
    from ..heads.predict import baseline_options

    path = Path(path)
    if not path.is_file():
        return False
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
        prov = cache.provenance()
        if cfg.head is not None:
            config = load_head(cfg.head, provenance=prov)[1]["config"]
        else:
            config = baseline_options(cfg.baseline, **_baseline_opts(cfg))
        config = {**config, **_posthoc_steps(cfg)}
        return (rec.get("config") == config and rec.get("split") == cfg.split
                and rec.get("posthoc_tau") == float(cfg.posthoc_tau) and rec.get("label") == cfg.label
                and all(rec.get("cache", {}).get(k) == prov[k]
                        for k in ("created", "classnames_hash", "dataset", "fingerprint"))
                and (cfg.head is not None or rec.get("seed") == cfg.seed))
    except (OSError, ValueError, LTBenchError):
        return False


def run_eval(cfg: EvalConfig, *, cache=None, reuse: bool = False) -> dict:
    """Score a trained head or a baseline on ``cfg.split``; return the result record (written to
    ``cfg.json_out`` when set, with its resolved config)."""
    from ..features import FeatureCache

    _check_eval(cfg)
    check_output(cfg.json_out, inputs=[cfg.features, cfg.head], flag="--json")
    if cache is None:
        with FeatureCache(cfg.features) as c:
            return run_eval(cfg, cache=c, reuse=reuse)
    with output_lock(cfg.json_out, flag="--json"):
        return _eval(cfg, cache, reuse)


def _eval(cfg: EvalConfig, cache, reuse: bool) -> dict:
    from ..heads.predict import baseline_logits, trained_logits
    from ..metrics import evaluate
    from ..report.results import result_record, write_result

    if reuse and cfg.json_out is not None and result_reusable(cfg.json_out, cfg, cache):
        log.info("%s holds this evaluation; reusing it", cfg.json_out)
        return json.loads(Path(cfg.json_out).read_text(encoding="utf-8"))
    if cfg.head is not None:
        pred = trained_logits(cache, cfg.head, cfg.split, cfg.device, **_posthoc_steps(cfg))
    else:
        pred = baseline_logits(cache, cfg.baseline, cfg.split, cfg.device, cfg.seed, **_baseline_opts(cfg))
    ev = evaluate(pred.logits, pred.labels, cache.train_counts, posthoc_tau=cfg.posthoc_tau)
    # a trained head's seed is the one it was trained with, not eval's
    seed = pred.config.get("seed", cfg.seed) if pred.kind == "trained" else cfg.seed
    record = result_record(ev, head=pred.head, kind=pred.kind, split=cfg.split, cache=cache, config=pred.config,
                           seed=seed, posthoc_tau=cfg.posthoc_tau, head_path=pred.head_path, label=cfg.label,
                           device=pred.device)
    if cfg.json_out is not None:
        with config_beside(cfg.json_out, cfg, "eval"):
            write_result(cfg.json_out, record)
        log.info("wrote %s", cfg.json_out)
    return record


# -- report --------------------------------------------------------------------------------------

@dataclass
class ReportResult:
    tables: list  # LeaderboardTable, one per dataset
    rendered: Any  # text (md, latex, csv) or a list of rich tables
    plot: Path | None = None
    files: dict[str, Path] = field(default_factory=dict)


def run_report(cfg: ReportConfig, results: list | None = None) -> ReportResult:
    """Tables (and ``cfg.plot``) of result files; written to ``cfg.out`` when set.

    Args:
        cfg: the resolved options.
        results: already loaded results (``load_results``), in place of ``cfg.results``.
    """
    from ..options import check_options

    check_options(cfg)
    check_output(cfg.out, inputs=cfg.results)
    check_output(cfg.plot, inputs=cfg.results, flag="--plot")
    if cfg.plot is not None and Path(cfg.plot).suffix.lower() not in PLOT_FORMATS:
        raise LTBenchError(f"--plot {cfg.plot}: name a {', '.join(PLOT_FORMATS)} file (the suffix is the format)")
    with output_lock(cfg.out), output_lock(cfg.plot, flag="--plot"):
        return _report(cfg, results)


def _report(cfg: ReportConfig, results: list | None) -> ReportResult:
    from ..report import build_tables, load_results, render
    from ..report.plots import plot_per_class

    loaded = results if results is not None else load_results(list(cfg.results))
    tables = build_tables(loaded, published=cfg.published)
    if len(tables) > 1:
        log.info("the results are of %d datasets (%s); one table per dataset", len(tables),
                 ", ".join(t.dataset for t in tables))
    rendered = render(tables, cfg.format, bold_best=cfg.bold_best)
    out = ReportResult(tables, rendered)
    if cfg.out is not None:
        with config_beside(cfg.out, cfg, "report"):
            write_text(cfg.out, rich_to_text(rendered) if cfg.format == "rich" else rendered)
        out.files["table"] = Path(cfg.out)
    if cfg.plot is not None:
        out.plot = plot_per_class(loaded, cfg.plot)
        log.info("wrote plot %s", out.plot)
    return out


def rich_to_text(tables, width: int = 160) -> str:
    """Plain-text rendering of rich tables (a rich report written to a file)."""
    import io

    from rich.console import Console

    buf = io.StringIO()
    console = Console(file=buf, width=width, no_color=True, force_terminal=False)
    for t in tables:
        console.print(t)
        console.print()
    return buf.getvalue()

