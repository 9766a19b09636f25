"""The quality scorer (paper 004): front end, shapes, gradients, saliency, checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import pamflow.models
from pamflow.models import registry
from pamflow.models.scorer import Scorer, ScorerConfig
from pamflow.testing import sine

SR = 16000


@pytest.fixture
def model() -> Scorer:
    torch.manual_seed(0)
    return Scorer(ScorerConfig.tiny()).eval()


def test_front_end_is_the_papers(model):
    cfg = ScorerConfig()
    assert (cfg.n_fft, cfg.win_length, cfg.hop_length, cfg.sample_rate) == (512, 480, 160, SR)
    x = torch.from_numpy(sine(1000.0, 1.0, SR, amplitude=1.0)[None])
    spec = model.spectrogram(x)
    assert spec.shape == (1, 257, 1 + SR // 160)  # 257 bins, a frame every 10 ms
    peak_bin = int(spec[0, :, 50].argmax())
    assert peak_bin == round(1000 / (SR / 512))
    # a full-scale sine peaks at magnitude ~1 (ln 1 = 0); the floor is -100 dB
    assert abs(float(spec[0, peak_bin, 50])) < 0.2
    silent = model.spectrogram(torch.zeros(1, SR))
    assert torch.allclose(silent, torch.full_like(silent, np.log(1e-5)))


def test_shapes_scores_and_distance(model):
    x = torch.randn(3, SR // 2) * 0.1
    s = model.score(x)
    assert s.shape == (3,) and bool(((s > 0) & (s < 1)).all())
    assert model(x.unsqueeze(1)).shape == (3,)  # [B, 1, T] too
    d = model.distance(x, x.flip(0))
    assert d.shape == (3,) and torch.allclose(d, (s - s.flip(0)).abs(), atol=1e-6)
    assert torch.equal(model.distance(x, x), torch.zeros(3))
    with pytest.raises(ValueError, match="one shape"):
        model.distance(x, x[:, :100])


def test_gradients_reach_the_input_through_the_loss(tmp_path, model):
    registry.save_model(tmp_path / "m.pt", model)
    loss_fn = pamflow.models.load(tmp_path / "m.pt")  # frozen, eval mode
    x = (torch.randn(2, SR // 2) * 0.1).requires_grad_(True)
    y = torch.randn(2, SR // 2) * 0.1
    loss_fn(x, y).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in loss_fn.parameters())
    assert torch.equal(loss_fn(y, y), torch.zeros(2))  # d(x, x) = 0


def test_level_invariant():
    """A gain (18 dB here) moves the score 100 times less than without the level
    normalisation (not exactly zero: the -100 dB floor does not move with the gain)."""
    moved = {}
    for invariant in (True, False):
        torch.manual_seed(0)
        m = Scorer(ScorerConfig.tiny(level_invariant=invariant)).eval()
        x = torch.from_numpy(np.random.default_rng(1).standard_normal((2, SR // 2))) * 0.1
        with torch.no_grad():
            moved[invariant] = float((m.score(x.float()) - m.score(8.0 * x.float())).abs().max())
    assert moved[True] < 1e-3 and moved[False] > 100 * moved[True]


def test_cam_adds_up_to_the_logit(model):
    x = torch.randn(2, SR // 2) * 0.1
    spec = model.spectrogram(x)
    a = model.features(spec)
    k = torch.einsum("bcft,cf->bft", a, model.head.weight.view(-1, model.config.head_bins))
    logit = model.head.bias + k.sum(dim=1).mean(dim=1)
    assert torch.allclose(logit, model.logit_spectrogram(spec), atol=1e-5)
    cam = model.cam(spec)
    assert cam.shape == spec.shape and torch.isfinite(cam).all()
    grad = model.gradient_map(spec)
    assert grad.shape == spec.shape and bool((grad >= 0).all()) and grad.sum() > 0


def test_checkpoint_round_trip_weights_only(tmp_path, model):
    path = registry.save_model(tmp_path / "m.pt", model)
    raw = torch.load(path, weights_only=True)
    assert raw["model"] == "scorer" and raw["config"]["domains"] == ["good", "cheap"]
    back = registry.load_model(path)
    assert isinstance(back, Scorer) and back.config == model.config
    x = torch.randn(2, SR // 4) * 0.1
    assert torch.equal(back.score(x), model.score(x))
    assert "window" not in raw["state_dict"]  # a buffer made from the config


def test_config_checks():
    with pytest.raises(ValueError, match="domains"):
        ScorerConfig(domains=("good",))
    with pytest.raises(ValueError, match="pool away"):
        ScorerConfig(n_fft=16, win_length=16, channels=(2, 2, 2, 2))
    assert registry.get("scorer").recipes == ("domain",)
    assert "domain" in registry.get("scorer").evaluators
