"""What a resumed run may change (models/training/state.py, restore): a changed config is
refused, fields a checkpoint predates take their defaults."""

from __future__ import annotations

import pytest
import torch

from pamflow.models.training import DPAMTrainConfig, train_dpam


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
