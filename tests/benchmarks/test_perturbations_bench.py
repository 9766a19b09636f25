"""``benchmarks/perturbations.py`` at toy size prints the per-family table, both axis mixes
and their split by family, with a ratio for every family that has a counterpart."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_toy_run_prints_ratios_and_both_axis_mixes():
    pytest.importorskip("audiomentations")
    args = ["--clips", "1", "--axes", "2", "--rounds", "1", "--min-seconds", "0.01"]
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "perturbations.py"), *args]
        + ["--families", "gain,pops,reverb_drr"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    rows = {line.split("|")[1].strip(): line for line in out.splitlines() if line.startswith("| ")}
    for family in ("gain", "reverb_drr"):  # pamflow xRT, audiomentations xRT, their ratio
        ours, theirs, ratio = (float(c) for c in rows[family].split("|")[2:5])
        # the ratio is printed to 2 decimals: 0.45 for 0.4549 is right
        assert ratio == pytest.approx(ours / theirs, rel=0.01, abs=0.0051)
    assert rows["pops"].split("|")[3].strip() == "n/a"  # no counterpart
    assert out.count(", ratio ") == 2  # the default JND axis mix and the shared-family one
    assert "axis mix, families with a counterpart" in out
    assert "| (sampling) |" in out  # pamflow's chains drawn, split out of the mix
