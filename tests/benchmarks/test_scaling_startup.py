"""``benchmarks/scaling.py`` and ``benchmarks/startup.py`` at toy size: they run the real
builds and commands and print tables whose columns agree with each other."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(script: str, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def _table(out: str, header: str) -> list[list[str]]:
    """The rows of the markdown table whose header line starts with ``header``."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split("|")])
    return rows


def test_scaling_toy_run_reports_cold_warm_and_the_estimate():
    out = _run("scaling.py", "--sizes", "4", "8", "--shard-size", "4")
    rows = _table(out, "| rows | plain CPU ms/row")
    assert [r[0] for r in rows] == ["4", "8"]
    values = [[float(c) for c in r] for r in rows]
    base = values[-1]  # the largest build: what the "vs largest" columns divide by
    for n, cold, cold_rel, warm, warm_rel, once, rss, flow, worker_rss, rss_rel in values:
        assert cold > 0 and warm > 0 and rss > 0 and flow > 0 and worker_rss > 0
        assert cold_rel == pytest.approx(cold / base[1], abs=0.012)
        assert warm_rel == pytest.approx(warm / base[3], abs=0.012)
        assert rss_rel == pytest.approx(worker_rss / base[8], abs=0.012)
        # cold less warm, in seconds, from the same two measurements
        assert once == pytest.approx((cold - warm) * n / 1000, abs=0.06)
    same = _table(out, "| rows | this build | the same rows")
    assert [r[0] for r in same] == ["4", "8"]
    assert same[-1][1] == same[-1][2] and same[-1][3] == "1.00"  # the largest: itself
    for _, own, in_largest, ratio in same:
        assert float(ratio) == pytest.approx(float(own) / float(in_largest), abs=0.012)
    estimate = _table(out, "| workers | estimated efficiency")
    assert [r[0] for r in estimate] == ["16", "64"]
    assert all(0 < float(r[1].rstrip(" %")) <= 100 for r in estimate)


def test_startup_toy_run_times_each_way():
    out = _run("startup.py", "--num-examples", "4", "--rounds", "1")
    rows = _table(out, "| source | run (4 rows)")
    ways = ["--local", "temporary server", "lasting server"]
    assert [(r[0], r[1]) for r in rows] == [("this tree", w) for w in ways]
    local = float(rows[0][2])
    for _, _, fastest, median, over in rows:
        assert float(fastest) == float(median) > 0  # one round: its only time
        assert float(over) == pytest.approx(float(fastest) - local, abs=0.011)
