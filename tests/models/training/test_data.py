"""Reading datasets for training (models/training/data.py): resampled rows, the held-out
split by recording, batches that keep sources apart."""

from __future__ import annotations

import torch

from pamflow.models.training.cdpam import CONTRASTIVE_TASK
from pamflow.models.training.data import epoch_batches, held_out, open_rows

SR = 16000


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
