"""The result file of ``ltbench eval --json``: built, written, read and validated here, and only here.

Format (``result_record``; keys are stable, ``ltbench report`` reads them)::

    {"format": "lt_bench.result", "format_version": 1,
     "head": NAME,                   # baseline name or the trained head's name
     "label": str | null,            # the method's name in tables (`eval --label`); null: the head's
     "kind": "baseline" | "trained",
     "head_path": str | null,        # HEAD.pt for a trained head
     "dataset": str, "model": str,   # from the cache, for the report's rows
     "split": "test" | "val" | "train",
     "metrics": {...},               # metrics.evaluate()'s, percent, null where undefined
     "per_class": [...], "train_counts": [...], "classnames": [...],
     "group_sizes": {...}, "num_images": N,
     "posthoc_tau": float,           # 0: no post-hoc logit adjustment
     "cache": {FeatureCache.provenance()},  # incl. "fingerprint": the cache's content (absent in
                                     # results written before fingerprints)
     "config": {...},                # the head's training config or the baseline's options
     "seed": int, "lt_bench_version": str,
     "environment": {...},           # provenance.environment(): versions, the device eval ran on
     "created": ISO 8601}

A result file is refused (``LTBenchError``, one line naming the file and the missing key)
unless it has what the tables rely on: ``head`` (an optional ``label`` names the method in
tables instead), ``metrics.{overall,many,medium,few}``
(percent, ``null`` for an empty shot group), and a dataset and model (top level or inside
``cache``). Per-class data (``per_class``, ``train_counts``) is checked only where a plot
needs it; ``environment`` is optional (files written before it existed lack it).
"""

from __future__ import annotations

import json
import math
import os
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import LTBenchError
from ..io import write_json
from ..provenance import environment, now_iso
from .published import METRICS, normalize_backbone

RESULT_FORMAT = "lt_bench.result"
RESULT_FORMAT_VERSION = 1


def result_record(evaluation: dict, *, head: str, kind: str, split: str, cache, config: dict, seed: int,
                  posthoc_tau: float = 0.0, head_path: str | None = None, label: str | None = None,
                  device=None) -> dict:
    """The JSON-ready result of one evaluation (keys in the module docstring).

    Args:
        evaluation: ``metrics.evaluate(...)``'s dict.
        head: the head's or baseline's name; ``kind``: ``"trained"`` or ``"baseline"``.
        split: the evaluated split.
        cache: the open ``FeatureCache`` (provenance, class names, train counts).
        config: the head's training config, or the baseline's options.
        seed: the trained head's seed, or the baseline's.
        posthoc_tau: the post-hoc logit adjustment applied (0: none).
        head_path: HEAD.pt of a trained head.
        label: the method's name in tables (None: the head's).
        device: where the logits were computed (``Prediction.device``), for ``environment``.
    """
    prov = cache.provenance()
    return {"format": RESULT_FORMAT, "format_version": RESULT_FORMAT_VERSION,
            "head": head, "label": label, "kind": kind, "head_path": head_path,
            "dataset": prov["dataset"], "model": prov["model"], "split": split,
            "metrics": evaluation["metrics"], "per_class": evaluation["per_class"],
            "train_counts": [int(c) for c in cache.train_counts], "classnames": list(cache.classnames),
            "group_sizes": evaluation["group_sizes"], "num_images": evaluation["num_images"],
            "posthoc_tau": float(posthoc_tau), "cache": prov, "config": config, "seed": int(seed),
            "lt_bench_version": __version__, "environment": environment(device), "created": now_iso()}


def write_result(path: str | os.PathLike, record: dict) -> Path:
    """Write ``record`` (``result_record``'s) as JSON, atomically, after the checks ``load_result`` makes."""
    path = Path(path)
    parse_result(record, path)
    write_json(path, record)
    return path


# Config keys that never make two runs different configurations: the seed itself, where
# files went, and how the work was scheduled.
_IGNORED_CONFIG_KEYS = {
    "seed", "device", "config", "out", "json", "output", "features", "cache", "head_path",
    "workers", "num_workers", "verbose", "quiet", "log", "progress", "overwrite", "resume",
}
_PATH_SUFFIXES = (".pt", ".pth", ".h5", ".hdf5", ".json", ".toml", ".safetensors", ".bin")


