"""Frequency masking: band width mapping, energy removed in the band, nesting, replay."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pamflow.measures import si_sdr
from pamflow.perturbations import PerturbationError, get
from pamflow.perturbations.freq_mask import EDGE, FreqMaskParams, mask_gain
from pamflow.testing import speech_like

SR = 16000
FAM = get("freq_mask")


def band_energy_db(x: np.ndarray, y: np.ndarray, lo: float, hi: float) -> float:
    """Energy of ``y`` relative to ``x`` within [lo, hi] (fractions of Nyquist), in dB."""
    w = np.hanning(x.size)
    fx = np.abs(np.fft.rfft(x * w)) ** 2
    fy = np.abs(np.fft.rfft(y * w)) ** 2
    f = np.arange(fx.size) / (x.size / 2)
    sel = (f >= lo) & (f <= hi)
    return float(10 * np.log10(fy[sel].sum() / fx[sel].sum()))


def noise(n: int, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)


def test_mapping_ends():
    assert FAM.category == "misc" and FAM.mapping == "exponential" and not FAM.clips
    assert FAM.value(0) == pytest.approx(1.0)
    assert FAM.value(100) == pytest.approx(50.0)
    assert FAM.value(50) == pytest.approx(np.sqrt(50.0))
    for seed in range(5):
        p0 = FAM.sample(np.random.default_rng(seed), 0)
        p100 = FAM.sample(np.random.default_rng(seed), 100)
        assert p0.hi - p0.lo == pytest.approx(0.01)
        assert p100.hi - p100.lo == pytest.approx(0.5)
        assert 0.0 <= p100.lo <= p0.lo and p0.hi <= p100.hi <= 1.0  # nested bands
        assert p0.edge == EDGE


def test_mask_gain_shape():
    f = np.array([0.1, 0.2, 0.25, 0.3, 0.3 + EDGE / 2, 0.3 + EDGE, 0.5, 0.2 - EDGE / 2])
    g = mask_gain(f, 0.2, 0.3, EDGE)
    np.testing.assert_allclose(g, [1.0, 0.0, 0.0, 0.0, 0.5, 1.0, 1.0, 0.5], atol=1e-12)


@pytest.mark.parametrize(("lo", "hi"), [(0.3, 0.31), (0.05, 0.45), (0.0, 0.02), (0.97, 1.0)])
def test_band_energy_removed_rest_kept(lo, hi):
    x = noise(SR)
    y = FAM.apply(x, SR, FreqMaskParams(lo=lo, hi=hi))
    assert band_energy_db(x, y, lo, hi) < -40.0  # measured -45 .. -130 dB
    # beyond the raised-cosine edges the spectrum is untouched
    margin = EDGE + 0.002
    if lo - margin > 0:
        assert abs(band_energy_db(x, y, 0.0, lo - margin)) < 0.01
    if hi + margin < 1:
        assert abs(band_energy_db(x, y, hi + margin, 1.0)) < 0.01


def test_degradation_grows_with_band_width():
    clip = speech_like(seconds=2.0, sample_rate=SR, seed=7)
    sdr = {
        rho: [si_sdr(clip, FAM.apply(clip, SR, FAM.sample(np.random.default_rng(s), rho)))
              for s in range(6)]
        for rho in (0, 50, 100)
    }  # fmt: skip
    for s in range(6):  # nested bands: more removed for each draw
        assert sdr[0][s] >= sdr[50][s] >= sdr[100][s]
    m0, m50, m100 = (np.mean(sdr[r]) for r in (0, 50, 100))
    assert m0 > m50 + 3 > m100 + 6
    # rho = 0 removes 1 % of the band (80 Hz): mild, but not nothing where it hits a
    # formant (measured mean ~30 dB, single draws down to ~16 dB)
    assert m0 > 22.0


def test_replay_and_json_round_trip():
    x = speech_like(seconds=1.0, sample_rate=SR, seed=2)
    params = FAM.sample(np.random.default_rng(5), 55)
    y = FAM.apply(x, SR, params)
    assert y.dtype == np.float32 and y.shape == x.shape
    assert np.array_equal(y, FAM.apply(x, SR, params))
    again = FAM.params_from_dict(json.loads(params.to_json()))
    assert again == params and np.array_equal(y, FAM.apply(x, SR, again))


@pytest.mark.parametrize("sr", [16000, 22050, 44100, 48000])
def test_sample_rates_band_scales_with_nyquist(sr):
    x = noise(sr, seed=1)
    params = FreqMaskParams(lo=0.4, hi=0.5)  # 0.4..0.5 of Nyquist at every rate
    y = FAM.apply(x, sr, params)
    assert y.shape == x.shape and y.dtype == np.float32
    assert band_energy_db(x, y, 0.4, 0.5) < -40.0
    assert abs(band_energy_db(x, y, 0.0, 0.39)) < 0.01


def test_bad_band_is_named():
    x = noise(100)
    with pytest.raises(PerturbationError, match="lo"):
        FAM.apply(x, SR, FreqMaskParams(lo=0.6, hi=0.4))
    with pytest.raises(PerturbationError, match="edge"):
        FAM.apply(x, SR, FreqMaskParams(lo=0.1, hi=0.2, edge=-1.0))
