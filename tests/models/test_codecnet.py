"""codecnet (models/codecnet.py, models/unet.py): shapes, the magnitude scale, the loss of
eqs. 3 and 4 (zero on equal inputs, gradients reaching the waveform, weights), loading as a
frozen loss with config overrides."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import pamflow
from pamflow.models import registry
from pamflow.models.codecnet import (
    SPECTRAL_PATCH,
    CodecNet,
    CodecNetConfig,
    frames_of,
    level_db,
    normalised_magnitude,
)

TINY_TIME = CodecNetConfig.time(layers=3, filters=4)


def _model(cfg: CodecNetConfig, seed: int = 0) -> CodecNet:
    torch.manual_seed(seed)
    model = CodecNet(cfg)
    with torch.no_grad():  # a "trained" net: not the identity it starts as
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model.eval()


def test_paper_sizes_give_table_1_shapes():
    cfg = CodecNetConfig()
    assert frames_of(SPECTRAL_PATCH, cfg) == 128 and cfg.bins == 512  # W x H of Table 1
    model = CodecNet(cfg)
    channels = [m.out_channels for m in model.net.down]
    assert channels == [32, 64, 128, 256, 512]
    assert [m.kernel_size for m in model.net.down] == [(5, 5)] * 5
    assert all(m.stride == (2, 2) for m in model.net.down)
    assert sum(d.p > 0 for d in model.net.drop) == 3  # dropout on the first 3 up layers
    time = CodecNet(CodecNetConfig.time())
    assert [m.out_channels for m in time.net.down] == [32] * 8
    assert {m.kernel_size for m in time.net.down} == {(15,)}
    assert {(m.kernel_size, m.stride) for m in time.net.up} == {((9,), (2,))}


@pytest.mark.parametrize("cfg", [CodecNetConfig.tiny(), TINY_TIME], ids=["spectral", "time"])
def test_prediction_shapes_and_untrained_net_is_the_identity(cfg):
    x = (0.3 * torch.randn(3, 3001)).clamp(-0.95, 0.95)
    fresh = CodecNet(cfg).eval()
    pred = fresh.predict(x)
    spec = fresh.spectrogram(x)
    assert spec.shape == (3, cfg.bins, frames_of(3001, cfg))
    if cfg.kind == "spectral":
        assert pred.shape == spec.shape
        assert torch.allclose(pred, spec, atol=1e-4)  # sigmoid(logit(s) + 0)
    else:
        assert pred.shape == x.shape
        assert torch.allclose(pred, x, atol=1e-5)  # tanh(atanh(x) + 0)
    assert fresh.predicted_spectrogram(x).shape == spec.shape
    trained = _model(cfg)
    assert not torch.allclose(trained.predicted_spectrogram(x), spec, atol=1e-3)


def test_magnitude_scale_is_reachable_and_in_db():
    cfg = CodecNetConfig.tiny()
    window = torch.hann_window(cfg.n_fft)
    t = torch.arange(4096) / cfg.sample_rate
    k = 32  # a sine on a bin: its peak is 0 dB re full scale
    sine = torch.sin(2 * np.pi * k * cfg.sample_rate / cfg.n_fft * t)[None]
    s = normalised_magnitude(sine, cfg, window)
    assert 0.0 <= float(s.min()) and float(s.max()) <= 1.0
    assert abs(float(level_db(s, cfg)[0, k].mean())) < 0.05
    silence = normalised_magnitude(torch.zeros(1, 4096), cfg, window)
    assert float(silence.max()) == 0.0  # the floor maps to 0, not below


@pytest.mark.parametrize("cfg", [CodecNetConfig.tiny(), TINY_TIME], ids=["spectral", "time"])
def test_distance_is_zero_on_equal_inputs_and_grows_with_the_difference(cfg):
    model = _model(cfg)
    x = 0.3 * torch.randn(2, 2500)
    assert torch.equal(model.distance(x, x), torch.zeros(2))
    noise = torch.randn(2, 2500)
    d = [model.distance(x + a * noise, x) for a in (0.01, 0.1, 0.5)]
    assert torch.all(d[0] > 0) and torch.all(d[0] < d[1]) and torch.all(d[1] < d[2])
    assert torch.equal(model(x, x + 0.1 * noise), model.distance(x, x + 0.1 * noise))


@pytest.mark.parametrize("cfg", [CodecNetConfig.tiny(), TINY_TIME], ids=["spectral", "time"])
def test_gradients_reach_the_waveform(cfg):
    model = _model(cfg)
    x = (0.3 * torch.randn(2, 2048)).requires_grad_(True)
    model.distance(x, 0.3 * torch.randn(2, 2048)).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    # the codec terms alone (no waveform L1) still reach the input
    cfg2 = dataclasses.replace(cfg, time_weight=0.0)
    model2 = CodecNet(cfg2).eval()
    model2.load_state_dict(model.state_dict())
    y = (0.3 * torch.randn(2, 2048)).requires_grad_(True)
    model2.distance(y, torch.zeros(2, 2048)).sum().backward()
    assert y.grad is not None and y.grad.abs().sum() > 0


def test_loss_terms_follow_their_weights():
    base = _model(CodecNetConfig.tiny())
    x, y = 0.3 * torch.randn(2, 2048), 0.3 * torch.randn(2, 2048)

    def d(**weights: float) -> torch.Tensor:
        model = CodecNet(dataclasses.replace(base.config, **weights)).eval()
        model.load_state_dict(base.state_dict())
        return model.distance(x, y)

    only_time = d(prediction_weight=0.0, feature_weight=0.0)
    assert torch.allclose(only_time, (x - y).abs().mean(1))
    pred = d(time_weight=0.0, feature_weight=0.0)
    (px, _), (py, _) = base.run(x), base.run(y)  # on the padded whole
    assert torch.allclose(pred, (px - py).abs().flatten(1).mean(1), atol=1e-6)
    feats = d(time_weight=0.0, prediction_weight=0.0)
    assert torch.allclose(only_time + pred + feats, d(), atol=1e-6)
    m = base.config.num_features
    first_only = d(time_weight=0.0, prediction_weight=0.0, layer_weights=(1.0,) + (0.0,) * (m - 1))
    assert torch.all(first_only > 0) and not torch.allclose(first_only, feats)
    with pytest.raises(ValueError, match="layer_weights"):
        CodecNetConfig.tiny(layer_weights=(1.0, 2.0))


def test_loads_as_a_frozen_loss_with_weight_overrides(tmp_path):
    model = _model(CodecNetConfig.tiny())
    path = registry.save_model(tmp_path / "codecnet.pt", model)
    loss = pamflow.models.load(path)
    x, y = 0.3 * torch.randn(2, 2048), 0.3 * torch.randn(2, 2048)
    assert torch.allclose(loss(x, y), model.distance(x, y))
    assert not any(p.requires_grad for p in loss.parameters())
    loss.train()  # stays in eval mode: no dropout, d(x, x) stays 0
    assert not loss.model.training and torch.equal(loss(x, x), torch.zeros(2))
    xp = x.clone().requires_grad_(True)
    loss(xp, y, sample_rate=8000).sum().backward()  # resampled to 16 kHz, differentiably
    assert xp.grad is not None and xp.grad.abs().sum() > 0
    light = pamflow.models.load(path, config={"feature_weight": 0.0, "prediction_weight": 0.0})
    assert torch.allclose(light(x, y), (x - y).abs().mean(1))
    with pytest.raises(ValueError, match="do not fit"):
        pamflow.models.load(path, config={"filters": 8})  # changes weights: refused


def test_bad_configs_are_refused_naming_the_field():
    with pytest.raises(ValueError, match="kernel"):
        CodecNetConfig(kernel=4)
    with pytest.raises(ValueError, match="layers"):
        CodecNetConfig(n_fft=96, layers=5)  # 48 bins do not halve 5 times
    with pytest.raises(ValueError, match="kind"):
        CodecNetConfig(kind="wavelet")  # type: ignore[arg-type]
