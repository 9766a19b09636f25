"""benchmarks/train.py runs its code paths at toy sizes: a row per run with a rate, the
training process's own peak memory, and whether CDPAM's encoder ran checkpointed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_each_run_gets_a_row_from_a_process_of_its_own(tmp_path, demo_corpus):
    out = tmp_path / "train.md"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "train.py"), "--quick", "--devices", "cpu",
           "--runs", "cdpam/jnd", "--steps", "1", "--rows", "12",
           "--data", str(tmp_path / "data"), "--out", str(out)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    table = out.read_text()
    assert "failed" not in table, table
    rows = re.findall(r"^\| cpu \| (\w+) \| (\w+) \| (\d+) \| ([\d.]+) \| ([\w/]+) \| ([\d.e+-]+) "
                      r"\| ([\d.]+) \| ([\d.]+) \|$", table, flags=re.M)  # fmt: skip
    # stage jnd leaves the encoder frozen: nothing to checkpoint
    assert [(r[0], r[1], r[4]) for r in rows] == [("cdpam", "jnd", "off")]
    rate, peak = float(rows[0][5]), float(rows[0][7])
    assert rate > 0 and 0.1 < peak < 4  # its own process: far under the test session's
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["jnd"]  # only what it reads
