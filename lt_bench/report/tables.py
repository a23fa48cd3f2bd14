"""Leaderboard tables: the user's results (seeds as mean ± std) beside the published numbers.

One table per dataset. Rows are method x backbone (+ pretrained weights); columns are
overall / many / medium / few top-1 in percent with one decimal, a dash where missing.
Renderers: Markdown, LaTeX (booktabs), CSV, and a rich ``Table`` for the terminal. The
Markdown and LaTeX texts end with a comment line (``provenance_line``: this lt_bench's version
and the environments the results were computed in); CSV has an ``environment`` column instead,
so that it stays plain CSV.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from typing import Any

from .. import __version__
from ..errors import LTBenchError, known
from ..provenance import describe_environment
from .published import METRICS, dataset_title, published_for
from .results import Result, ResultGroup, aggregate

DASH = "-"
COLUMNS = ("Method", "Backbone", "Pretrained", "n", "Overall", "Many", "Medium", "Few", "Source")
FORMATS = ("rich", "md", "latex", "csv")


@dataclass
class Row:
    """One table row; ``cells[metric] = (mean, std)`` with None where missing."""

    method: str
    backbone: str
    pretrained: str
    n: int | None
    cells: dict[str, tuple[float | None, float | None]]
    published: bool = False
    source: str = ""
    citation: str = ""
    seeds: list = field(default_factory=list)
    environments: list[str] = field(default_factory=list)  # distinct ones of the row's results


@dataclass
class LeaderboardTable:
    dataset: str
    title: str
    rows: list[Row]

    @property
    def user_rows(self) -> list[Row]:
        return [r for r in self.rows if not r.published]

    @property
    def published_rows(self) -> list[Row]:
        return [r for r in self.rows if r.published]

    def best(self) -> dict[str, float | None]:
        """Highest mean per metric column over all rows."""
        out = {}
        for m in METRICS:
            vals = [r.cells[m][0] for r in self.rows if r.cells[m][0] is not None]
            out[m] = max(vals) if vals else None
        return out


def _find_keys(obj: Any, keys: tuple[str, ...], depth: int = 0) -> Any:
    """First value of any of ``keys`` in nested dicts (JSON strings are parsed)."""
    if isinstance(obj, str) and obj.startswith("{") and depth < 4:
        try:
            obj = json.loads(obj)
        except json.JSONDecodeError:
            return None
    if not isinstance(obj, dict) or depth > 4:
        return None
    for k in keys:
        if obj.get(k) is not None:
            return obj[k]
    for v in obj.values():
        found = _find_keys(v, keys, depth + 1)
        if found is not None:
            return found
    return None


def _dataset_options(r: Result) -> dict[str, Any]:
    """Dataset options of a result that decide whether published numbers apply (the imbalance
    factor): recorded ones first, else max / min of the training counts."""
    imb = _find_keys({"config": r.config, "raw": {k: r.raw.get(k) for k in ("dataset_options", "cache")}},
                     ("imbalance", "imbalance_factor"))
    if imb is None:
        counts = r.raw.get("train_counts")
        if isinstance(counts, list) and counts and min(counts) > 0:
            imb = round(max(counts) / min(counts))
    return {} if imb is None else {"imbalance": imb}


def _short_citation(citation: str) -> str:
    """``Ma et al. 2021, A Simple ...`` -> ``Ma et al. 2021``."""
    return citation.split(",")[0].strip()


def _environment_text(r: Result) -> str:
    """The result's environment in one line; the bare lt_bench version for a file without one."""
    version = r.raw.get("lt_bench_version")
    return describe_environment(r.environment) or (f"lt_bench {version}" if version else "not recorded")


def _group_row(g: ResultGroup) -> Row:
    r = g.first
    return Row(method=g.label, backbone=r.backbone, pretrained=r.pretrained_label or DASH, n=g.n,
               cells={m: (g.mean(m), g.std(m)) for m in METRICS}, seeds=g.seeds, source="this run",
               environments=list(dict.fromkeys(_environment_text(x) for x in g.results)))


