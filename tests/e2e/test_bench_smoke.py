"""The benchmark suite runs end to end and prints its summary lines (no timing is asserted)."""

from __future__ import annotations

import platform
import re
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
SUMMARY = re.compile(r"^(?P<name>[a-z][a-z0-9_]*) (?P<value>-?\d+(\.\d+)?|nan) (?P<unit>\S+) ratio=(-?\d+\.\d+|nan)$")


def test_a_tiny_bench_prints_one_summary_line_per_figure(tmp_path: Path) -> None:
    figures_file = tmp_path / "figures.json"
    tiny = ["--quick", "--only", "broker,store", "--messages", "30", "--warmup", "10", "--store-messages", "30"]
    tiny += ["--json", str(figures_file)]
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
    written = orjson.loads(figures_file.read_bytes())
    assert [f["name"] for f in written["figures"]] == names
    # what the figures depend on besides the code, so runs on different machines can be compared
    assert written["environment"]["packages"]["fastapi"]
    assert written["environment"]["python"] == platform.python_version()
