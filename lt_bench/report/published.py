"""The published numbers of the papers (BALLAD, CLIP, VL-LTR, Decoder, LIFT), shipped as ``lt_bench/report/data/published.json``."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

METRICS = ("overall", "many", "medium", "few")

# open_clip spells backbones with dashes (ViT-B-16); papers with slashes (ViT-B/16).
_VIT = re.compile(r"^(ViT-[A-Za-z]+)-(\d+)((?:-.+)?)$")


def normalize_backbone(name: str) -> str:
    """Paper spelling of an open_clip model name: ``ViT-B-16`` -> ``ViT-B/16``, ``RN50`` -> ``RN50``.

    Suffixes stay (``ViT-B-16-quickgelu`` -> ``ViT-B/16-quickgelu``); other names pass through.
    """
    name = str(name).strip()
    if "/" in name:
        return name
    m = _VIT.match(name)
    if m:
        return f"{m.group(1)}/{m.group(2)}{m.group(3)}"
    return name


def _backbone_key(name: str) -> str:
    """Backbone identity for matching: paper spelling without open_clip's ``-quickgelu``."""
    return normalize_backbone(name).removesuffix("-quickgelu").lower()


@dataclass(frozen=True)
class PublishedEntry:
    """One published result: top-1 % overall and per shot group (None: not reported)."""

    method: str
    backbone: str
    dataset: str
    overall: float | None
    many: float | None = None
    medium: float | None = None
    few: float | None = None
    pretrained: str = "openai"
    source: str = ""
    citation: str = ""
    note: str = ""
    options: dict = field(default_factory=dict, hash=False, compare=False)

    def metrics(self) -> dict[str, float | None]:
        return {m: getattr(self, m) for m in METRICS}


@lru_cache(maxsize=1)
def _load_raw() -> dict:
    text = resources.files("lt_bench.report").joinpath("data/published.json").read_text(encoding="utf-8")
    return json.loads(text)


def load_published() -> list[PublishedEntry]:
    """All published entries, in the order of published.json."""
    raw = _load_raw()
    sources, datasets = raw["sources"], raw["datasets"]
    out = []
    for e in raw["entries"]:
        out.append(PublishedEntry(
            method=e["method"], backbone=e["backbone"], dataset=e["dataset"],
            overall=e.get("overall"), many=e.get("many"), medium=e.get("medium"), few=e.get("few"),
            pretrained=e.get("pretrained", "openai"), source=e.get("source", ""),
            citation=sources.get(e.get("source", ""), ""), note=e.get("note", ""),
            options=dict(datasets.get(e["dataset"], {}).get("options", {})),
        ))
    return out


def dataset_title(name: str) -> str:
    """Human name of a benchmark dataset (``imagenet_lt`` -> ``ImageNet-LT``); else the name."""
    return _load_raw()["datasets"].get(name, {}).get("title", name)


def published_for(dataset: str, backbones=None, dataset_options: dict | None = None) -> list[PublishedEntry]:
    """Published entries for ``dataset``, optionally only for ``backbones`` (any spelling).

    ``dataset_options`` (e.g. ``{"imbalance": 10}``) must agree with the published protocol
    where both name the same option; CIFAR-100-LT numbers are for imbalance 100 only.
    """
    want = None if backbones is None else {_backbone_key(b) for b in backbones}
    out = []
    for e in load_published():
        if e.dataset != dataset:
            continue
        if want is not None and _backbone_key(e.backbone) not in want:
            continue
        if dataset_options and any(
            k in dataset_options and _num(dataset_options[k]) != _num(v) for k, v in e.options.items()
        ):
            continue
        out.append(e)
    return out


def _num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return v
