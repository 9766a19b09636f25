"""``benchmarks/codecs.py --quick`` prints both tables, with every codec family aligned."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quick_run_prints_both_tables_and_every_family():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "codecs.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "### 1. Codec families" in out and "### 2. Codec recipe pairs" in out
    rows = {line.split("|")[1].strip(): line for line in out.splitlines() if line.startswith("| ")}
    for family in ("mp3", "aac", "opus", "vorbis", "gsm", "amr_nb", "alaw", "packet_loss"):
        cells = [c.strip() for c in rows[family].split("|")]
        assert cells[7] == "0", rows[family]  # no length change
    # transform coders are aligned at every rate
    for family in ("mp3", "aac", "vorbis"):
        assert rows[family].rstrip(" |").endswith("0 / 0 / 0 / 0"), rows[family]
    assert "| lame |" in out and "| ffmpeg |" in out
