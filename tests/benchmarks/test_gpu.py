"""``make gpu-check`` (benchmarks/gpu.py) runs its code paths on the CPU, and says
"no device" cleanly where CUDA is missing: the check is ready for the next GPU."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu.py"


def run(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def test_no_device_is_reported_cleanly(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the check would measure it")
    proc = run("--out", str(tmp_path / "gpu.md"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("no device")
    assert not (tmp_path / "gpu.md").exists()


@pytest.mark.slow
def test_every_section_runs_on_the_cpu_at_toy_sizes(tmp_path, demo_corpus):
    out = tmp_path / "gpu.md"
    proc = run("--device", "cpu", "--quick", "--data", str(tmp_path / "data"), "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    table = out.read_text()
    assert "failed" not in table, table
    # Griffin-Lim: a rate for each batch size, and the two engines agree on the same seeds
    assert re.search(r"\| 4 \| JND mix \| [\d.]+ \|", table)
    lsd = float(re.search(r"log-spectral distance max ([\d.]+) dB", table).group(1))
    assert lsd < 0.05
    # ceilings, then one row with a positive rate for every model stage
    assert re.search(r"\| loader only \| 2 \| \d+ \|", table)
    for model, stage in [("dpam", "dpam"), ("cdpam", "contrastive"), ("cdpam", "jnd"),
                         ("cdpam", "triplet"), ("noresqa", "noresqa")]:  # fmt: skip
        row = re.search(
            rf"\| {model} \| {stage} \| [\d.e-]+ \| \d+ x [\d.]+ s \| 2 \| (\d+) \|", table
        )
        assert row and int(row.group(1)) > 0, (model, stage, table)
