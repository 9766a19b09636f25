"""The shared training loop (models/training/loop.py): a resumed run is bit-identical to an
uninterrupted one; checkpoints, metrics and the plot are written.

The datasets come from tests/models/training/conftest.py."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from pamflow.models import checkpoint as ck
from pamflow.models import registry
from pamflow.models.dpam import DPAM
from pamflow.models.training import DPAMTrainConfig, train_dpam

SCHEDULES = {
    "constant": {"epochs": 50},
    "cosine": {"epochs": 4, "lr_schedule": "cosine", "warmup_steps": 3, "weight_decay": 0.01},
}


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_resume_is_bit_identical(jnd, tmp_path, schedule):
    """N steps straight == N/2 steps, then resume for N/2 more (augmentation, dropout and an
    epoch boundary with its held-out evaluation in between; a learning-rate schedule)."""
    full = DPAMTrainConfig.tiny(max_steps=10, checkpoint_every=3, **SCHEDULES[schedule])
    half = DPAMTrainConfig.tiny(max_steps=5, checkpoint_every=3, **SCHEDULES[schedule])
    a = train_dpam([jnd], tmp_path / "a", full)
    b1 = train_dpam([jnd], tmp_path / "b", half)
    assert b1["steps"] == 5
    b2 = train_dpam([jnd], tmp_path / "b", full, resume=True)
    assert a["steps"] == b2["steps"] == 10
    sa = ck.load_checkpoint(a["model"])["state_dict"]
    sb = ck.load_checkpoint(b2["model"])["state_dict"]
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    losses = [
        [(r["step"], r["split"], r["loss"]) for r in map(json.loads, open(p))]
        for p in (a["metrics"], b2["metrics"])
    ]
    assert losses[0] == losses[1]
    # and a run that differs (another seed) does not match
    other = DPAMTrainConfig.tiny(max_steps=10, seed=1, **SCHEDULES[schedule])
    c = train_dpam([jnd], tmp_path / "c", other)
    sc = ck.load_checkpoint(c["model"])["state_dict"]
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_checkpoint_metrics_and_plot(jnd, tmp_path):
    s = train_dpam([jnd], tmp_path, DPAMTrainConfig.tiny(max_steps=9, epochs=3, log_every=2))
    raw = torch.load(s["checkpoint"], map_location="cpu", weights_only=True)
    assert raw["model"] == "dpam" and raw["pamflow_version"]
    assert raw["config"]["channels"] == list(DPAMTrainConfig.tiny().model.channels)
    extra = raw["extra"]
    assert extra["step"] == 9 and extra["train_config"]["lr"] == 1e-4
    assert extra["train_config"]["model"]["channels"] == raw["config"]["channels"]
    assert {"torch", "numpy", "python", "augment"} <= set(extra["rng"])
    assert extra["optimizer"]["state"]  # Adam moments
    final = ck.load_checkpoint(s["model"])
    assert final["extra"]["complete"] and "optimizer" not in final["extra"]
    assert isinstance(registry.load_model(s["model"]), DPAM)
    records = [json.loads(line) for line in open(s["metrics"])]
    train = [r for r in records if r["split"] == "train"]
    assert [r["step"] for r in train] == [2, 4, 6, 8, 9]
    assert {"step", "epoch", "loss", "accuracy", "lr", "examples_per_s"} <= set(train[0])
    assert any(r["split"] == "eval" for r in records)
    assert open(s["plot"], "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert s["examples_per_s"] > 0 and s["final_eval"]["examples"] == s["eval_rows"]


@pytest.mark.slow  # loader worker processes start (forkserver): a few seconds
def test_loader_workers_read_the_same_batches_across_epochs(jnd, tmp_path):
    """Loader workers persist from epoch to epoch, each epoch handing them its own batches:
    three epochs with two workers train to exactly the weights of the in-process loader."""
    cfg = DPAMTrainConfig.tiny(epochs=3, eval_fraction=0.2)
    inline = train_dpam([jnd], tmp_path / "inline", cfg)
    workers = train_dpam([jnd], tmp_path / "workers", dataclasses.replace(cfg, num_workers=2))
    assert inline["epochs_completed"] == workers["epochs_completed"] == 3
    assert inline["steps"] == workers["steps"] > 3
    sa = ck.load_checkpoint(inline["model"])["state_dict"]
    sb = ck.load_checkpoint(workers["model"])["state_dict"]
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_a_finished_or_started_run_is_not_overwritten_without_resume(jnd, tmp_path):
    from pamflow.models.training.loop import RunFolderError

    cfg = DPAMTrainConfig.tiny(max_steps=2)
    first = train_dpam([jnd], tmp_path / "run", cfg)
    weights = (tmp_path / "run" / "model.pt").read_bytes()
    with pytest.raises(RunFolderError, match=r"run: holds a training run already \(checkpoint"):
        train_dpam([jnd], tmp_path / "run", cfg)
    assert (tmp_path / "run" / "model.pt").read_bytes() == weights  # untouched
    # resuming a run folder that holds nothing says so, then trains
    with pytest.warns(UserWarning, match="no checkpoint.pt to resume from"):
        fresh = train_dpam([jnd], tmp_path / "empty", cfg, resume=True)
    assert fresh["steps"] == first["steps"] == 2
