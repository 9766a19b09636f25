"""Training CDPAM (models/training/cdpam.py): the three stages chained, each lowering its
loss; the triplet stage's agreement filter; the encoder checkpointed where it trains on
the CPU."""

from __future__ import annotations

import json
import os

import numpy as np
import torch

from pamflow.models import checkpoint as ck
from pamflow.models import lean, registry
from pamflow.models.cdpam import CDPAM, CDPAMConfig
from pamflow.models.training import (
    CDPAMTrainConfig,
    cdpam_contrastive,
    cdpam_jnd,
    cdpam_triplet,
    train_cdpam,
)
from pamflow.models.training.cdpam import from_stage, triplet_step
from pamflow.models.training.loop import Task

SR = 16000


def epoch_losses(metrics: str, epoch: int) -> float:
    """Mean training loss of one epoch, from a run's metrics.jsonl (logged every step)."""
    records = [json.loads(line) for line in open(metrics)]
    return float(
        np.mean([r["loss"] for r in records if r["split"] == "train" and r["epoch"] == epoch])
    )


def test_cdpam_stages(contrastive, jnd, triplets, tmp_path, loss_on):
    cfg = CDPAMTrainConfig.tiny(
        lr=3e-3, epochs=6, eval_fraction=0.0, augment=False, model=CDPAMConfig.tiny(sample_rate=SR)
    )
    # a: contrastive. Judged on the training-mode losses: with batches of 4, the tiny
    # encoder's eval-mode batch-norm statistics blur the embeddings (held-out loss ~ ln 3)
    a = cdpam_contrastive([contrastive], tmp_path / "contrastive", cfg)
    first, last = epoch_losses(a["metrics"], 0), epoch_losses(a["metrics"], cfg.epochs - 1)
    assert last < first - 0.2, (first, last)
    # b: JND from stage a; the encoder stays as stage a left it
    b = cdpam_jnd([jnd], tmp_path / "jnd", a["model"], cfg)
    sa, sb = (ck.load_checkpoint(s["model"])["state_dict"] for s in (a, b))
    enc = [k for k in sa if k.startswith("encoder.")]
    assert all(torch.equal(sa[k], sb[k]) for k in enc)
    assert not torch.equal(sa["distance_net.weights.0"], sb["distance_net.weights.0"])
    # c: triplets from stage b: the margin ranking loss goes down
    before = loss_on(
        Task("t", "cdpam", ("reference", "a", "b"), ("label",), triplet_step),
        from_stage(b["model"], cfg),
        triplets,
        cfg,
    )
    c = cdpam_triplet([triplets], tmp_path / "triplet", b["model"], cfg)
    after = loss_on(
        Task("t", "cdpam", ("reference", "a", "b"), ("label",), triplet_step),
        registry.load_model(c["model"]),
        triplets,
        cfg,
    )
    assert after < 0.8 * before, (before, after)
    assert ck.load_checkpoint(c["model"])["extra"]["meta"]["init"] == b["model"]
    # the chain skips finished stages (their model.pt exists) and returns the last model
    stamp = os.stat(c["model"]).st_mtime_ns
    chained = train_cdpam([contrastive], [jnd], [triplets], tmp_path, cfg)
    assert chained["model"] == c["model"] and os.stat(c["model"]).st_mtime_ns == stamp
    assert chained["triplet"]["steps"] == c["steps"]


def test_triplet_min_agreement_filters_rows(triplets, tmp_path):
    cfg = CDPAMTrainConfig.tiny(max_steps=1, eval_fraction=0.0, min_agreement=0.8)
    torch.manual_seed(0)
    init = registry.save_model(tmp_path / "init.pt", CDPAM(cfg.model))
    s = cdpam_triplet([triplets], tmp_path / "run", init, cfg)
    assert s["train_rows"] == sum(0.5 + 0.02 * i >= 0.8 for i in range(24))  # 9 rows


def test_checkpointing_auto_is_on_where_the_encoder_trains_at_full_size_on_the_cpu():
    full = CDPAMTrainConfig(device="cpu")  # batch 16 of 2.5 s: 26 GiB kept without it
    assert full.checkpointing == "auto" and full.checkpoints(True, 2)
    assert not full.checkpoints(False, 2)  # a frozen encoder keeps nothing
    assert not CDPAMTrainConfig(device="cpu", checkpointing="off").checkpoints(True, 2)
    small = CDPAMTrainConfig.tiny(device="cpu")  # a few MiB: not worth the recomputation
    assert not small.checkpoints(True, 3)
    assert CDPAMTrainConfig.tiny(checkpointing="on").checkpoints(True, 3)
    assert "checkpointing" in full.resumable_changes()  # loss and gradients do not change


def test_training_takes_the_checkpointed_encoder_when_set(contrastive, jnd, tmp_path, monkeypatch):
    calls: list[bool] = []
    encode = lean.encode
    monkeypatch.setattr(lean, "encode", lambda enc, h: calls.append(True) or encode(enc, h))
    cfg = CDPAMTrainConfig.tiny(max_steps=1, eval_fraction=0.0, checkpointing="on")
    a = cdpam_contrastive([contrastive], tmp_path / "a", cfg)
    assert calls and ck.load_checkpoint(a["model"])["extra"]["meta"]["checkpointing"] is True
    calls.clear()
    off = CDPAMTrainConfig.tiny(max_steps=1, eval_fraction=0.0, checkpointing="off")
    cdpam_contrastive([contrastive], tmp_path / "off", off)
    assert not calls
    # stage jnd with its encoder frozen: nothing to checkpoint; fine-tuning it: checkpointed
    b = cdpam_jnd([jnd], tmp_path / "b", a["model"], cfg)
    assert not calls and ck.load_checkpoint(b["model"])["extra"]["meta"]["checkpointing"] is False
    tuned = CDPAMTrainConfig.tiny(train_encoder=True, checkpointing="on")
    assert from_stage(a["model"], tuned).encoder.checkpointing
