"""`ltbench report`: result files -> tables (md, LaTeX, CSV, rich), published rows, plots."""

from __future__ import annotations

import csv
import io
import json
import statistics

import numpy as np
import pytest

from _env_helpers import assert_environment
from lt_bench import __version__
from _cli import run_cli
from lt_bench.errors import LTBenchError
from lt_bench.report import (aggregate, build_tables, load_published, load_result, load_results,
                             normalize_backbone, render_csv, render_latex, render_markdown, result_record,
                             write_result)
from lt_bench.report.plots import plot_per_class

COUNTS = [500, 300, 150, 90, 60, 30, 18, 10, 6, 5]  # 3 many, 3 medium, 4 few


def fake_result(path, *, head="ballad", dataset="imagenet_lt", model="ViT-B-16", pretrained="openai",
                 seed=0, overall=70.0, many=80.0, medium=65.0, few=50.0, config=None, counts=COUNTS,
                 per_class=None, drop=()):
    rng = np.random.default_rng(seed)
    per_class = per_class if per_class is not None else \
        np.clip(40 + 10 * np.log(np.asarray(counts)) + rng.normal(0, 5, len(counts)), 0, 100).tolist()
    d = {
        "format": "lt_bench.result", "format_version": 1, "head": head, "kind": "trained",
        "dataset": dataset, "model": model, "split": "test",
        "metrics": {"overall": overall, "many": many, "medium": medium, "few": few, "macro_f1": 60.0},
        "per_class": per_class, "train_counts": list(counts), "classnames": [f"c{i}" for i in range(len(counts))],
        "cache": {"model": model, "pretrained": pretrained, "checkpoint_sha256": "", "dataset": dataset,
                  "num_classes": len(counts), "embed_dim": 512},
        "config": {"alpha": 0.2, "lr": 0.2, "seed": seed, "features": f"/runs/s{seed}/features.h5",
                   **(config or {})},
        "seed": seed, "lt_bench_version": "0.1.0", "created": "2025-01-01T00:00:00+00:00",
    }
    for key in drop:
        if "." in key:
            a, b = key.split(".")
            del d[a][b]
        else:
            del d[key]
    path.write_text(json.dumps(d))
    return path


@pytest.fixture
def seeds3(tmp_path):
    vals = [(70.0, 81.0, 66.0, 52.0), (72.0, 80.0, 67.5, 55.0), (74.5, 82.5, 66.0, 51.0)]
    return [fake_result(tmp_path / f"ballad_s{i}.json", seed=i, overall=o, many=m, medium=md, few=f)
            for i, (o, m, md, f) in enumerate(vals)], vals


def test_normalize_backbone():
    assert normalize_backbone("ViT-B-16") == "ViT-B/16"
    assert normalize_backbone("ViT-L-14") == "ViT-L/14"
    assert normalize_backbone("ViT-B/16") == "ViT-B/16"
    assert normalize_backbone("RN50") == "RN50"
    assert normalize_backbone("ltb-tiny-vit") == "ltb-tiny-vit"


def test_published_data_matches_reference():
    pub = {(e.method, e.backbone, e.dataset): e for e in load_published()}
    b = pub[("BALLAD", "ViT-B/16", "imagenet_lt")]
    assert (b.overall, b.many, b.medium, b.few) == (75.7, 79.1, 74.5, 69.8)
    assert pub[("BALLAD", "ViT-B/16", "places_lt")].few == 48.4
    assert pub[("BALLAD", "ViT-B/16", "cifar100_lt")].overall == 77.8
    assert pub[("BALLAD", "ViT-B/16", "cifar100_lt")].many is None
    assert pub[("CLIP zero-shot", "RN50", "imagenet_lt")].few == 57.6
    assert pub[("VL-LTR", "RN50", "places_lt")].overall == 48.0
    assert pub[("LIFT", "ViT-B/16", "cifar100_lt")].overall == 81.7
    assert pub[("LIFT", "ViT-L/14", "places_lt")].overall == 53.7
    assert all(e.citation for e in pub.values())


