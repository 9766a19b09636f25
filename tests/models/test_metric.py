"""pamflow.models.load: a frozen, differentiable metric that resamples its inputs."""

from __future__ import annotations

import numpy as np
import pytest
import soxr
import torch
from scipy import signal

import pamflow.models
from pamflow.models import registry
from pamflow.models.cdpam import CDPAM, CDPAMConfig
from pamflow.models.dpam import DPAM, DPAMConfig
from pamflow.models.metric import PerceptualLoss, resample_fft
from pamflow.models.noresqa import NORESQA, NORESQAConfig
from pamflow.testing import speech_like


def saved(tmp_path, model) -> str:
    return str(registry.save_model(tmp_path / f"{type(model).__name__}.pt", model))


@pytest.fixture
def dpam_ckpt(tmp_path) -> str:
    torch.manual_seed(0)
    return saved(tmp_path, DPAM(DPAMConfig.tiny()))  # 22,050 Hz


def band_limited(n: int, sr: int, seed: int = 0) -> np.ndarray:
    """A sum of sines below 5 kHz (representable at 16 and 22.05 kHz)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / sr
    f, a, p = rng.uniform(50, 5000, 12), rng.uniform(0.01, 0.08, 12), rng.uniform(0, 6.28, 12)
    return np.sum(a[:, None] * np.sin(2 * np.pi * f[:, None] * t + p[:, None]), 0).astype(
        np.float64
    )


@pytest.mark.parametrize(
    "n, num", [(1000, 1378), (1001, 1379), (1378, 1000), (1379, 1001), (999, 500), (500, 999)]
)
def test_resample_fft_matches_scipy_resample(n, num):
    x = np.random.default_rng(n).standard_normal((2, n))
    ours = resample_fft(torch.from_numpy(x), n, num).numpy()  # rates in the ratio of lengths
    assert ours.shape == (2, num)
    np.testing.assert_allclose(ours, signal.resample(x, num, axis=-1), atol=1e-10)


@pytest.mark.parametrize("sr_in, sr_out", [(16000, 22050), (22050, 16000), (16000, 48000)])
def test_resample_fft_agrees_with_soxr_and_resample_poly(sr_in, sr_out):
    x = band_limited(sr_in, sr_in)  # 1 s
    ours = resample_fft(torch.from_numpy(x), sr_in, sr_out).numpy()
    assert len(ours) == sr_out
    g = np.gcd(sr_in, sr_out)
    poly = signal.resample_poly(x, sr_out // g, sr_in // g)
    sox = soxr.resample(x, sr_in, sr_out, quality="VHQ")
    mid = slice(sr_out // 5, 4 * sr_out // 5)  # away from the edges, where FFT wraps around
    assert np.max(np.abs(ours[mid] - sox[mid])) < 5e-5
    assert np.max(np.abs(ours[mid] - poly[mid])) < 1e-3
    # and a plain (non-band-limited-aware) interpolation is clearly worse: the test can fail
    linear = np.interp(np.arange(sr_out) * sr_in / sr_out, np.arange(sr_in), x)
    assert np.max(np.abs(linear[mid] - sox[mid])) > 5e-3


def test_resample_fft_is_differentiable():
    x = torch.randn(2, 800, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda v: resample_fft(v, 8, 11), (x[:, :40].detach().clone().requires_grad_(True),)
    )


def test_load_gives_a_frozen_metric(dpam_ckpt, monkeypatch):
    seen = {}
    real_load = torch.load

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    metric = pamflow.models.load(dpam_ckpt)
    assert seen.get("weights_only") is True
    assert isinstance(metric, PerceptualLoss) and isinstance(metric.model, DPAM)
    assert metric.sample_rate == 22050
    assert all(not p.requires_grad for p in metric.parameters())
    metric.train()  # e.g. from a parent module: the metric stays in eval mode
    assert not metric.model.training and not any(m.training for m in metric.model.modules())


@pytest.mark.parametrize(
    "make",
    [
        lambda: DPAM(DPAMConfig.tiny()),
        lambda: CDPAM(CDPAMConfig.tiny()),
        lambda: NORESQA(NORESQAConfig.tiny()),
    ],
)
def test_gradients_reach_the_input_and_identity_is_zero(tmp_path, make):
    torch.manual_seed(0)
    metric = pamflow.models.load(saved(tmp_path, make()))
    clean = torch.from_numpy(np.stack([speech_like(0.5, 16000, seed=s) for s in (1, 2)]))
    x = (clean + 0.05 * torch.randn_like(clean)).requires_grad_(True)
    d = metric(x, clean, sample_rate=16000)
    assert d.shape == (2,) and torch.isfinite(d).all()
    d.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in metric.parameters())
    same = metric(clean, clean, sample_rate=16000)
    if isinstance(metric.model, NORESQA):  # a score in dB, bounded below by half a bin
        assert (same >= 0.5 - 1e-5).all()
    else:
        assert same.abs().max() <= 1e-3 * d.min()  # D(x, x) ~ 0 against D(x, noisy x)


def test_resampling_happens_before_the_model(dpam_ckpt):
    """Inputs at 16 kHz are resampled to 22,050 Hz: same distance as resampling first."""
    metric = pamflow.models.load(dpam_ckpt)
    a, b = (torch.from_numpy(speech_like(0.5, 16000, seed=s))[None] for s in (3, 4))
    direct = metric.model(resample_fft(a, 16000, 22050), resample_fft(b, 16000, 22050))
    assert torch.allclose(metric(a, b, sample_rate=16000), direct)
    assert not torch.allclose(metric(a, b, sample_rate=16000), metric(a, b))  # rate matters
    with pytest.raises(ValueError, match="one shape"):
        metric(a, b[:, :-1])


def test_a_denoiser_trained_with_the_loss_improves(dpam_ckpt):
    metric = pamflow.models.load(dpam_ckpt)
    gen = torch.Generator().manual_seed(0)
    clean = torch.from_numpy(np.stack([speech_like(0.5, 16000, seed=s) for s in range(4)]))
    noisy = clean + 0.1 * torch.randn(clean.shape, generator=gen)
    torch.manual_seed(0)
    denoiser = torch.nn.Conv1d(1, 1, 9, padding=4)
    opt = torch.optim.Adam(denoiser.parameters(), lr=3e-3)

    def loss_now() -> float:
        with torch.no_grad():
            return float(metric(denoiser(noisy[:, None])[:, 0], clean, 16000).mean())

    before = loss_now()
    for _ in range(40):
        loss = metric(denoiser(noisy[:, None])[:, 0], clean, 16000).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss_now() < 0.7 * before
