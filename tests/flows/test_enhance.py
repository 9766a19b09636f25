"""The adaptive-EQ flow on a real (temporary) Prefect server: one task per initialisation."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from pamflow.models import registry
from pamflow.models.scorer import Scorer, ScorerConfig

SR = 16000
pytestmark = pytest.mark.integration


def test_enhance_flow_runs_a_task_per_initialisation(prefect_server, tmp_path):
    from pamflow.flows.enhance import enhance_flow

    torch.manual_seed(0)
    ckpt = registry.save_model(tmp_path / "scorer.pt", Scorer(ScorerConfig.tiny()).eval())
    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        sf.write(folder / f"c{i}.wav", (0.05 * rng.standard_normal(SR // 2)).astype("float32"), SR)
    out = tmp_path / "out"
    result = enhance_flow(str(ckpt), str(folder), str(out), {"steps": 3}, inits=["block", "random"])
    assert set(result["summary"]) == {"block", "random"} and len(result["rows"]) == 4
    assert all(result["summary"][m]["n"] == 2 for m in ("block", "random"))
    assert sorted(p.name for p in (out / "random").glob("*.wav")) == ["c0.wav", "c1.wav"]
    with pytest.raises(ValueError, match="EnhanceConfig"):
        enhance_flow(str(ckpt), str(folder), str(out), {"steps": -1})
