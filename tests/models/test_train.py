"""Training: loss goes down for every model and CDPAM stage, resume is bit-identical, the
checkpoints, metrics and plot are written, the held-out split and batches are sound."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from pamflow.models import checkpoint as ck
from pamflow.models.cdpam import CDPAM, CDPAMConfig
from pamflow.models.dpam import DPAM, DPAMConfig
from pamflow.models.noresqa import NORESQA
from pamflow.models.training import (
    CDPAMTrainConfig,
    DPAMTrainConfig,
    NORESQATrainConfig,
    cdpam_contrastive,
    cdpam_jnd,
    cdpam_triplet,
    train_cdpam,
    train_dpam,
    train_noresqa,
)
from pamflow.models.training.cdpam import CONTRASTIVE_TASK, from_stage, triplet_step
from pamflow.models.training.data import epoch_batches, held_out, open_rows
from pamflow.models.training.dpam import JND_TASK
from pamflow.models.training.loop import Task, evaluate_rows
from pamflow.models.training.noresqa import NMR_TASK
from pamflow.pipeline.build import build_local
from pamflow.storage import Column, Schema, finalize_dataset, write_shard

SR = 16000


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Two shared cores: one torch thread is ~10x faster than two fighting other jobs."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def write_dataset(out: Path, recipe: str, columns: list[Column], rows: list[dict]) -> str:
    """A one-shard dataset of ``rows`` (the base columns filled in)."""
    full = [
        {"index": i, "example_id": f"{recipe}-{i}", "seed": i, "params": {}, **r}
        for i, r in enumerate(rows)
    ]
    write_shard(str(out), 0, full, Schema(columns), sample_rate=SR, row_group_size=8)
    finalize_dataset(str(out), recipe=recipe, spec={}, seed=0, num_shards=1)
    return str(out)


def tone(freq: float, n: int = SR // 2) -> np.ndarray:
    return (0.3 * np.sin(2 * np.pi * freq * np.arange(n) / SR)).astype(np.float32)


def noisy(x: np.ndarray, snr_db: float, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).standard_normal(len(x)).astype(np.float32)
    noise *= np.sqrt(np.mean(x**2) / np.mean(noise**2) / 10 ** (snr_db / 10))
    return (x + noise).astype(np.float32)


@pytest.fixture(scope="module")
def jnd(demo_corpus, tmp_path_factory) -> str:
    out = str(tmp_path_factory.mktemp("jnd"))
    spec = {
        "num_examples": 32,
        "shard_size": 16,
        "clip_seconds": 0.5,
        "queries_per_sequence": 4,
        "seed": 3,
    }
    build_local("jnd", spec, out)
    return out


@pytest.fixture(scope="module")
def triplets(tmp_path_factory) -> str:
    rows = []
    for i in range(24):
        ref = tone(200 + 40 * i)
        la, lb = (14.0, 18.0) if i % 2 else (18.0, 14.0)  # SNRs: the noisier one is farther
        rows.append(
            {
                "reference": ref,
                "a": noisy(ref, la, i),
                "b": noisy(ref, lb, 100 + i),
                "label": 1 if la < lb else 0,
                "agreement": 0.5 + 0.02 * i,
                "strength_a": 100 - la,
                "strength_b": 100 - lb,
                "source_id": f"src-{i}",
            }
        )
    cols = [
        Column("reference", "audio"),
        Column("a", "audio"),
        Column("b", "audio"),
        Column("label", "int64", True),
        Column("agreement", "float64", True),
        Column("strength_a", "float64"),
        Column("strength_b", "float64"),
        Column("source_id", "string"),
    ]
    return write_dataset(tmp_path_factory.mktemp("triplet"), "triplet", cols, rows)


@pytest.fixture(scope="module")
def contrastive(tmp_path_factory) -> str:
    rows = []
    for i in range(24):
        s1, s2 = i % 12, (i + 5) % 12  # 12 sources ("recordings"): tones
        if i % 2:  # acoustic: the same noise level, different content
            snr = 3.0 + 4 * (i % 5)
            pair = (noisy(tone(150 + 60 * s1), snr, i), noisy(tone(150 + 60 * s2), snr, 50 + i))
            kind, src = "acoustic", (s1, s2)
        else:  # content: the same tone, different noise levels
            pair = (noisy(tone(150 + 60 * s1), 5.0, i), noisy(tone(150 + 60 * s1), 30.0, 50 + i))
            kind, src = "content", (s1, s1)
        rows.append(
            {
                "anchor": pair[0],
                "positive": pair[1],
                "pair_kind": kind,
                "anchor_source_id": f"s{src[0]}",
                "positive_source_id": f"s{src[1]}",
            }
        )
    cols = [
        Column("anchor", "audio"),
        Column("positive", "audio"),
        Column("pair_kind", "string"),
        Column("anchor_source_id", "string"),
        Column("positive_source_id", "string"),
    ]
    return write_dataset(tmp_path_factory.mktemp("contrastive"), "contrastive", cols, rows)


@pytest.fixture(scope="module")
def nmr(tmp_path_factory) -> str:
    rows = []
    for i in range(24):
        ca, cb = tone(180 + 30 * i), tone(900 - 25 * i)  # non-matching contents
        sa, sb = 2.0 + 3 * (i % 7), 20.0 - 2 * (i % 5)
        rows.append(
            {
                "a": noisy(ca, sa, i),
                "b": noisy(cb, sb, 60 + i),
                "a_clean": ca,
                "b_clean": cb,
                "a_snr": sa if i % 3 else None,
                "b_snr": sb,
                "a_sisdr": sa,
                "b_sisdr": sb,
                "preference": 0 if sa > sb else 1,
                "source_id": f"n{i}",
            }
        )
    cols = [Column(c, "audio") for c in ("a", "b", "a_clean", "b_clean")] + [
        Column("a_snr", "float64", True),
        Column("b_snr", "float64", True),
        Column("a_sisdr", "float64"),
        Column("b_sisdr", "float64"),
        Column("preference", "int64"),
        Column("source_id", "string"),
    ]
    return write_dataset(tmp_path_factory.mktemp("nmr"), "nmr", cols, rows)


def loss_on(task: Task, model, data: str, cfg) -> float:
    """Mean loss of ``task`` over all of ``data`` (eval mode, centred crops)."""
    rows = open_rows(
        [data],
        audio=task.audio,
        columns=task.columns,
        sample_rate=SR,
        keep=task.keep,
        group_columns=task.group_columns,
    )
    return evaluate_rows(task, model, rows, cfg)["loss"]


def epoch_losses(metrics: str, epoch: int) -> float:
    """Mean training loss of one epoch, from a run's metrics.jsonl (logged every step)."""
    records = [json.loads(line) for line in open(metrics)]
    return float(
        np.mean([r["loss"] for r in records if r["split"] == "train" and r["epoch"] == epoch])
    )