def test_seeds_mean_std_and_published_rows_md(seeds3):
    paths, vals = seeds3
    code, out, err = run_cli("report", *map(str, paths), "--format", "md", "--no-bold-best")
    assert code == 0, err
    for j, name in enumerate(("overall", "many", "medium", "few")):
        col = [v[j] for v in vals]
        cell = f"{statistics.fmean(col):.1f} ± {statistics.stdev(col):.1f}"
        assert cell in out, (name, cell, out)
    user = [line for line in out.splitlines() if line.startswith("| ballad ")]
    assert len(user) == 1 and "| 3 |" in user[0] and "ViT-B/16" in user[0]
    # Reference rows for ImageNet-LT at the user's backbone, marked published; not other backbones.
    assert "| BALLAD | ViT-B/16 | openai | - | 75.7 | 79.1 | 74.5 | 69.8 | published" in out
    assert "| CLIP zero-shot | ViT-B/16 |" in out and "68.3 | - | - | -" in out
    assert "58.2" not in out and "ViT-L/14" not in out
    assert out.startswith("### ImageNet-LT (imagenet_lt)")


def test_no_published(seeds3):
    code, out, _ = run_cli("report", *map(str, seeds3[0]), "-f", "md", "--no-published")
    assert code == 0 and "75.7" not in out and "published" not in out


def test_latex_booktabs_escaped(tmp_path):
    p1 = fake_result(tmp_path / "a.json", head="my_head&co", overall=71.0)
    p2 = fake_result(tmp_path / "b.json", head="zeroshot", overall=60.0, many=None)
    code, out, _ = run_cli("report", str(p1), str(p2), "--format", "latex")
    assert code == 0
    for tag in (r"\toprule", r"\midrule", r"\bottomrule", r"\begin{tabular}", r"\end{table}"):
        assert tag in out
    assert r"my\_head\&co" in out and "my_head&co" not in out
    assert r"imagenet\_lt" in out and r"(\%)" in out
    assert r"\textbf{78.3}" in out  # best overall: the published LIFT row
    zs = next(line for line in out.splitlines() if line.startswith("zeroshot"))
    assert " & - & " in zs  # null many-shot -> dash


def test_csv(seeds3, tmp_path):
    out_file = tmp_path / "t.csv"
    code, out, _ = run_cli("report", *map(str, seeds3[0]), "--format", "csv", "--out", str(out_file))
    assert code == 0 and out == ""
    rows = list(csv.DictReader(io.StringIO(out_file.read_text())))
    mine = [r for r in rows if r["published"] == "no"]
    assert len(mine) == 1
    vals = [v[0] for v in seeds3[1]]
    assert mine[0]["n"] == "3" and mine[0]["seeds"] == "0 1 2"
    assert mine[0]["overall"] == f"{statistics.fmean(vals):.1f}"
    assert mine[0]["overall_std"] == f"{statistics.stdev(vals):.1f}"
    ballad = next(r for r in rows if r["method"] == "BALLAD")
    assert ballad["overall"] == "75.7" and ballad["overall_std"] == "-" and ballad["dataset"] == "imagenet_lt"
    assert not list(tmp_path.glob(".t.csv.*"))  # no temp file left behind


def test_rich_default(seeds3):
    code, out, _ = run_cli("report", *map(str, seeds3[0]))
    assert code == 0
    assert "ImageNet-LT" in out and "ballad" in out and "75.7" in out and "± " in out


def test_rich_to_file(seeds3, tmp_path):
    f = tmp_path / "table.txt"
    code, out, _ = run_cli("report", *map(str, seeds3[0]), "--out", str(f))
    assert code == 0 and out == "" and "BALLAD" in f.read_text()
    assert 'out = "' in (tmp_path / "table.txt.config.toml").read_text()  # resolved options beside the output


