"""`ltbench adapt FEATURES.h5 --head NAME --out HEAD.pt`: train a head on a feature cache (Phase B)."""

from __future__ import annotations

import typer

from lt_bench.heads.config import RECIPE_OPTIONS, TRAINED_HEADS, TrainConfig
from lt_bench.pipeline.configs import AdaptConfig

from .._options import command, derive, require


@command(derive(AdaptConfig), derive(TrainConfig, exclude=("head", "seed"), unset=True,
                                     help_suffix="default: the head's recipe"),
         doc="""Train a head (""" + ", ".join(TRAINED_HEADS) + """) on the cached train features and write HEAD.pt.

    Every recipe option left unset takes the head's default (ballad: the BALLAD reference's
    Phase B; crt, lws: Kang et al.'s; tip_adapter_f: Tip-Adapter-F's). The resolved recipe is
    written beside HEAD.pt as HEAD.pt.config.toml. LDAM-DRW: --loss ldam --drw.
    """)
def adapt(ctx: typer.Context, p: dict) -> None:
    from lt_bench.options import from_values, plain
    from lt_bench.pipeline import run_adapt

    require(ctx, AdaptConfig, p)
    recipe = {k: plain(p[k]) for k in RECIPE_OPTIONS if p.get(k) is not None}
    result = run_adapt(from_values(AdaptConfig, p, recipe=recipe))
    typer.echo(str(result.path))
