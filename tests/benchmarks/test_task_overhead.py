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


def test_toy_run_prints_both_settings_and_their_ratios():
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "task_overhead.py"), "--tasks", "2",
         "--rounds", "1"],
        capture_output=True, text=True, timeout=300, cwd=ROOT, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = {
        line.split("|")[1].strip(): [float(c) for c in line.split("|")[2:5]]
        for line in proc.stdout.splitlines()
        if line.startswith("| ") and not line.startswith("| settings")
    }
    assert set(rows) == {"defaults", "pamflow", "defaults / pamflow"}
    for a, b, ratio in zip(rows["defaults"], rows["pamflow"], rows["defaults / pamflow"],
                           strict=True):  # fmt: skip
        assert a > 0 and b > 0
        assert ratio == pytest.approx(a / b, rel=0.02, abs=0.0051)