def test_mixed_datasets_separate_tables(tmp_path):
    a = fake_result(tmp_path / "a.json", dataset="imagenet_lt")
    b = fake_result(tmp_path / "b.json", dataset="places_lt", overall=48.0)
    c = fake_result(tmp_path / "c.json", dataset="cifar100_lt", counts=[500, 200, 100, 50, 20, 5])
    code, out, err = run_cli("report", str(a), str(b), str(c), "-f", "md")
    assert code == 0
    assert out.count("### ") == 3
    assert "### ImageNet-LT" in out and "### Places-LT" in out and "### CIFAR-100-LT" in out
    assert "3 datasets" in err and "one table per dataset" in err
    places = out.split("### Places-LT")[1].split("###")[0]
    assert "49.5" in places and "75.7" not in places
    cifar = out.split("### CIFAR-100-LT")[1]
    assert "77.8" in cifar  # imbalance 500/5 = 100: the published protocol


def test_cifar_other_imbalance_has_no_published_rows(tmp_path):
    r = load_result(fake_result(tmp_path / "a.json", dataset="cifar100_lt", counts=[500, 200, 50]))
    (t,) = build_tables([r])
    assert t.published_rows == []


def test_groups_differ_by_config(tmp_path):
    rs = load_results([fake_result(tmp_path / "a0.json", seed=0), fake_result(tmp_path / "a1.json", seed=1),
                       fake_result(tmp_path / "b.json", seed=0, config={"alpha": 0.5})])
    groups = aggregate(rs)
    assert [g.n for g in groups] == [2, 1]
    assert groups[0].label == "ballad (alpha=0.2)" and groups[1].label == "ballad (alpha=0.5)"
    md = render_markdown(build_tables(rs, published=False))
    assert "ballad (alpha=0.5)" in md


def test_label_names_the_method(tmp_path):
    a = fake_result(tmp_path / "a.json", head="knn", config={"posthoc_tau": 1.0})
    d = json.loads(a.read_text())
    d["label"] = "kNN + LA"
    a.write_text(json.dumps(d))
    b = fake_result(tmp_path / "b.json", head="knn", config={"posthoc_tau": 1.0})  # no label
    d = json.loads(b.read_text())
    d["posthoc_tau"] = 1.0
    b.write_text(json.dumps(d))
    labels = [g.label for g in aggregate(load_results([a, b]))]
    assert labels == ["kNN + LA", "knn + post-hoc LA (tau=1)"]


def test_null_group_and_single_run(tmp_path):
    r = load_result(fake_result(tmp_path / "a.json", few=None))
    (t,) = build_tables([r], published=False)
    assert t.rows[0].cells["few"] == (None, None)
    assert "| - | this run |" in render_markdown([t])
    assert render_csv([t]).splitlines()[1].split(",")[12] == "-"
    assert "\\pm" not in render_latex([t])


def test_plot_png(seeds3, tmp_path):
    import matplotlib.image

    zs = fake_result(tmp_path / "zs.json", head="zeroshot", model="RN50")
    png = tmp_path / "plot.png"
    code, _, err = run_cli("report", *map(str, seeds3[0]), str(zs), "-f", "md", "--plot", str(png))
    assert code == 0, err
    data = png.read_bytes()
    assert len(data) > 0 and data[:8] == b"\x89PNG\r\n\x1a\n"
    img = matplotlib.image.imread(str(png))
    assert img.ndim == 3 and img.shape[0] > 300 and img.shape[1] > 600