@dataclass
class Result:
    """One result file, validated. Metrics are percent; None for an empty shot group."""

    path: Path
    head: str
    dataset: str
    model: str
    pretrained: str
    split: str
    seed: int | None
    metrics: dict[str, float | None]
    config: dict[str, Any]
    raw: dict[str, Any] = field(repr=False)

    @property
    def backbone(self) -> str:
        return normalize_backbone(self.model)

    @property
    def environment(self) -> dict | None:
        """``provenance.environment()`` of the evaluation; None for files written before it existed."""
        env = self.raw.get("environment")
        return env if isinstance(env, dict) else None

    @property
    def pretrained_label(self) -> str:
        """Hub tag as is; a checkpoint path as ``run_dir/file`` (the full path is in the file)."""
        return pretrained_label(self.pretrained)

    def per_class(self) -> tuple[list[float], list[int]]:
        """Per-class accuracy (%) and training counts, checked to be present and aligned."""
        for key in ("per_class", "train_counts"):
            if not isinstance(self.raw.get(key), list) or not self.raw[key]:
                raise LTBenchError(f"{self.path}: result has no per-class data (missing key {key!r}); "
                                   "re-run `ltbench eval --json` with this lt_bench version")
        acc, counts = self.raw["per_class"], self.raw["train_counts"]
        if len(acc) != len(counts):
            raise LTBenchError(f"{self.path}: per_class has {len(acc)} entries but train_counts {len(counts)}")
        return [float("nan") if a is None else float(a) for a in acc], [int(c) for c in counts]

    def group_key(self) -> tuple:
        """What must agree for two results to be seeds of one configuration."""
        return (self.raw.get("label"), self.head, self.dataset, self.model, pretrained_key(self.pretrained), self.split,
                json.dumps(comparable_config(self.config), sort_keys=True, default=str))


def pretrained_label(p: str) -> str:
    p = str(p)
    if _looks_like_path(p):
        path = Path(p)
        return f"{path.parent.name}/{path.name}" if path.parent.name else path.name
    return p


def pretrained_key(p: str) -> str:
    """A checkpoint path keyed by its file name only: seeds live in different run folders."""
    p = str(p)
    return f"checkpoint:{Path(p).name}" if _looks_like_path(p) else p


def _looks_like_path(v: Any) -> bool:
    return isinstance(v, str) and (os.sep in v or "/" in v or v.lower().endswith(_PATH_SUFFIXES))


def _flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def comparable_config(config: dict) -> dict[str, Any]:
    """The config without seeds, output paths and scheduling knobs (flattened, dotted keys)."""
    out = {}
    for k, v in _flatten(config or {}).items():
        leaf = k.rsplit(".", 1)[-1].replace("-", "_")
        if leaf in _IGNORED_CONFIG_KEYS or _looks_like_path(v):
            continue
        out[k] = v
    return out


def _fail(path: Path, what: str) -> LTBenchError:
    return LTBenchError(f"{path} is not an lt_bench result: {what} (write one with `ltbench eval --json`)")


def _metric(path: Path, metrics: dict, name: str) -> float | None:
    if name not in metrics:
        raise _fail(path, f"missing key 'metrics.{name}'")
    v = metrics[name]
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise _fail(path, f"'metrics.{name}' is {v!r}, not a number or null")
    if not 0 <= v <= 100:  # every metric is a percentage: 5740 is a damaged or hand-edited file
        raise LTBenchError(f"{path}: 'metrics.{name}' is {v:g} %, outside 0..100 %: fix the file or write it "
                           "again with `ltbench eval --json`")
    return float(v)


def load_result(path: str | os.PathLike) -> Result:
    """Read one result file; raise ``LTBenchError`` naming the file and what is missing."""
    path = Path(path)
    if path.is_dir():
        raise LTBenchError(f"{path} is a folder, not a result file: give the .json files in it "
                           f"(e.g. {path}/*.json)")
    if not path.is_file():
        raise LTBenchError(f"result file {path} does not exist")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise LTBenchError(f"{path} is not valid JSON: {e}") from None
    return parse_result(raw, path)


def parse_result(raw: Any, path: str | os.PathLike = "<result>") -> Result:
    """Validate a result record (read from ``path``); raise ``LTBenchError`` naming what is missing."""
    path = Path(path)
    if not isinstance(raw, dict):
        raise _fail(path, "top level is not an object")
    fmt = raw.get("format")
    if fmt is not None and fmt != RESULT_FORMAT:
        raise _fail(path, f"format is {fmt!r}, expected {RESULT_FORMAT!r}")
    version = raw.get("format_version")
    if isinstance(version, int) and version > RESULT_FORMAT_VERSION:
        raise LTBenchError(f"{path}: result format_version {version} is newer than this lt_bench reads "
                           f"({RESULT_FORMAT_VERSION}); upgrade lt_bench")
    for key in ("head", "metrics"):
        if key not in raw:
            raise _fail(path, f"missing key {key!r}")
    if not isinstance(raw["metrics"], dict):
        raise _fail(path, "'metrics' is not an object")
    cache = raw.get("cache") if isinstance(raw.get("cache"), dict) else {}

    def pick(key: str, required: bool = True, default: Any = None) -> Any:
        v = raw.get(key, cache.get(key))
        if v in (None, "") and required:
            raise _fail(path, f"missing key {key!r} (top level or in 'cache')")
        return default if v is None else v

    metrics = {m: _metric(path, raw["metrics"], m) for m in METRICS}
    for k, v in raw["metrics"].items():  # keep extra numeric metrics (macro_f1, ...) for callers
        if k not in metrics and isinstance(v, (int, float)) and not isinstance(v, bool):
            metrics[k] = _metric(path, raw["metrics"], k)
    seed = raw.get("seed")
    config = dict(raw["config"]) if isinstance(raw.get("config"), dict) else {}
    if raw.get("posthoc_tau"):  # post-hoc logit adjustment makes another configuration
        config["posthoc_tau"] = raw["posthoc_tau"]
    return Result(
        path=path, head=str(raw["head"]), dataset=str(pick("dataset")), model=str(pick("model")),
        pretrained=str(pick("pretrained", required=False, default="")),
        split=str(raw.get("split") or "test"), seed=seed if isinstance(seed, int) else None,
        metrics=metrics, config=config, raw=raw,
    )


