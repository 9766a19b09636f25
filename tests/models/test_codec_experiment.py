"""The codec-loss experiment (models/autoencoder.py, models/codec_experiment.py): Table 2's
autoencoder, the four losses, held-out recordings, the table; and `pamflow experiment`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from pamflow.cli import main
from pamflow.models import registry
from pamflow.models.autoencoder import Autoencoder, AutoencoderConfig
from pamflow.models.codec_experiment import (
    ExperimentConfig,
    loss_functions,
    run_codec_loss_experiment,
    snr_db,
)
from pamflow.models.codecnet import CodecNet, CodecNetConfig
from pamflow.models.metric import load
from pamflow.models.training.data import held_out


def test_autoencoder_is_table_2_with_a_half_size_bottleneck():
    model = Autoencoder()
    assert len(model.code) + len(model.decode) == 8
    assert {m.kernel_size for m in [*model.code, *model.decode]} == {(9,)}
    x = torch.randn(2, 66048)
    code = x[:, None]
    for conv in model.code:
        code = torch.relu(conv(code))[..., ::2]
    assert code.numel() == x.numel() // 2  # 50 % of the input's variables
    with torch.no_grad():
        y = model(x)
    assert y.shape == x.shape and float(y.abs().max()) < 1.0  # tanh
    with pytest.raises(ValueError, match="multiple"):
        model(torch.randn(1, 1000))
    with pytest.raises(ValueError, match="layers"):
        AutoencoderConfig(layers=7)


def test_snr():
    x = np.sin(np.arange(1000) / 5.0)
    assert snr_db(x, x * 0.9) == pytest.approx(20.0)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, str]:
    """Tiny codec networks of both kinds (untrained), saved as a training run saves them:
    with the held-out share in their training config."""
    out = tmp_path_factory.mktemp("nets")
    paths = {}
    for kind, cfg in (("spectral", CodecNetConfig.tiny()), ("time", CodecNetConfig.time(
            layers=3, filters=4))):  # fmt: skip
        torch.manual_seed(0)
        model = CodecNet(cfg)
        with torch.no_grad():  # not the identity they start as
            for p in model.parameters():
                p.add_(0.05 * torch.randn_like(p))
        path = registry.save_model(
            out / f"{kind}.pt", model.eval(), extra={"train_config": {"eval_fraction": 0.35}}
        )
        paths[kind] = str(path)
    return paths


def test_the_four_losses(checkpoints):
    fns = loss_functions(load(checkpoints["spectral"]), load(checkpoints["time"]))
    x = torch.from_numpy(np.random.default_rng(0).uniform(-0.5, 0.5, (2, 4096)).astype("f4"))
    p = 0.5 * x
    values = {name: float(fn(p, x)) for name, fn in fns.items()}
    assert values["A"] == pytest.approx(float((x - p).abs().mean()))
    assert values["B"] > values["A"] and values["C"] > values["A"]  # more terms than A
    assert all(float(fn(x, x)) == 0.0 for fn in fns.values())
    assert len(set(values.values())) == 4


def test_experiment_trains_each_model_and_scores_held_out_recordings(
    checkpoints, tmp_path, demo_corpus
):
    cfg = ExperimentConfig(steps=3, batch_size=2, patch=4096, patch_time=4096, eval_frame=16384)
    res = run_codec_loss_experiment(tmp_path, checkpoints["spectral"], checkpoints["time"], cfg)
    test = [s for s in res["test_recordings"]]
    assert test and all(held_out(s, 0.35) for s in test)
    assert not any(held_out(s, 0.35) for s in res["train_recordings"])
    rows = {r["model"]: r for r in res["models"]}
    assert list(rows) == ["A", "B", "C", "D"]
    assert rows["D"]["patch"] == 4096 and rows["A"]["paper_snr_db"] == 59.3
    for r in rows.values():
        assert r["frames"] == 7 * len(test)  # 8 s recordings in 16,384-sample frames
        assert np.isfinite(r["snr_db"]) and r["lsd_db"] > 0
    assert len({round(r["snr_db"], 6) for r in rows.values()}) == 4  # four different models
    assert json.loads((tmp_path / "results.json").read_text())["models"] == res["models"]
    assert {p.name for p in tmp_path.glob("*.wav")} == {f"model-{m}.wav" for m in "ABCD"}


def test_command_needs_the_checkpoints_of_its_losses(tmp_path, capsys):
    code = main(["experiment", "codec-loss", "--out", str(tmp_path), "--losses", "AC"])
    assert code == 2
    assert "need codecnet checkpoints" in capsys.readouterr().err
