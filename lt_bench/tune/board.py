"""The leaderboard: every method tuned on val, fitted with several seeds, tabled beside the
published numbers.

``leaderboard`` reads the cache's train and val once, tunes each method in its own folder
``DIR/<method>/`` (``study.tune_method``; a rerun reuses finished trials and seeds), reads test
once, after the first selection, and writes the table in four forms plus the per-class plot of
the best few methods::

    DIR/cache.json            the cache DIR is made for (another cache is refused)
    DIR/<method>/...          one tune folder per method (``study`` module docstring)
    DIR/leaderboard.{md,tex,csv,json}   the table (json: its rows, for programs)
    DIR/per_class_accuracy.png          the best ``plot_best`` methods by overall accuracy
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import LTBenchError, known
from ..io import write_json, write_text
from ..log import get_logger
from .study import SUMMARY_JSON, TuneResult, check_budget, claim_folder, tune_method

log = get_logger(__name__)

METRICS = ("overall", "many", "medium", "few")
COLUMNS = ("Method", "n", "Overall", "Many", "Medium", "Few", "Overall 95% CI", "Val", "Selected hyperparameters",
           "Train s", "Source")
PLOT_BEST = 3


@dataclass
class BoardRow:
    """One row; ``cells[metric] = (mean, std)`` over seeds (None where missing)."""

    method: str
    n: int | None
    cells: dict
    ci95: tuple | None = None  # bootstrap interval of overall (%), resampling test images
    val_score: float | None = None  # mean per-class accuracy (%) on val of the selected params
    params: dict = field(default_factory=dict)
    train_seconds: float | None = None  # mean over seeds
    published: bool = False
    source: str = "this run"
    citation: str = ""


@dataclass
class Board:
    title: str
    rows: list[BoardRow]
    tunes: dict[str, TuneResult]
    files: dict[str, Path] = field(default_factory=dict)

    def provenance(self) -> str:
        """``made by lt_bench X; results computed with <environments>`` (a trailing comment)."""
        from .. import __version__
        from ..provenance import describe_environment

        envs = list(dict.fromkeys(describe_environment(t.summary.get("environment")) for t in self.tunes.values()))
        line = f"made by lt_bench {__version__}"
        return line + ("; results computed with " + " | ".join(e for e in envs if e) if any(envs) else "")

    @property
    def user_rows(self) -> list[BoardRow]:
        return [r for r in self.rows if not r.published]


def resolve_methods(methods: str | tuple | list) -> list[str]:
    """``all`` (every registered method, in declaration order) or a list of names, checked."""
    from ..heads.methods import METHODS

    names = [m.strip() for m in (methods.split(",") if isinstance(methods, str) else methods) if m.strip()]
    if names in (["all"], []):
        return list(METHODS)
    unknown = [m for m in names if m not in METHODS]
    if unknown:
        raise LTBenchError(f"unknown method {unknown[0]!r}; known: all, {known(METHODS)}")
    return list(dict.fromkeys(names))


def run_order(names: list[str]) -> list[str]:
    """``names`` with each training family's methods one after another (in the order of their
    families' first members): a family's heads are trained once for all of its methods. The
    table's order is the scores', whatever the run order."""
    from ..heads.methods import training_family

    first: dict = {}
    for n in names:
        first.setdefault(training_family(n), len(first))
    return sorted(names, key=lambda n: first[training_family(n)])


def leaderboard(cache, out: str | Path, *, methods="all", trials: int = 8, sampler: str = "grid", seeds: int = 3,
                views: bool = True, seed: int = 0, device: str = "cpu", plot_best: int = PLOT_BEST) -> Board:
    """Tune every method of ``methods`` on ``cache`` and write the leaderboard under ``out``.

    Args: as ``study.tune`` (``trials`` per method), plus ``plot_best``: methods in the plot.
    The caller holds ``out``'s lock (``pipeline.run_leaderboard`` does).
    """
    from ..heads.methods import get_method
    from ..lock import output_lock
    from .data import cache_identity, check_tunable, final_data, read_method_data, read_test, tuning_data

    names = run_order(resolve_methods(methods))
    check_budget(trials, seeds)
    out = Path(out)
    identity = cache_identity(cache)
    check_tunable(cache)
    claim_folder(out, identity, "leaderboard")
    data = read_method_data(cache, views=views)  # once for every method and trial
    tuning, val_source = tuning_data(data)
    final = final_data(data, val_source)
    test = []

    def test_once():  # after the first selection, once
        if not test:
            test.append(read_test(cache))
        return test[0]

    tunes = {}
    for name in names:
        m = get_method(name)
        folder = out / name
        with output_lock(folder, directory=True, stale=(SUMMARY_JSON, "results")):
            claim_folder(folder, identity, "tune")
            tunes[name] = tune_method(cache, m, dict(m.space), tuning, final, test_once, folder, val_source=val_source,
                                      trials=trials, sampler=sampler, seeds=seeds, seed=seed, device=device)
    board = build_board(tunes, out)
    board.files = write_board(board, out, plot_best)
    return board


def _mean(xs) -> float | None:
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def build_board(tunes: dict[str, TuneResult], out: Path) -> Board:
    """Rows of the tuned methods (best overall first), then the published rows of this dataset
    and backbone (``report``'s)."""
    from ..report import build_tables, parse_result
    from ..report.results import ResultGroup

    rows, results = [], []
    for name, t in tunes.items():
        rs = [parse_result(rec, t.out / p) for rec, p in zip(t.records, t.summary["results"])]
        results += rs
        g = ResultGroup(rs, label=name)
        s = t.summary
        rows.append(BoardRow(method=name, n=g.n, cells={m: (g.mean(m), g.std(m)) for m in METRICS},
                             ci95=tuple(s["overall_ci95"]), val_score=s["val_score"], params=s["selected"],
                             train_seconds=_mean(s["train_seconds"])))
    rows.sort(key=lambda r: -(r.cells["overall"][0] or 0.0))
    tables = build_tables(results, published=True) if results else []
    for t in tables:
        for p in t.published_rows:
            rows.append(BoardRow(method=p.method, n=None, cells=p.cells, published=True, source=p.source,
                                 citation=p.citation))
    title = tables[0].title if tables else "leaderboard"
    return Board(title=f"{title}: tuned on val", rows=rows, tunes=tunes)


# -- rendering ---------------------------------------------------------------------------------

def fmt_params(params: dict) -> str:
    if not params:
        return "-"
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(params.items()))


