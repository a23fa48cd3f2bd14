"""The pipeline layer: one typed entry point per step, the reuse rules, recipes, demo, reproduce.

::

    run_finetune(FinetuneConfig)  Phase A              -> summary
    run_extract(ExtractConfig)    images -> cache      -> ExtractResult
    run_adapt(AdaptConfig)        cache -> HEAD.pt     -> AdaptResult
    run_eval(EvalConfig)          cache + head         -> result record
    run_report(ReportConfig)      results -> tables    -> ReportResult
    run_tune(TuneConfig)          select on val, seeds on test     -> tune.TuneResult
    run_leaderboard(LeaderboardConfig)  every method tuned, one table -> tune.Board
    run_demo(DemoConfig)          the embedded default, end to end
    make_plan / run_plan          a recipe, step by step (``ltbench reproduce``)

The ``ltbench`` commands, ``demo`` and ``reproduce`` all call these. Configs are torch-free;
the entry points import the heavy parts when called.
"""

from importlib import import_module

from .configs import (AdaptConfig, DemoConfig, EvalConfig, ExtractConfig, FinetuneConfig, LeaderboardConfig,
                      ReportConfig, TuneConfig)

_LAZY = {
    "run_finetune": "steps", "run_extract": "steps", "run_adapt": "steps", "run_eval": "steps",
    "run_report": "steps", "write_resolved_config": "steps", "run_tune": "tuning", "run_leaderboard": "tuning",
    "run_demo": "demo", "make_plan": "reproduce", "run_plan": "reproduce", "load_recipe": "recipes", "shipped_recipes": "recipes",
}
__all__ = ["AdaptConfig", "DemoConfig", "EvalConfig", "ExtractConfig", "FinetuneConfig", "LeaderboardConfig",
           "ReportConfig", "TuneConfig", *_LAZY]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'lt_bench.pipeline' has no attribute {name!r}")
    return getattr(import_module(f".{_LAZY[name]}", __name__), name)
