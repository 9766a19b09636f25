"""NORESQA: sizes, STFT input, heads, the score's meaning and range, reference handling, and
a tiny training run (its smoothed-label losses: test_losses.py)."""

from __future__ import annotations

import functools

import pytest
import torch

from pamflow.models.losses import (
    bin_centres,
    noresqa_loss,
)
from pamflow.models.noresqa import NORESQA, NORESQAConfig, fit_length
from pamflow.testing import speech_clips

T = 8000  # 0.5 s at 16 kHz: 30 frames


clips = functools.partial(speech_clips, length=T)


@pytest.fixture(scope="module")
def tiny() -> NORESQA:
    torch.manual_seed(0)
    return NORESQA(NORESQAConfig.tiny()).eval()


def test_default_model_has_about_360k_parameters_and_128_features_a_frame():
    model = NORESQA()
    n = sum(p.numel() for p in model.parameters())
    assert 0.75 * 360_000 <= n <= 1.25 * 360_000, n
    assert model.config.frame_features == 128
    assert [b.conv1.dilation[0] for b in model.tcn] == [1, 2, 4, 8]
    assert [b.conv1.out_channels for b in model.tcn] == [32, 64, 128, 64]
    assert model.sisdr_head[-1].out_channels == model.snr_head[-1].out_channels == 40
    assert model.pref_head[-1].out_channels == 2
    assert hasattr(model.tcn[0].conv1, "parametrizations")  # weight norm


def test_spectrogram_is_magnitude_and_phase_of_bins_1_to_256():
    model = NORESQA(NORESQAConfig.tiny())
    x = torch.randn(2, T)
    spec = model.spectrogram(x)
    frames = 1 + (T - 512) // 256
    assert spec.shape == (2, 2, frames, 256)
    z = torch.stft(
        x, 512, 256, window=torch.hamming_window(512), center=False, return_complex=True
    )[:, 1:257].transpose(1, 2)
    torch.testing.assert_close(spec[:, 0], z.abs())
    torch.testing.assert_close(spec[:, 1], z.angle())
    dc = NORESQA(NORESQAConfig.tiny(skip_dc=False)).spectrogram(x)
    torch.testing.assert_close(dc[:, 0, :, 1:], spec[:, 0, :, :-1])


def test_log_magnitude_is_log10_of_the_magnitude_floored_and_keeps_the_phase():
    x = torch.randn(2, T)
    lin = NORESQA(NORESQAConfig.tiny()).spectrogram(x)
    log = NORESQA(NORESQAConfig.tiny(magnitude="log")).spectrogram(x)
    torch.testing.assert_close(log[:, 0], lin[:, 0].clamp_min(1e-6).log10())
    torch.testing.assert_close(log[:, 1], lin[:, 1])
    silent = NORESQA(NORESQAConfig.tiny(magnitude="log")).spectrogram(torch.zeros(1, T))
    assert torch.all(silent[:, 0] == -6.0) and torch.all(silent[:, 1] == 0.0)
    # a noise 60 dB below the speech: a visible step on the log scale, 0.1 % on the linear
    speech = clips(1, seed=3)
    noisy = speech + 1e-3 * speech.std() * torch.randn(
        1, T, generator=torch.Generator().manual_seed(1)
    )
    model = NORESQA(NORESQAConfig.tiny(magnitude="log"))
    step = (model.spectrogram(noisy)[:, 0] - model.spectrogram(speech)[:, 0]).abs()
    assert step.max() > 0.3
    with pytest.raises(ValueError, match="magnitude"):
        NORESQAConfig.tiny(magnitude="dB")


def test_forward_returns_frame_averaged_distributions(tiny):
    out = tiny(clips(3), clips(3, seed=10))
    assert out["pref_logits"].shape == (3, 2)
    assert out["sisdr_probs"].shape == out["snr_probs"].shape == (3, 40)
    torch.testing.assert_close(out["pref_logits"].exp().sum(1), torch.ones(3))
    torch.testing.assert_close(out["sisdr_probs"].sum(1), torch.ones(3))
    assert (out["snr_probs"] >= 0).all()