def load_results(paths) -> list[Result]:
    """Read several result files (order kept); the first bad one raises."""
    paths = list(paths)
    if not paths:
        raise LTBenchError("no result files given; pass one or more RESULTS.json from `ltbench eval --json`")
    _refuse_repeats(paths)
    return [load_result(p) for p in paths]


def _refuse_repeats(paths: list) -> None:
    """One file given twice, or two copies of one result, would count as two seeds (n = 2, ± 0.0)."""
    import hashlib

    seen_file: dict[tuple[int, int], Path] = {}
    seen_content: dict[str, Path] = {}
    for p in map(Path, paths):
        try:
            st = p.stat()
            digest = hashlib.sha256(p.read_bytes()).hexdigest()
        except OSError:  # load_result names a missing or unreadable file
            continue
        first = seen_file.setdefault((st.st_dev, st.st_ino), p)  # the same path, a symlink or a hard link
        if first is not p:
            raise LTBenchError(f"result file {p} is given twice (as {first} and {p}): give each result once")
        first = seen_content.setdefault(digest, p)
        if first is not p:
            raise LTBenchError(f"result files {first} and {p} are identical (a copy, not another seed): "
                               "give each result once")


@dataclass
class ResultGroup:
    """Seeds of one configuration: mean and sample std (ddof=1) per metric over n runs."""

    results: list[Result]
    label: str = ""

    @property
    def first(self) -> Result:
        return self.results[0]

    @property
    def n(self) -> int:
        return len(self.results)

    @property
    def seeds(self) -> list[int | None]:
        return [r.seed for r in self.results]

    def values(self, metric: str) -> list[float]:
        return [r.metrics[metric] for r in self.results if r.metrics.get(metric) is not None]

    def mean(self, metric: str) -> float | None:
        vals = self.values(metric)
        return statistics.fmean(vals) if vals else None

    def std(self, metric: str) -> float | None:
        """Sample standard deviation over seeds; None for fewer than two runs."""
        vals = self.values(metric)
        return statistics.stdev(vals) if len(vals) >= 2 else None

    def per_class_mean(self) -> tuple[list[float], list[int]]:
        """Per-class accuracy averaged over seeds (classes must agree)."""
        acc0, counts = self.first.per_class()
        sums = [0.0] * len(acc0)
        for r in self.results:
            acc, c = r.per_class()
            if c != counts:
                raise LTBenchError(f"{r.path}: train_counts differ from {self.first.path} "
                                   "although both are seeds of one configuration")
            sums = [s + a for s, a in zip(sums, acc)]
        return [s / self.n for s in sums], counts


def aggregate(results: list[Result]) -> list[ResultGroup]:
    """Group results that differ only by seed (and output paths); order of first appearance.

    Two groups with the same head, dataset and model but different configs get labels that
    name the differing config keys, e.g. ``ballad (alpha=0.5)``.
    """
    groups: dict[tuple, ResultGroup] = {}
    for r in results:
        groups.setdefault(r.group_key(), ResultGroup([])).results.append(r)
    out = list(groups.values())
    for g in out:
        name = str(g.first.raw.get("label") or g.first.head)  # a result may carry its own method label
        g.label = name if g.first.split == "test" else f"{name} [{g.first.split}]"
        tau = g.first.config.get("posthoc_tau")
        if tau and not g.first.raw.get("label"):  # a user's label already says what it is
            g.label += f" + post-hoc LA (tau={tau:g})"
        if not g.first.raw.get("label") and g.first.raw.get("kind") == "trained":  # eval's post-hoc steps
            for key, what in (("tau_norm", "tau-norm (tau={:g})"), ("ensemble", "zero-shot ensemble (w={:g})")):
                if g.first.config.get(key) is not None:
                    g.label += " + " + what.format(g.first.config[key])
    by_base: dict[tuple, list[ResultGroup]] = {}
    for g in out:
        r = g.first
        by_base.setdefault((g.label, r.head, r.dataset, r.model, pretrained_key(r.pretrained), r.split), []).append(g)
    for siblings in by_base.values():
        if len(siblings) < 2:
            continue
        cfgs = [comparable_config(g.first.config) for g in siblings]
        keys = sorted({k for c in cfgs for k in c})
        differing = [k for k in keys if len({json.dumps(c.get(k), default=str) for c in cfgs}) > 1]
        for g, c in zip(siblings, cfgs):
            desc = ", ".join(f"{k.rsplit('.', 1)[-1]}={c.get(k, '-')}" for k in differing[:3])
            if desc:
                g.label = f"{g.label} ({desc})"
    return out
