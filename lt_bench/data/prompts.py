"""Prompt template sets: a class name goes where ``{}`` is.

``simple`` is BALLAD's single template (the default everywhere in lt_bench); ``species`` its
species-aware variant (iNaturalist); ``openai`` is the
80-template ImageNet ensemble of the CLIP paper, taken from open_clip (where they are lambdas)
and turned into format strings so that they can be stored in a cache and compared.
Class names are used as the datasets give them (they supply prompt-ready names).
"""

from __future__ import annotations

from ..errors import LTBenchError, known

SIMPLE_TEMPLATES = ("a photo of a {}.",)
# For species names (iNaturalist's Latin binomials), which alone say little to a text encoder:
# the "a type of <kind>" pattern of CLIP's fine-grained prompts (Food-101's "a type of food").
SPECIES_TEMPLATES = ("a photo of a {}, a type of species.",)


def _openai_templates() -> tuple[str, ...]:
    from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

    # Each template is ``lambda c: f"... {c} ..."``: calling it with "{}" gives the format string.
    return tuple(t("{}") for t in OPENAI_IMAGENET_TEMPLATES)


_SETS = {"simple": lambda: SIMPLE_TEMPLATES, "species": lambda: SPECIES_TEMPLATES, "openai": _openai_templates}


def list_template_sets() -> list[str]:
    return sorted(_SETS)


def get_templates(name: str) -> list[str]:
    """The templates of set ``name`` (``simple``, ``species`` or ``openai``), each with one ``{}``."""
    if name not in _SETS:
        raise LTBenchError(f"unknown template set {name!r}; known: {known(_SETS)}")
    return list(_SETS[name]())


def fill(templates: list[str], classname: str) -> list[str]:
    """The prompts of one class: every template with ``classname`` in place of ``{}``."""
    return [t.replace("{}", classname) for t in templates]
