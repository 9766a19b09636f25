"""``benchmarks/pedalboard.py --quick`` runs every section and prints its five tables."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "pedalboard.py"


def test_quick_run_prints_every_table():
    pytest.importorskip("pedalboard")
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    for title in ("1. Filters", "2. RIR convolution", "3. Resampling", "4. MP3", "5. GSM"):
        assert f"### {title}" in out, out
    # pamflow's own paths stay sample-aligned, and its MP3 round trip keeps the length
    assert "| pamflow mp3, engine lame (fast-mp3-augment), CBR 16 kb/s | 16 (CBR) |" in out
