"""The benchmark command in smoke mode: every benchmark runs once, so the scripts cannot rot.

It starts real servers (uvicorn, gunicorn, redis-server) and drives them with
wrk, like the full run; the figures of a one-round run mean nothing, so only
the shape of the report is checked.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # starts real servers, or builds and installs a wheel

ROOT = Path(__file__).resolve().parent.parent


def test_quick_benchmark_run_reports_every_row(tmp_path: Path) -> None:
    output = tmp_path / "RESULTS.md"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--output", str(output)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=480,  # the scaling section starts nine servers, redis-server and PostgreSQL
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    report = output.read_text(encoding="utf-8")
    for backend in ("sqlite", "redis", "postgres"):  # the scaling section: 1 and 2 workers in a quick run
        assert f"| {backend} | 2 |" in report, report
    assert report.startswith("# Benchmark results (quick smoke run")
    rows = re.findall(r"^\| (\d+)[^|]* \|", report, flags=re.MULTILINE)
    assert sorted(set(rows), key=int) == [str(n) for n in range(1, 12)], report
    assert "not available" not in report, report
    for peer in ("standardwebhooks", "svix", "stripe"):
        assert f"vs `{peer}`" in report
    assert_row_3_has_its_limit(report)
    assert "1.00 round trips per operation" in report  # the Redis store: one round trip each
    assert "async default ÷ sync, as shipped" in report  # row 11's comparison across a network too
    # The table printed on stdout is the one written to the file.
    assert report.split("| # |", 1)[1].split("\n\n", 1)[0] in completed.stdout


def test_quick_run_leaves_the_committed_results_alone(tmp_path: Path) -> None:
    results = ROOT / "benchmarks" / "RESULTS.md"
    before = results.read_bytes() if results.exists() else None
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--no-http"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "| 1 |" in completed.stdout
    assert_row_3_has_its_limit(completed.stdout)
    assert (results.read_bytes() if results.exists() else None) == before


def assert_row_3_has_its_limit(table: str) -> None:
    """Row 3's limit is a line of its own right after row 3, reported (no target to meet),
    and row 3's line gives its ratio to it."""
    lines = table.splitlines()
    row_3 = next(index for index, line in enumerate(lines) if line.startswith("| 3 |"))
    assert re.search(r"\| [\d.]+x \([\d.]+x the limit\) \| ≤ 1\.3x row 1 \|", lines[row_3]), lines[row_3]
    limit = lines[row_3 + 1]
    assert limit.startswith("| 3 limit | the limit: "), table
    assert re.search(
        r"\| [\d.]+ µs \| row 1 [\d.]+ µs \| [\d.]+x \| reported: the least row 3 can be \| — \|$", limit
    ), limit
