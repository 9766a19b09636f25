"""The training config (models/training/config.py): learning-rate schedules."""

from __future__ import annotations

import itertools

import pytest

from pamflow.models.training import DPAMTrainConfig


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
