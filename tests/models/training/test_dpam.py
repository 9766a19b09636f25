"""Training DPAM (models/training/dpam.py): the loss goes down; the lin variant freezes the
features and fin needs an init."""

from __future__ import annotations

import pytest
import torch

from pamflow.models import checkpoint as ck
from pamflow.models import registry
from pamflow.models.dpam import DPAM, DPAMConfig
from pamflow.models.training import DPAMTrainConfig, train_dpam
from pamflow.models.training.dpam import JND_TASK

SR = 16000


def test_dpam_training_lowers_the_loss(jnd, tmp_path, loss_on):
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
    after = loss_on(JND_TASK, registry.load_model(summary["model"]), jnd, cfg)
    assert summary["steps"] == 8 * (summary["train_rows"] // 4)
    assert after < before - 0.01, (before, after)


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
