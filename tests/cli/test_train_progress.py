"""``pamflow train`` shows where the run is: a bar with the step of the total, loss,
examples/s and ETA, drawn from the run's progress.json, and a line per epoch with the
held-out figures; metrics.png of a short run shows its points. Where stderr is no terminal,
plain lines from the start: a full-size CDPAM step on a CPU takes minutes (issue 13)."""

from __future__ import annotations

import io
import json
import time

import pytest
from rich.console import Console

from pamflow.cli import main
from pamflow.cli.progress import training_progress

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
    # stderr is no terminal here: plain lines too, the last one saying the run is done
    plain = [line for line in err.splitlines() if line.startswith("dpam-scratch: step ")]
    assert plain and plain[-1].startswith(f"dpam-scratch: step {total}/{total}, epoch 2/2")
    assert "done" in plain[-1] and sum("done" in line for line in plain) == 1, err
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert sum(r["split"] == "eval" for r in records) == 2
    assert (run / "metrics.png").stat().st_size > 10_000


def test_a_log_shows_the_run_from_its_first_step_on(tmp_path):
    """A live bar draws nothing into a log until it stops: plain lines when the run is first
    seen, then every few seconds while a step takes long, then when it is done."""
    stage = tmp_path / "run" / "contrastive"
    stage.mkdir(parents=True)
    log = io.StringIO()
    console = Console(file=log, force_terminal=False, width=200)

    def write(step: int, done: bool = False) -> None:
        state = {"task": "cdpam-contrastive", "step": step, "total_steps": 4, "epoch": 0,
                 "epochs": 1, "loss": 0.5 if step else None, "done": done}  # fmt: skip
        (stage / "progress.json").write_text(json.dumps(state))

    def lines() -> list[str]:
        return [x for x in log.getvalue().splitlines() if x.startswith("cdpam-contrastive: ")]

    write(0)
    with training_progress(tmp_path / "run", console, every_s=0.05, plain_every_s=0.4):
        deadline = time.monotonic() + 10
        while not lines() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert lines() and lines()[0].startswith("cdpam-contrastive: step 0/4, epoch 1/1")
        write(1)  # a long step: the same state again after plain_every_s
        time.sleep(1.0)
        write(4, done=True)
    steps = [x.split(",")[0] for x in lines()]
    assert steps[0] == "cdpam-contrastive: step 0/4" and steps[-1].endswith("step 4/4")
    assert steps.count("cdpam-contrastive: step 1/4") >= 2, steps  # a heartbeat
    assert "done" in lines()[-1] and sum("done" in x for x in lines()) == 1
