"""Tuning on val and the leaderboard (``ltbench tune`` / ``ltbench leaderboard``).

    tune(cache, method, out, ...)         select on val (Optuna, SQLite in ``out``), then seeds on test
    leaderboard(cache, out, methods=...)  every method tuned, one table beside the published rows

Selection is given train and val only (``data.tuning_data``: the cache's val split or a seeded
class-stratified holdout of train); test is read once selection is over (``study``).
"""

from .board import Board, BoardRow, leaderboard, render_csv, render_latex, render_markdown, render_rich
from .data import cache_identity, check_tunable, final_data, read_method_data, read_test, tuning_data
from .space import SAMPLERS, override_space
from .study import Selection, TuneResult, bootstrap_ci, claim_folder_for, select, tune, tune_method

__all__ = ["Board", "BoardRow", "SAMPLERS", "Selection", "TuneResult", "bootstrap_ci", "cache_identity",
           "check_tunable", "claim_folder_for", "final_data", "leaderboard", "override_space", "read_method_data",
           "read_test", "render_csv", "render_latex", "render_markdown", "render_rich", "select", "tune",
           "tune_method", "tuning_data"]
