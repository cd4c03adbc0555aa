"""The benchmark suite runs end to end and prints its summary lines (no timing is asserted)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
SUMMARY = re.compile(r"^(?P<name>[a-z][a-z0-9_]*) (?P<value>-?\d+(\.\d+)?|nan) (?P<unit>\S+) ratio=(-?\d+\.\d+|nan)$")


def test_a_tiny_bench_prints_one_summary_line_per_figure() -> None:
    tiny = ["--quick", "--only", "broker,store", "--messages", "30", "--warmup", "10", "--store-messages", "30"]
    result = subprocess.run(
        [sys.executable, "-m", "bench", *tiny],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert all(SUMMARY.match(line) for line in lines), lines
    names = [SUMMARY.match(line)["name"] for line in lines]  # type: ignore[index]
    assert names == ["broker_path", "broker_ceiling", "store_sqlite", "store_postgresql"]