def _cells(r: BoardRow) -> list[str]:
    from ..report.tables import fmt_cell

    ci = "-" if r.ci95 is None else f"{r.ci95[0]:.1f}..{r.ci95[1]:.1f}"
    val = "-" if r.val_score is None else f"{r.val_score:.1f}"
    secs = "-" if r.train_seconds is None else f"{r.train_seconds:.2f}"
    return [r.method, "-" if r.n is None else str(r.n), *(fmt_cell(*r.cells[m]) for m in METRICS), ci, val,
            fmt_params(r.params) if not r.published else "-", secs, r.source]


def render_markdown(board: Board) -> str:
    from ..report.tables import _md

    lines = [f"### {board.title}", "", "| " + " | ".join(COLUMNS) + " |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---|"]
    lines += ["| " + " | ".join(_md(c) for c in _cells(r)) + " |" for r in board.rows]
    cites = sorted({r.citation for r in board.rows if r.citation})
    if cites:
        lines += [""] + [f"- {_md(c)}" for c in cites]
    lines += ["", f"<!-- {board.provenance().replace('--', '-')} -->"]  # "--" may not occur in a comment
    return "\n".join(lines) + "\n"


def render_latex(board: Board) -> str:
    from ..report.tables import latex_escape

    lines = [r"\begin{table}[t]", r"\centering", rf"\caption{{{latex_escape(board.title)}}}",
             r"\begin{tabular}{lrrrrrrrlrl}", r"\toprule",
             " & ".join(latex_escape(c) for c in COLUMNS) + r" \\", r"\midrule"]
    for i, r in enumerate(board.rows):
        if r.published and i > 0 and not board.rows[i - 1].published:
            lines.append(r"\midrule")
        lines.append(" & ".join(latex_escape(c).replace(" ± ", r"$\,\pm\,$") for c in _cells(r)) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}", f"% {board.provenance()}"]
    return "\n".join(lines) + "\n"


CSV_HEADER = ["method", "n", *[c for m in METRICS for c in (m, f"{m}_std")], "overall_ci95_low", "overall_ci95_high",
              "val_score", "params", "train_seconds", "published", "source"]


def render_csv(board: Board) -> str:
    def num(v):
        return "" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_HEADER)
    for r in board.rows:
        cells = [num(x) for m in METRICS for x in r.cells[m]]
        ci = list(r.ci95) if r.ci95 else [None, None]
        w.writerow([r.method, num(r.n), *cells, num(ci[0]), num(ci[1]), num(r.val_score),
                    json.dumps(r.params, sort_keys=True) if not r.published else "", num(r.train_seconds),
                    "yes" if r.published else "no", r.citation or r.source])
    return buf.getvalue()


def render_rich(board: Board):
    from rich.markup import escape
    from rich.table import Table

    t = Table(title=board.title, title_style="bold", header_style="bold cyan")
    for c in COLUMNS:
        t.add_column(c, justify="left" if c in ("Method", "Selected hyperparameters", "Source") else "right",
                     style="dim" if c == "Source" else None)
    for i, r in enumerate(board.rows):
        end = not r.published and i + 1 < len(board.rows) and board.rows[i + 1].published
        t.add_row(*(escape(c) for c in _cells(r)), style="italic" if r.published else None, end_section=end)
    return t


def write_board(board: Board, out: Path, plot_best: int = PLOT_BEST) -> dict[str, Path]:
    """The table as md, LaTeX, CSV and JSON, and the per-class plot of the best methods."""
    from ..report import parse_result
    from ..report.plots import plot_per_class

    files = {"md": out / "leaderboard.md", "latex": out / "leaderboard.tex", "csv": out / "leaderboard.csv",
             "json": out / "leaderboard.json"}
    write_text(files["md"], render_markdown(board))
    write_text(files["latex"], render_latex(board))
    write_text(files["csv"], render_csv(board))
    write_json(files["json"], {"format": "lt_bench.leaderboard", "title": board.title, "provenance": board.provenance(),
                               "rows": [asdict(r) for r in board.rows]})
    best = [r.method for r in board.user_rows][:plot_best]
    if best:
        results = [parse_result(rec, board.tunes[m].out / p) for m in best
                   for rec, p in zip(board.tunes[m].records, board.tunes[m].summary["results"])]
        files["plot"] = plot_per_class(results, out / "per_class_accuracy.png")
    return files
