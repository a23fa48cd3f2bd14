"""benchmarks/report.py: one BENCHMARKS.md page from several runs' pytest-benchmark JSON."""

from __future__ import annotations

import json

from benchmarks import report


def _bench(table: str, row: str, ratio: float) -> dict:
    return {"name": row, "group": None, "stats": {"median": 1.0, "rounds": 1},
            "extra_info": {"table": table, "row": row, "ratio": ratio}}


def test_a_page_from_several_runs_takes_each_row_from_the_last_run_that_has_it(tmp_path, monkeypatch):
    old = {"command": "`python -m benchmarks.report`", "datetime": "2026-01-01T00:00:00",
           "benchmarks": [_bench("A", "a1", 1.0), _bench("A", "a2", 2.0), _bench("B", "b1", 3.0)]}
    new = {"command": "`python -m benchmarks.report -k \"A\"`", "datetime": "2026-02-02T00:00:00",
           "benchmarks": [_bench("A", "a1 again", 4.0)]}
    data = report.merge_runs([old, new])
    rows = {(b["extra_info"]["table"], b["extra_info"]["row"]): b["extra_info"]["run"] for b in data["benchmarks"]}
    assert rows == {("A", "a1"): 1, ("A", "a2"): 1, ("B", "b1"): 1, ("A", "a1 again"): 2}
    new["benchmarks"].append(_bench("B", "b1", 5.0))  # a row measured again replaces the old one
    data = report.merge_runs([old, new])
    assert [b["extra_info"]["ratio"] for b in data["benchmarks"] if b["extra_info"]["row"] == "b1"] == [5.0]
    page = report.render(report.merge_runs([old, new]), "unused")
    assert "1. `python -m benchmarks.report` on 2026-01-01 00:00:00 UTC" in page
    assert "2026-02-02 00:00:00 UTC" in page and page.index("## A") < page.index("## B")

    paths = []
    for i, run in enumerate((old, new)):
        paths.append(tmp_path / f"{i}.json")
        paths[-1].write_text(json.dumps(run))
    monkeypatch.setattr(report, "ROOT", tmp_path)
    monkeypatch.setattr(report, "RESULTS", tmp_path / "results")
    assert report.main(["--from-json", str(paths[0]), "--from-json", str(paths[1])]) == 0
    assert "a1 again" in (tmp_path / "BENCHMARKS.md").read_text()