# -- DPAM --------------------------------------------------------------------------------------


def test_dpam_training_lowers_the_loss(jnd, tmp_path):
    cfg = DPAMTrainConfig.tiny(
        lr=1e-2,
        epochs=8,
        augment=False,
        eval_fraction=0.0,
        model=DPAMConfig.tiny(sample_rate=SR, dropout=0.0),
    )
    torch.manual_seed(cfg.seed)
    before = loss_on(JND_TASK, DPAM(cfg.model), jnd, cfg)
    summary = train_dpam([jnd], tmp_path, cfg)
    after = loss_on(JND_TASK, ck.load(summary["model"]), jnd, cfg)
    assert summary["steps"] == 8 * (summary["train_rows"] // 4)
    assert after < before - 0.01, (before, after)


def test_dpam_resampled_input_and_held_out_split(jnd):
    """The dataset is at 16 kHz, DPAM at 22,050 Hz: rows come resampled; train and
    held-out rows share no recording and together are every row."""
    args = dict(
        audio=("reference", "perturbed"),
        columns=("label", "source_id"),
        sample_rate=22050,
        eval_fraction=0.3,
    )
    train = open_rows([jnd], split="train", **args)
    held = open_rows([jnd], split="eval", **args)
    item = train[0]
    assert item["reference"].shape[0] == round(0.5 * 22050)
    assert item["reference"].dtype == torch.float32
    src_train = {train[i]["source_id"] for i in range(len(train))}
    src_held = {held[i]["source_id"] for i in range(len(held))}
    assert src_train and src_held and not src_train & src_held
    assert sorted([*train.rows, *held.rows]) == list(range(32))
    assert all(held_out(s, 0.3) for s in src_held)


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


def test_resume_refuses_a_changed_config(jnd, tmp_path):
    train_dpam([jnd], tmp_path, DPAMTrainConfig.tiny(max_steps=2))
    with pytest.raises(ValueError, match="lr"):
        train_dpam([jnd], tmp_path, DPAMTrainConfig.tiny(max_steps=4, lr=1e-3), resume=True)
    # more epochs are fine at a constant rate, not under a schedule laid over the epochs
    train_dpam([jnd], tmp_path, DPAMTrainConfig.tiny(max_steps=3, epochs=2), resume=True)
    cosine = DPAMTrainConfig.tiny(max_steps=2, epochs=2, lr_schedule="cosine")
    train_dpam([jnd], tmp_path / "cos", cosine)
    with pytest.raises(ValueError, match="epochs"):
        longer = DPAMTrainConfig.tiny(max_steps=3, epochs=3, lr_schedule="cosine")
        train_dpam([jnd], tmp_path / "cos", longer, resume=True)


def test_checkpoints_from_before_a_config_field_resume_with_its_default(jnd, tmp_path):
    s = train_dpam([jnd], tmp_path, DPAMTrainConfig.tiny(max_steps=2))
    raw = torch.load(s["checkpoint"], map_location="cpu", weights_only=True)
    for name in ("lr_schedule", "warmup_steps", "lr_final", "weight_decay"):
        del raw["extra"]["train_config"][name]
    torch.save(raw, s["checkpoint"])
    assert train_dpam([jnd], tmp_path, DPAMTrainConfig.tiny(max_steps=3), resume=True)["steps"] == 3


def test_learning_rate_schedules():
    cos = DPAMTrainConfig.tiny(lr=1e-3, lr_schedule="cosine", warmup_steps=4, lr_final=0.1)
    assert [cos.lr_at(s, 104) for s in range(4)] == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3])
    assert cos.lr_at(4, 104) == pytest.approx(1e-3)
    assert cos.lr_at(54, 104) == pytest.approx(0.55e-3)  # halfway: midway to the floor
    assert cos.lr_at(104, 104) == pytest.approx(1e-4)
    rates = [cos.lr_at(s, 104) for s in range(4, 105)]
    assert all(a >= b for a, b in itertools.pairwise(rates))
    assert DPAMTrainConfig.tiny(lr=1e-3).lr_at(50, 100) == 1e-3
    with pytest.raises(ValueError, match="lr_schedule"):
        DPAMTrainConfig.tiny(lr_schedule="step")


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
    assert isinstance(ck.load(s["model"]), DPAM)
    records = [json.loads(line) for line in open(s["metrics"])]
    train = [r for r in records if r["split"] == "train"]
    assert [r["step"] for r in train] == [2, 4, 6, 8, 9]
    assert {"step", "epoch", "loss", "accuracy", "lr", "examples_per_s"} <= set(train[0])
    assert any(r["split"] == "eval" for r in records)
    assert open(s["plot"], "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert s["examples_per_s"] > 0 and s["final_eval"]["examples"] == s["eval_rows"]


def test_dpam_lin_freezes_features_and_fin_needs_init(jnd, tmp_path):
    base = train_dpam([jnd], tmp_path / "base", DPAMTrainConfig.tiny(max_steps=2))
    lin = train_dpam(
        [jnd],
        tmp_path / "lin",
        DPAMTrainConfig.tiny(max_steps=3, variant="lin", init=base["model"]),
    )
    s0 = ck.load_checkpoint(base["model"])["state_dict"]
    s1 = ck.load_checkpoint(lin["model"])["state_dict"]
    feats = [k for k in s0 if k.startswith("features.")]
    assert feats and all(torch.equal(s0[k], s1[k]) for k in feats)  # incl. batch-norm stats
    assert not torch.equal(s0["weights.0"], s1["weights.0"])
    with pytest.raises(ValueError, match="fin"):
        DPAMTrainConfig.tiny(variant="fin")


# -- CDPAM -------------------------------------------------------------------------------------


def test_cdpam_stages(contrastive, jnd, triplets, tmp_path):
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
        ck.load(c["model"]),
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


def test_contrastive_batches_keep_sources_apart(contrastive):
    rows = open_rows(
        [contrastive],
        audio=("anchor", "positive"),
        columns=("pair_kind",),
        sample_rate=SR,
        group_columns=CONTRASTIVE_TASK.group_columns,
    )
    batches = epoch_batches(len(rows), 4, seed=0, epoch=0, groups=rows.groups)
    assert len(batches) >= 4
    for batch in batches:
        values = [v for i, _ in batch for v in set(rows.groups[i])]
        assert len(values) == len(set(values)), batch
    assert batches == epoch_batches(len(rows), 4, seed=0, epoch=0, groups=rows.groups)
    assert batches != epoch_batches(len(rows), 4, seed=0, epoch=1, groups=rows.groups)


def test_triplet_min_agreement_filters_rows(triplets, tmp_path):
    cfg = CDPAMTrainConfig.tiny(max_steps=1, eval_fraction=0.0, min_agreement=0.8)
    torch.manual_seed(0)
    init = ck.save(tmp_path / "init.pt", CDPAM(cfg.model))
    s = cdpam_triplet([triplets], tmp_path / "run", init, cfg)
    assert s["train_rows"] == sum(0.5 + 0.02 * i >= 0.8 for i in range(24))  # 9 rows


# -- NORESQA -----------------------------------------------------------------------------------


def test_noresqa_training_lowers_the_loss(nmr, tmp_path):
    cfg = NORESQATrainConfig.tiny(lr=3e-3, epochs=6, eval_fraction=0.0)
    torch.manual_seed(cfg.seed)
    before = loss_on(NMR_TASK, NORESQA(cfg.model), nmr, cfg)
    s = train_noresqa([nmr], tmp_path, cfg)
    after = loss_on(NMR_TASK, ck.load(s["model"]), nmr, cfg)
    assert s["steps"] == 6 * 6
    assert np.isfinite(after) and after < before - 0.1, (before, after)
