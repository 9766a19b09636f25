"""``pamflow train`` shows where the run is: a bar with the step of the total, loss,
examples/s and ETA, drawn from the run's progress.json, and a line per epoch with the
held-out figures; metrics.png of a short run shows its points."""

from __future__ import annotations

import json

import pytest

from pamflow.cli import main

pytestmark = pytest.mark.integration


def test_training_prints_its_progress_and_a_line_per_epoch(
    jnd_local, prefect_server, tmp_path, capsys
):
    data, _ = jnd_local
    config = tmp_path / "train.yaml"
    config.write_text("tiny: true\nbatch_size: 4\nlog_every: 2\n")
    run = tmp_path / "run"
    code = main(["train", "dpam", "--data", data, "--out", str(run), "--config", str(config),
                 "--device", "cpu", "--epochs", "2"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0, err
    status = json.loads((run / "progress.json").read_text())
    total = status["total_steps"]
    assert status["done"] and status["step"] == total > 0 and status["epochs"] == 2
    assert f"step {total}/{total}" in err and "epoch 2/2" in err and "ex/s" in err, err
    epochs = [line for line in err.splitlines() if "held-out" in line]
    assert len(epochs) == 2, err
    assert epochs[0].startswith("dpam-scratch epoch 1/2: held-out loss ")
    assert "accuracy" in epochs[0] and "examples_per_s" not in epochs[0]
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert sum(r["split"] == "eval" for r in records) == 2
    assert (run / "metrics.png").stat().st_size > 10_000
