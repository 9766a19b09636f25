"""The example configs in configs/ stay valid: every spec parses for its recipe, every
training config for its model."""

from __future__ import annotations

from pathlib import Path

import pytest

from pamflow.datasets.base import get_recipe
from pamflow.datasets.spec import load_spec_file
from pamflow.models import registry
from pamflow.models.training import train_config

CONFIGS = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))


def test_there_are_configs():
    assert len(CONFIGS) >= 4


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_parses(path):
    kind = path.name.split("-")[0]
    data = load_spec_file(str(path))
    if kind in registry.names():
        cfg = train_config(kind, data)
        assert all(getattr(cfg, k) == v for k, v in data.items() if k not in ("model", "stages"))
        for stage, stage_cfg in registry.stage_train_configs(kind, data).items():
            assert all(getattr(stage_cfg, k) == v for k, v in data["stages"][stage].items())
    else:
        spec = get_recipe(kind).parse(data)
        plain = spec.model_dump()  # nested fields (a strength range) as plain mappings
        assert all(plain[k] == v for k, v in data.items())
