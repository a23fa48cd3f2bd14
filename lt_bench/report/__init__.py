"""Result files -> leaderboard tables and per-class plots, beside the published numbers.

Public entry points:
    result_record / write_result build and write an ``ltbench eval --json`` file
    load_result / load_results   read and validate them (``parse_result``: a record in memory)
    aggregate                    group seeds of one configuration (mean ± std)
    build_tables                 user rows + published reference rows, one table per dataset
    render_markdown / render_latex / render_csv / render_rich
    plot_per_class               per-class accuracy against training-image count (PNG)
    load_published               the published numbers shipped with the package
"""

from .published import PublishedEntry, load_published, normalize_backbone, published_for
from .results import (RESULT_FORMAT, RESULT_FORMAT_VERSION, Result, ResultGroup, aggregate, load_result,
                      load_results, parse_result, result_record, write_result)
from .tables import (LeaderboardTable, Row, build_tables, render, render_csv, render_latex,
                     render_markdown, render_rich)

__all__ = [
    "RESULT_FORMAT", "RESULT_FORMAT_VERSION", "LeaderboardTable", "PublishedEntry", "Result", "ResultGroup",
    "Row", "aggregate", "build_tables", "load_published", "load_result", "load_results", "normalize_backbone",
    "parse_result", "published_for", "render", "render_csv", "render_latex", "render_markdown", "render_rich",
    "result_record", "write_result",
]