def build_tables(results: list[Result], published: bool = True) -> list[LeaderboardTable]:
    """One table per dataset (order of first appearance), published rows after the user's.

    Published rows are those of the same dataset and a backbone the user's rows use.
    """
    by_dataset: dict[str, list[Result]] = {}
    for r in results:
        by_dataset.setdefault(r.dataset, []).append(r)
    tables = []
    for dataset, rs in by_dataset.items():
        rows = [_group_row(g) for g in aggregate(rs)]
        if published:
            options = {}
            for r in rs:
                options.update(_dataset_options(r))
            backbones = {r.backbone for r in rs}
            for e in published_for(dataset, backbones, options):
                rows.append(Row(method=e.method, backbone=e.backbone, pretrained=e.pretrained, n=None,
                                cells={m: (getattr(e, m), None) for m in METRICS}, published=True,
                                source="published: " + _short_citation(e.citation), citation=e.citation))
        tables.append(LeaderboardTable(dataset=dataset, title=_title(dataset, rs), rows=rows))
    return tables


def _title(dataset: str, rs: list[Result]) -> str:
    pretty = dataset_title(dataset)
    name = f"{pretty} ({dataset})" if pretty != dataset else dataset
    splits = sorted({r.split for r in rs})
    return f"{name}, {'/'.join(splits)} split, top-1 accuracy (%)"


# ---------------------------------------------------------------- cell formatting

def fmt_cell(mean: float | None, std: float | None, pm: str = " ± ") -> str:
    if mean is None:
        return DASH
    return f"{mean:.1f}" if std is None else f"{mean:.1f}{pm}{std:.1f}"


def _is_best(value: float | None, best: float | None) -> bool:
    return value is not None and best is not None and round(value, 1) == round(best, 1)


def _n(row: Row) -> str:
    return DASH if row.n is None else str(row.n)


# ---------------------------------------------------------------- renderers

def provenance_line(tables: list[LeaderboardTable]) -> str:
    """``made by lt_bench X; results computed with <environment> | ...`` (for a trailing comment)."""
    envs = list(dict.fromkeys(e for t in tables for r in t.user_rows for e in r.environments))
    line = f"made by lt_bench {__version__}"
    return line + ("; results computed with " + " | ".join(envs) if envs else "")


def render_markdown(tables: list[LeaderboardTable], bold_best: bool = True) -> str:
    parts = []
    for t in tables:
        best = t.best()
        lines = [f"### {t.title}", "", "| " + " | ".join(COLUMNS) + " |",
                 "|" + "|".join(["---"] * 3 + ["---:"] * 5 + ["---"]) + "|"]
        for r in t.rows:
            cells = []
            for m in METRICS:
                s = fmt_cell(*r.cells[m])
                cells.append(f"**{s}**" if bold_best and _is_best(r.cells[m][0], best[m]) else s)
            lines.append("| " + " | ".join([_md(r.method), _md(r.backbone), _md(r.pretrained), _n(r),
                                            *cells, _md(r.source)]) + " |")
        cites = sorted({r.citation for r in t.published_rows if r.citation})
        if cites:
            lines += [""] + [f"- {_md(c)}" for c in cites]
        parts.append("\n".join(lines))
    # an HTML comment: invisible when rendered; "--" may not occur inside one
    parts.append(f"<!-- {provenance_line(tables).replace('--', '-')} -->")
    return "\n\n".join(parts) + "\n"


def _md(s: str) -> str:
    return str(s).replace("|", "\\|")


_LATEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def latex_escape(s: str) -> str:
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in str(s))