def test_inputs_are_checked(tiny):
    with pytest.raises(ValueError, match="one shape"):
        tiny(torch.randn(2, T), torch.randn(2, T - 10))
    with pytest.raises(ValueError, match="at least n_fft"):
        tiny(torch.randn(2, 300), torch.randn(2, 300))
    with pytest.raises(ValueError, match=r"\[B, n, T\]"):
        tiny.score(torch.randn(2, T), torch.randn(2, T))
    with pytest.raises(ValueError, match=r"references\[1\]"):
        tiny.score(torch.randn(2, T), [torch.randn(T), torch.randn(3, T)])


def test_score_is_the_expected_bin_centre_of_the_sisdr_head():
    torch.manual_seed(0)
    model = NORESQA(NORESQAConfig.tiny()).eval()
    last = model.sisdr_head[-1]
    with torch.no_grad():  # force the SI-SDR head onto class 10 (10..11 dB)
        last.weight.zero_()
        last.bias.fill_(-30.0)
        last.bias[10] = 30.0
    score = model.score(clips(2), [clips(1, seed=5)[0]])
    torch.testing.assert_close(score, torch.full((2,), 10.5))
    centres = bin_centres(40, 40.0)
    assert centres[0] == 0.5 and centres[-1] == 39.5
    with torch.no_grad():  # uniform distribution: the middle of the range
        last.bias.zero_()
    torch.testing.assert_close(model.score(clips(2), [clips(1, seed=5)[0]]), torch.full((2,), 20.0))


def test_score_averages_over_references_fitted_to_the_test_length(tiny):
    test = clips(2)
    short = clips(1, seed=20, length=3000)[0]  # tiled
    long = clips(2, seed=30, length=T + 999)  # trimmed, one per row
    s = tiny.score(test, [short, long])
    s_short = tiny.score(test, [fit_length(short, T)])
    s_long = tiny.score(test, [long[:, :T]])
    torch.testing.assert_close(s, (s_short + s_long) / 2)
    out = tiny(test, long[:, :T])
    torch.testing.assert_close(s_long, out["sisdr_probs"] @ bin_centres())
    stacked = torch.stack([fit_length(short, T).expand(2, T), long[:, :T]], dim=1)
    torch.testing.assert_close(tiny.score(test, stacked), s)
    assert ((s >= 0.5) & (s <= 39.5)).all()
    p = tiny.preference(test, [short, long])
    assert p.shape == (2,) and ((p > 0) & (p < 1)).all()


def test_fit_length_tiles_and_trims():
    x = torch.arange(3.0)
    assert fit_length(x, 7).tolist() == [0, 1, 2, 0, 1, 2, 0]
    assert fit_length(torch.arange(10.0)[None], 4).tolist() == [[0, 1, 2, 3]]


def test_gradients_reach_the_test_waveform_even_against_silence(tiny):
    x = clips(2).requires_grad_()
    silence = torch.zeros(T)  # zero STFT bins: the phase guard must keep gradients finite
    tiny.score(x, [silence, clips(1, seed=3)[0]]).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_a_few_adam_steps_lower_the_noresqa_loss():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    a, b = clips(8), clips(8, seed=8)

    def noisy(x: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
        n = torch.randn(x.shape, generator=gen)
        scale = x.pow(2).mean(1).sqrt() / n.pow(2).mean(1).sqrt() * 10 ** (-snr_db / 20)
        return x + scale[:, None] * n

    snr_a = torch.tensor([0.0, 30.0] * 4)
    snr_b = torch.tensor([30.0, 0.0] * 4)
    test, ref = noisy(a, snr_a), noisy(b, snr_b)
    preference = (snr_a < snr_b).long()  # 0: the test is cleaner
    delta = (snr_a - snr_b).abs()
    defined = torch.tensor([True, False] * 4)
    snr_delta = torch.where(defined, delta, float("nan"))  # NaN: SNR undefined, masked out
    model = NORESQA(NORESQAConfig.tiny()).train()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(12):
        opt.zero_grad()
        loss = noresqa_loss(model(test, ref), preference, delta, snr_delta)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-3:]) / 3 < 0.85 * losses[0], losses
