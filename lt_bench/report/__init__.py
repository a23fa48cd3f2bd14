"""Result files -> leaderboard tables and per-class plots, beside the published numbers.

Public entry points:
    load_result / load_results   read and validate ``ltbench eval --json`` files
    aggregate                    group seeds of one configuration (mean ± std)
    build_tables                 user rows + published reference rows, one table per dataset
    render_markdown / render_latex / render_csv / render_rich
    plot_per_class               per-class accuracy against training-image count (PNG)
    load_published               the published numbers shipped with the package
"""

from .published import PublishedEntry, load_published, normalize_backbone, published_for
from .results import Result, ResultGroup, aggregate, load_result, load_results
from .tables import (LeaderboardTable, Row, build_tables, render, render_csv, render_latex,
                     render_markdown, render_rich)

__all__ = [
    "LeaderboardTable", "PublishedEntry", "Result", "ResultGroup", "Row", "aggregate",
    "build_tables", "load_published", "load_result", "load_results", "normalize_backbone",
    "published_for", "render", "render_csv", "render_latex", "render_markdown", "render_rich",
]