def render_latex(tables: list[LeaderboardTable], bold_best: bool = True) -> str:
    """booktabs tables (needs ``\\usepackage{booktabs}``); published rows below a rule."""
    parts = []
    for t in tables:
        best = t.best()
        lines = [r"\begin{table}[t]", r"\centering", rf"\caption{{{latex_escape(t.title)}}}",
                 rf"\label{{tab:ltbench-{latex_escape(t.dataset).replace(chr(92), '')}}}",
                 r"\begin{tabular}{lllrrrrrl}", r"\toprule",
                 r"Method & Backbone & Pretrained & $n$ & Overall & Many & Medium & Few & Source \\",
                 r"\midrule"]
        for i, r in enumerate(t.rows):
            if r.published and (i == 0 or not t.rows[i - 1].published) and i > 0:
                lines.append(r"\midrule")
            cells = []
            for m in METRICS:
                mean, std = r.cells[m]
                if mean is None:
                    cells.append(DASH)
                    continue
                s = f"{mean:.1f}"
                if bold_best and _is_best(mean, best[m]):
                    s = rf"\textbf{{{s}}}"
                if std is not None:
                    s += rf"$\,\pm\,${std:.1f}"
                cells.append(s)
            lines.append(" & ".join([latex_escape(r.method), latex_escape(r.backbone),
                                     latex_escape(r.pretrained), _n(r), *cells,
                                     latex_escape(r.source)]) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
        parts.append("\n".join(lines))
    parts.append(f"% {provenance_line(tables)}")
    return "\n\n".join(parts) + "\n"


CSV_HEADER = ["dataset", "method", "backbone", "pretrained", "n", "seeds",
              *[c for m in METRICS for c in (m, f"{m}_std")], "published", "source", "environment"]


def render_csv(tables: list[LeaderboardTable]) -> str:
    """One CSV for all tables (a ``dataset`` column instead of headings); dash = missing.

    ``environment``: the environments of the row's results (``" | "`` between distinct ones).
    """
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_HEADER)
    for t in tables:
        for r in t.rows:
            vals = []
            for m in METRICS:
                mean, std = r.cells[m]
                vals += [DASH if mean is None else f"{mean:.1f}", DASH if std is None else f"{std:.1f}"]
            seeds = " ".join(DASH if s is None else str(s) for s in r.seeds) or DASH
            w.writerow([t.dataset, r.method, r.backbone, r.pretrained, _n(r), seeds, *vals,
                        "yes" if r.published else "no", r.citation or r.source,
                        " | ".join(r.environments) or DASH])
    return buf.getvalue()


def render_rich(tables: list[LeaderboardTable], bold_best: bool = True) -> list:
    """A ``rich.table.Table`` per dataset (the caller prints them)."""
    from rich.table import Table

    out = []
    for t in tables:
        best = t.best()
        table = Table(title=t.title, title_style="bold", header_style="bold cyan")
        for c in COLUMNS:
            table.add_column(c, justify="right" if c in ("n", "Overall", "Many", "Medium", "Few") else "left",
                             style="dim" if c == "Source" else None)
        for i, r in enumerate(t.rows):
            cells = []
            for m in METRICS:
                s = fmt_cell(*r.cells[m])
                cells.append(f"[bold green]{s}[/]" if bold_best and _is_best(r.cells[m][0], best[m]) else s)
            end_section = (not r.published and i + 1 < len(t.rows) and t.rows[i + 1].published)
            table.add_row(_rich_escape(r.method), r.backbone, _rich_escape(r.pretrained), _n(r), *cells,
                          _rich_escape(r.source), style="italic" if r.published else None,
                          end_section=end_section)
        out.append(table)
    return out


def _rich_escape(s: str) -> str:
    from rich.markup import escape

    return escape(str(s))


def render(tables: list[LeaderboardTable], fmt: str, bold_best: bool = True):
    """Text for md / latex / csv; a list of rich tables for ``rich``."""
    if fmt == "md":
        return render_markdown(tables, bold_best)
    if fmt == "latex":
        return render_latex(tables, bold_best)
    if fmt == "csv":
        return render_csv(tables)
    if fmt == "rich":
        return render_rich(tables, bold_best)
    raise LTBenchError(f"unknown format {fmt!r}; known: {known(FORMATS)}")
