"""Training codecnet (models/training/codecnet.py): the loss goes down on tiny pairs, the
run's checkpoint loads as the loss, and the real command line builds codec pairs, trains
and evaluates on held-out recordings (models/codec_eval.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import pamflow
from pamflow.models import registry
from pamflow.models.codec_eval import cutoff_from_powers, evaluate_codec, lowpass
from pamflow.models.codecnet import CodecNet, CodecNetConfig
from pamflow.models.training.codecnet import CODEC_TASK, CodecNetTrainConfig, train_codecnet
from pamflow.models.training.data import held_out
from pamflow.storage import Column, Dataset
from pamflow.testing import write_dataset

SR = 16000
PAMFLOW = os.path.join(os.path.dirname(sys.executable), "pamflow")


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> str:
    """24 'codec' pairs of chords, the coding an ideal low-pass at 3 kHz (a codec whose
    only effect is known), 12 recordings."""
    rows = []
    t = np.arange(SR // 2) / SR
    for i in range(24):
        freqs = 300.0 * (1 + (i % 12)) * np.array([1.0, 2.7, 6.1, 11.3])
        x = sum(0.15 * np.sin(2 * np.pi * f * t + i) for f in freqs if f < 7800)
        x = np.asarray(x, dtype=np.float32)
        y = lowpass(torch.from_numpy(x).double(), SR, 3000.0).float().numpy()
        rows.append({"lossless": x, "coded": y, "codec": "lp", "source_id": f"r{i % 12}"})
    cols = [
        Column("lossless", "audio"),
        Column("coded", "audio"),
        Column("codec", "string"),
        Column("source_id", "string"),
    ]
    return write_dataset(
        tmp_path_factory.mktemp("codec"), cols, rows, recipe="codec", sample_rate=SR
    )


@pytest.mark.parametrize("kind", ["spectral", "time"])
def test_training_lowers_the_loss_and_the_run_loads_as_the_loss(pairs, tmp_path, loss_on, kind):
    model = (
        CodecNetConfig.tiny() if kind == "spectral" else CodecNetConfig.time(layers=3, filters=4)
    )
    lr = 3e-3 if kind == "spectral" else 1e-2
    cfg = CodecNetTrainConfig.tiny(model=model, lr=lr, epochs=5, eval_fraction=0.0)
    torch.manual_seed(cfg.seed)
    before = loss_on(CODEC_TASK, CodecNet(cfg.model), pairs, cfg)
    s = train_codecnet([pairs], tmp_path, cfg)
    trained = registry.load_model(s["model"])
    after = loss_on(CODEC_TASK, trained, pairs, cfg)
    assert s["steps"] == 5 * 6
    assert np.isfinite(after) and after < 0.8 * before, (before, after)
    loss = pamflow.models.load(s["model"])  # weights only, frozen
    x = torch.from_numpy(np.random.default_rng(0).uniform(-0.5, 0.5, (2, 4000)).astype(np.float32))
    assert torch.equal(loss(x, x), torch.zeros(2))
    assert torch.allclose(loss(x, 0.5 * x), trained.distance(x, 0.5 * x))


def test_config_presets_and_keras_decay():
    time = CodecNetTrainConfig.time()
    assert time.model.kind == "time" and time.lr == 1e-4 and time.batch_size == 16
    assert round(time.clip_seconds * SR) == 16384
    assert round(CodecNetTrainConfig().clip_seconds * SR) == 66048
    cfg = CodecNetTrainConfig(lr=1e-3, lr_decay=1e-3)
    assert cfg.lr_at(0, 100) == 1e-3 and cfg.lr_at(1000, 2000) == pytest.approx(5e-4)
    with pytest.raises(ValueError, match="augment"):
        CodecNetTrainConfig(augment=True)
    cfg = registry.train_config("codecnet", {"model": {"kind": "time", "layers": 3}})
    assert cfg.model.kind == "time" and cfg.model.layers == 3


def test_evaluation_finds_a_known_codec(pairs):
    """The pairs' 'codec' is an ideal low-pass at 3 kHz: the evaluation measures that
    cutoff, and its low-pass baseline is then (nearly) the coding itself."""
    model = CodecNet(CodecNetConfig.tiny()).eval()  # untrained: the identity
    args = dict(batch_size=8, device=torch.device("cpu"), clip_seconds=None)
    res = evaluate_codec(model, [pairs], split="all", train_cfg={}, **args)
    assert res["n"] == 24 and res["sources"] == 12
    assert abs(res["cutoff_hz"] - 3000.0) <= 2 * 16000 / 256  # the window leaks a bin
    assert res["lowpass"]["lsd_db"] < 0.2 * res["identity"]["lsd_db"]
    assert res["prediction"]["spectral_l1"] == pytest.approx(
        res["identity"]["spectral_l1"], abs=1e-4
    )
    assert not res["beats_lowpass"]
    none = evaluate_codec(model, [pairs], split="eval", train_cfg={"eval_fraction": 1e-9}, **args)
    assert none["n"] == 0  # no recording held out: nothing scored, no error


def test_cutoff_is_where_the_coding_stays_under_the_lossless():
    lossless = np.ones(100)
    coded = np.concatenate([np.ones(60), np.full(40, 1e-4)])
    coded[70] = 1.0  # a lone bin above the cutoff that the codec kept
    assert cutoff_from_powers(lossless, coded, 10.0) == 710.0
    assert cutoff_from_powers(lossless, lossless, 10.0) == 990.0  # keeps all: the top bin


@pytest.mark.integration
def test_cli_builds_trains_and_evaluates_on_held_out_recordings(tmp_path, prefect_server):
    env = {**os.environ, "PREFECT_API_URL": prefect_server}
    data, run, figs = tmp_path / "codec", tmp_path / "run", tmp_path / "figs"
    spec = tmp_path / "spec.yaml"
    spec.write_text("clip_seconds: 0.5\nsource_kinds: [music]\nseed: 1\n")
    train = tmp_path / "train.yaml"
    train.write_text("tiny: true\nepochs: 2\neval_fraction: 0.35\nclip_seconds: 0.5\n")

    def pamflow_cli(*args: str) -> str:
        done = subprocess.run([PAMFLOW, *args], capture_output=True, text=True, env=env,
                              timeout=300, cwd=tmp_path)  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    pamflow_cli("build", "codec", "--out", str(data), "--local", "--num-examples", "16",
                "--config", str(spec))  # fmt: skip
    pamflow_cli("train", "codecnet", "--data", str(data), "--out", str(run), "--config",
                str(train), "--device", "cpu")  # fmt: skip
    out = pamflow_cli("eval", str(run / "model.pt"), "--data", str(data), "--split", "eval",
                      "--json", "res.json", "--figures", str(figs))  # fmt: skip
    res = json.loads((tmp_path / "res.json").read_text())["codec"]

    sources = Dataset.open(str(data)).to_table(["source_id"]).column("source_id").to_pylist()
    kept = [s for s in sources if held_out(s, 0.35)]
    assert 0 < res["n"] == len(kept) < len(sources)  # the held-out recordings' rows, all
    assert res["sources"] == len(set(kept))
    assert "codec.prediction.lsd_db" in out and "codec.lowpass.spectral_l1" in out
    # the real 16 kb/s MP3: a low-pass near 5.5 kHz, nearer the coding than the input is
    assert 4000 <= res["cutoff_hz"] <= 7000
    for key in ("spectral_l1", "lsd_db"):
        assert res["lowpass"][key] < res["identity"][key]
        assert np.isfinite(res["prediction"][key])
    png = figs / "codecnet-spectral-spectrograms.png"
    assert res["figure"] == str(png) and png.read_bytes()[:4] == b"\x89PNG"
