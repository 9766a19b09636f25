"""packet_loss: the Gilbert loss pattern, G.711 Appendix I concealment (better than silence
on voiced sound, attenuated to silence on long losses), length, replay, bad params."""

from __future__ import annotations

import numpy as np
import pytest

from pamflow.measures.spectral import log_spectral_distance
from pamflow.perturbations import PerturbationError, get
from pamflow.perturbations.plc import PlcParams, loss_pattern, packet_loss_concealed
from pamflow.testing import speech_like

FAM = get("packet_loss")


def _vowel(seconds: float, sr: int) -> np.ndarray:
    """A sustained voiced sound: 11 harmonics of 140 Hz with 1 % vibrato."""
    t = np.arange(int(seconds * sr)) / sr
    phase = 2 * np.pi * np.cumsum(140 * (1 + 0.01 * np.sin(2 * np.pi * 4 * t))) / sr
    x = sum(np.sin(k * phase) / k for k in range(1, 12))
    return (0.1 * x / np.std(x)).astype(np.float32)


def test_loss_pattern_has_the_asked_rate_and_bursts():
    lost = loss_pattern(200_000, 0.2, 3.0, seed=1)
    assert lost.mean() == pytest.approx(0.2, abs=0.01)
    edges = np.diff(np.concatenate([[0], lost.astype(int), [0]]))
    runs = np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)
    assert runs.mean() == pytest.approx(3.0, rel=0.05)
    assert np.array_equal(lost, loss_pattern(200_000, 0.2, 3.0, seed=1))
    assert not np.array_equal(lost, loss_pattern(200_000, 0.2, 3.0, seed=2))


def test_no_loss_leaves_the_clip_unchanged():
    x = speech_like(1.0, 16000, seed=1)
    assert np.array_equal(FAM.apply(x, 16000, FAM.sample(np.random.default_rng(0), 0.0)), x)


@pytest.mark.parametrize("sr", [16000, 44100])
def test_concealment_beats_silence_on_voiced_sound(sr):
    x = _vowel(3.0, sr)
    frame = round(0.02 * sr)
    lost = loss_pattern(-(-x.size // frame), 0.2, 2.0, seed=5)
    y = packet_loss_concealed(x, sr, lost, frame)
    zeroed = x.copy()
    for i in np.flatnonzero(lost):
        zeroed[i * frame : (i + 1) * frame] = 0.0
    assert y.shape == x.shape
    d_conceal = log_spectral_distance(x, y, sr)
    d_zero = log_spectral_distance(x, zeroed, sr)
    assert d_conceal < 0.5 * d_zero, (d_conceal, d_zero)
    # the first 10 ms of every loss hold the repeated period at full level
    starts = np.flatnonzero(lost & ~np.concatenate([[False], lost[:-1]]))
    assert starts.size >= 5
    for i in starts[starts > 2]:
        seg = y[i * frame : i * frame + frame // 2]
        assert np.std(seg) > 0.7 * np.std(x)


def test_long_losses_fade_to_silence_and_leave_no_history_silent():
    sr, frame = 16000, 320
    x = _vowel(1.0, sr)
    lost = np.zeros(50, dtype=bool)
    lost[0] = True  # nothing heard yet: silence
    lost[20:25] = True  # 100 ms: full, then down 20 % per 10 ms, silent from 60 ms
    y = packet_loss_concealed(x, sr, lost, frame)
    assert np.all(y[:frame] == 0)
    start = 20 * frame
    assert np.all(y[start + 960 : 25 * frame] == 0)  # 60 ms in and after
    assert np.std(y[start : start + 160]) > 0.7 * np.std(x)
    assert np.std(y[start + 640 : start + 800]) < 0.35 * np.std(x)  # 40..50 ms: <= 40 %


def test_degradation_grows_with_strength_and_replays():
    x = _vowel(2.0, 16000)
    d = []
    for s in (20.0, 60.0, 100.0):
        params = FAM.sample(np.random.default_rng(7), s)
        y = FAM.apply(x, 16000, params)
        assert np.array_equal(y, FAM.apply(x, 16000, PlcParams.from_dict(params.to_dict())))
        d.append(log_spectral_distance(x, y, 16000))
    assert d[0] < d[1] < d[2], d


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"loss_rate": 1.2, "seed": 1}, "packet_loss: loss_rate must be in"),
        ({"loss_rate": 0.1, "seed": 1, "burst": 0.5}, "packet_loss: burst must be"),
        ({"loss_rate": 0.1, "seed": 1, "frame_ms": 1.0}, "packet_loss: frame_ms must be in"),
        ({"loss_rate": 0.1, "seed": 1, "engine": "opus"}, "packet_loss: engine must be"),
    ],
)
def test_bad_params_are_refused(data, match):
    with pytest.raises(PerturbationError, match=match):
        FAM.apply(np.zeros(1600, np.float32), 16000, PlcParams.from_dict(data))
