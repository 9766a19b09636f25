"""Training NORESQA (models/training/noresqa.py): the loss goes down."""

from __future__ import annotations

import numpy as np
import torch

from pamflow.models import registry
from pamflow.models.noresqa import NORESQA
from pamflow.models.training import NORESQATrainConfig, train_noresqa
from pamflow.models.training.noresqa import NMR_TASK


def test_noresqa_training_lowers_the_loss(nmr, tmp_path, loss_on):
    cfg = NORESQATrainConfig.tiny(lr=3e-3, epochs=6, eval_fraction=0.0)
    torch.manual_seed(cfg.seed)
    before = loss_on(NMR_TASK, NORESQA(cfg.model), nmr, cfg)
    s = train_noresqa([nmr], tmp_path, cfg)
    after = loss_on(NMR_TASK, registry.load_model(s["model"]), nmr, cfg)
    assert s["steps"] == 6 * 6
    assert np.isfinite(after) and after < before - 0.1, (before, after)
