"""``benchmarks/task_overhead.py`` at toy size: both settings measured on a real cluster
and server, and the ratio row is the quotient of the two rows it prints."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def _table(*args: str) -> dict[str, list[float]]:
    """Run the benchmark with ``args`` (its own Prefect server, none inherited); its table's
    rows by their first cell."""
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "task_overhead.py"), *args],
        capture_output=True, text=True, timeout=300, cwd=ROOT, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {
        line.split("|")[1].strip(): [float(c) for c in line.split("|")[2:-1]]
        for line in proc.stdout.splitlines()
        if line.startswith("| ") and not line.startswith("| settings")
    }


def test_toy_run_prints_both_settings_and_their_ratios():
    rows = _table("--tasks", "2", "--rounds", "1")
    assert set(rows) == {"defaults", "pamflow", "defaults / pamflow"}
    for a, b, ratio in zip(rows["defaults"], rows["pamflow"], rows["defaults / pamflow"],
                           strict=True):  # fmt: skip
        assert a > 0 and b > 0
        assert ratio == pytest.approx(a / b, rel=0.02, abs=0.0051)


def test_an_idle_cluster_with_pamflow_s_settings_costs_its_workers_less_cpu():
    """``--idle``: a warmed, idle 2-worker cluster with Dask's defaults and with pamflow's
    (the tick, system and memory monitors less often, no profiler): each worker spends less
    CPU with pamflow's, and the ratio row is the quotient."""
    rows = _table("--idle", "3", "--rounds", "1")
    assert set(rows) == {"Dask's defaults", "pamflow", "defaults / pamflow"}
    (_, theirs), (_, ours) = rows["Dask's defaults"], rows["pamflow"]
    assert 0 <= ours < theirs
    assert rows["defaults / pamflow"][1] > 1
