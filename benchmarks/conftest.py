"""Shared benchmark settings: quick mode (CI) and the offline switch."""

import os

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"

QUICK = os.environ.get("LTBENCH_BENCH_QUICK", "") not in ("", "0")


@pytest.fixture(scope="session")
def quick() -> bool:
    """True in quick mode (LTBENCH_BENCH_QUICK=1): small sizes, few rounds."""
    return QUICK
