"""benchmarks/gpu_check.py --cpu-smoke: every part of the GPU check runs at tiny sizes on the CPU
and writes its Markdown tables and JSON (the CUDA paths themselves need a GPU machine)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


@pytest.mark.slow
def test_gpu_check_cpu_smoke(tmp_path, subprocess_env):
    r = subprocess.run([sys.executable, str(SCRIPT), "--cpu-smoke", "--out", str(tmp_path)],
                       env=subprocess_env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "5/5 parts ok" in r.stdout
    md = (tmp_path / "gpu_check.md").read_text()
    for title in ("### 1. finetune", "### 2. extract", "### 3. heads", "### 4. faiss", "### 5. input"):
        assert title in md
    rec = json.loads((tmp_path / "gpu_check.json").read_text())
    assert {p: v["status"] for p, v in rec["parts"].items()} == dict.fromkeys(
        ("finetune", "extract", "heads", "faiss", "input"), "ok")
    assert [row["decode"] for row in rec["parts"]["input"]["extract"]] == ["pil", "fast", "gpu"]
    assert rec["parts"]["heads"]["rows"][0]["gflops"] > 0
    assert rec["parts"]["extract"]["rows"][0]["extract_images_per_s"] > 0
    # the torch kNN / NCM agree with lt_bench's (faiss) predictions on the same data
    faiss_rows = rec["parts"]["faiss"]["rows"]
    assert faiss_rows and all(row["mismatches"] == 0 for row in faiss_rows)


@pytest.mark.slow
def test_gpu_check_part_failure_is_contained(tmp_path, subprocess_env):
    """A part that fails (here: an unknown model for finetune and extract) is reported with its
    error line; the other parts still run and the exit status says a part failed."""
    r = subprocess.run([sys.executable, str(SCRIPT), "--cpu-smoke", "--parts", "extract,heads",
                        "--model", "no-such-model", "--out", str(tmp_path)],
                       env=subprocess_env, capture_output=True, text=True, timeout=180)
    assert r.returncode == 1, r.stdout[-3000:] + r.stderr[-3000:]
    assert "gpu_check: extract FAILED: LTBenchError: unknown model 'no-such-model'" in r.stdout
    rec = json.loads((tmp_path / "gpu_check.json").read_text())
    assert rec["parts"]["extract"]["status"] == "failed"
    assert rec["parts"]["heads"]["status"] == "ok"
