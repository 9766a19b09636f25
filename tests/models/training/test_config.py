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


def test_a_stages_mapping_sets_fields_for_the_stages_it_names(tmp_path):
    from pamflow.models import registry

    values = {"epochs": 2, "temperature": 0.2, "stages": {"contrastive": {"epochs": 8}}}
    base = registry.train_config("cdpam", values)
    assert (base.epochs, base.temperature) == (2, 0.2)
    stages = registry.stage_train_configs("cdpam", values)
    assert list(stages) == ["contrastive"]
    assert (stages["contrastive"].epochs, stages["contrastive"].temperature) == (8, 0.2)
    assert registry.stage_train_configs("cdpam", {"epochs": 2}) == {}

    ran = {}

    def runner(entry, stage, data, out, cfg, init, resume):
        ran[stage.name] = cfg.epochs
        return {}

    data = {"contrastive": ["c"], "jnd": ["j"], "triplet": ["t"]}
    registry.train("cdpam", data, tmp_path, base, stage_cfgs=stages, runner=runner)
    assert ran == {"contrastive": 8, "jnd": 2, "triplet": 2}


@pytest.mark.parametrize(
    ("stages", "message"),
    [
        ({"pretraining": {"epochs": 8}}, "unknown stage"),
        ({"jnd": {"model": {"kernel_size": 3}}}, "cannot differ"),
        ({"jnd": 8}, "mapping"),
        ({"jnd": {"epochs": 0}}, "epochs"),
    ],
)
def test_a_bad_stages_mapping_fails_before_training(stages, message):
    from pamflow.models import registry

    with pytest.raises(ValueError, match=message):
        registry.train_config("cdpam", {"stages": stages})