def test_plot_needs_per_class(tmp_path):
    r = load_result(fake_result(tmp_path / "a.json", drop=("per_class",)))
    with pytest.raises(LTBenchError, match="per_class"):
        plot_per_class([r], tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("drop,missing", [(("metrics",), "'metrics'"), (("metrics.many",), "'metrics.many'"),
                                          (("head",), "'head'")])
def test_not_a_result_in_process(tmp_path, drop, missing):
    p = fake_result(tmp_path / "r.json", drop=drop)
    with pytest.raises(LTBenchError, match="r.json is not an lt_bench result: missing key " + missing):
        load_result(p)


def test_not_a_result_cli(tmp_path):
    good = fake_result(tmp_path / "good.json")
    bad = tmp_path / "other.json"
    bad.write_text(json.dumps({"accuracy": 0.5}))
    proc = run_cli("report", good, bad)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ltbench: error: ")
    assert "other.json" in lines[0] and "missing key 'head'" in lines[0]
    assert proc.stdout == ""


def test_not_json_and_missing_file(tmp_path):
    p = tmp_path / "x.json"
    p.write_text("not json")
    code, _, err = run_cli("report", str(p))
    assert code == 1 and err.startswith("ltbench: error: ") and "x.json is not valid JSON" in err
    code, _, err = run_cli("report", str(tmp_path / "missing.json"))
    assert code == 1 and "does not exist" in err


def test_newer_format_refused(tmp_path):
    p = fake_result(tmp_path / "r.json")
    d = json.loads(p.read_text())
    d["format_version"] = 99
    p.write_text(json.dumps(d))
    with pytest.raises(LTBenchError, match="newer"):
        load_result(p)


# The keys of a result file (report/results.py's docstring): the format the report reads.
RESULT_KEYS = {"format", "format_version", "head", "label", "kind", "head_path", "dataset", "model", "split",
               "metrics", "per_class", "train_counts", "classnames", "group_sizes", "num_images", "posthoc_tau",
               "cache", "config", "seed", "lt_bench_version", "environment", "created"}


def test_result_record_written_and_read_in_one_module(tmp_path):
    from lt_bench.features import FeatureCache
    from lt_bench.features.synthetic import make_synthetic_cache
    from lt_bench.metrics import evaluate

    cache_path = make_synthetic_cache(tmp_path / "c.h5", num_classes=4, dim=8, max_per_class=20, imbalance=10,
                                      test_per_class=3)
    with FeatureCache(cache_path) as cache:
        x = cache.features("test")
        ev = evaluate(x @ cache.text_classifier.T, cache.labels("test"), cache.train_counts)
        rec = result_record(ev, head="zeroshot", kind="baseline", split="test", cache=cache, config={}, seed=3,
                            device="cpu")
    assert set(rec) == RESULT_KEYS and rec["format"] == "lt_bench.result" and rec["format_version"] == 1
    assert_environment(rec["environment"], "cpu")
    path = write_result(tmp_path / "r" / "zs.json", rec)
    r = load_result(path)
    assert json.loads(path.read_text()) == rec
    assert r.head == "zeroshot" and r.seed == 3 and r.dataset == rec["dataset"] and r.environment == rec["environment"]
    with pytest.raises(LTBenchError, match="missing key 'metrics.many'"):
        write_result(tmp_path / "bad.json", dict(rec, metrics={"overall": 1.0}))
    assert not (tmp_path / "bad.json").exists()


def test_leaderboard_names_versions_and_environment(tmp_path):
    env = {"lt_bench": "0.1.0", "torch": "2.5.1+cu124", "open_clip": "2.29.0", "faiss": "1.9.0", "h5py": "3.12.1",
           "python": "3.11.7", "platform": "Linux", "device": "cuda:0 (NVIDIA H200)"}
    new = fake_result(tmp_path / "a.json", seed=0)
    d = json.loads(new.read_text())
    d["environment"] = env
    new.write_text(json.dumps(d))
    old = fake_result(tmp_path / "b.json", seed=1)  # written before results recorded an environment
    tables = build_tables(load_results([new, old]))
    described = "lt_bench 0.1.0, torch 2.5.1+cu124, open_clip 2.29.0, faiss 1.9.0, h5py 3.12.1, python 3.11.7, " \
                "device cuda:0 (NVIDIA H200)"
    line = f"made by lt_bench {__version__}; results computed with {described} | lt_bench 0.1.0"
    md = render_markdown(tables)
    assert md.endswith(f"\n\n<!-- {line} -->\n") and md.startswith("### ")
    latex = render_latex(tables)
    assert latex.endswith(f"\\end{{table}}\n\n% {line}\n")
    rows = list(csv.DictReader(io.StringIO(render_csv(tables))))
    assert all(len(r) == len(rows[0]) and None not in r for r in rows)  # plain CSV: no ragged comment line
    mine = [r for r in rows if r["published"] == "no"]
    assert [r["environment"] for r in mine] == [f"{described} | lt_bench 0.1.0"]
    assert {r["environment"] for r in rows if r["published"] == "yes"} == {"-"}

