"""EQ family: amount mapping, exact identity at s = 0, band gains on tones, replay."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from pamflow.measures import log_spectral_distance
from pamflow.perturbations import PerturbationError, get
from pamflow.perturbations.eq import EqParams, crossovers, split_bands
from pamflow.testing import sine, speech_like

SR = 16000
FAM = get("eq")


def tone_gain(fam_out: np.ndarray, tone: np.ndarray) -> float:
    mid = slice(tone.size // 4, 3 * tone.size // 4)  # away from the filters' edges
    t = tone[mid].astype(np.float64)
    return float(np.dot(fam_out[mid], t) / np.dot(t, t))


def analytic_gain(f: float, gains, lo=500.0, hi=1000.0) -> float:
    low = 1 / (1 + (f / lo) ** 8)  # |Butterworth|^2: the filter runs forwards and backwards
    high = (f / hi) ** 8 / (1 + (f / hi) ** 8)
    return gains[0] * low + gains[1] * (1 - low) * (1 - high) + gains[2] * (1 - low) * high


def test_mapping_ends_and_draws():
    assert FAM.category == "eq" and FAM.mapping == "linear"
    assert FAM.value(0) == 0.0 and FAM.value(100) == 1.0 and FAM.value(25) == 0.25
    p0 = FAM.sample(np.random.default_rng(7), 0)
    p100 = FAM.sample(np.random.default_rng(7), 100)
    assert p0.amount == 0.0 and p100.amount == 1.0
    assert p0.u == p100.u and all(-1 <= u <= 1 for u in p0.u)  # same draws at any strength
    assert p0.gains == (1.0, 1.0, 1.0)
    assert p100.gains == pytest.approx(tuple(1 + u for u in p100.u))
    assert p0.crossovers_hz == (500.0, 1000.0)


@pytest.mark.parametrize("sr", [16000, 22050, 44100, 48000, 1000])
def test_amount_zero_is_the_identity(sr):
    x = speech_like(1.0, sr, seed=1, level_db=-6)
    y = FAM.apply(x, sr, FAM.sample(np.random.default_rng(3), 0))
    assert np.max(np.abs(y - x)) < 1e-6
    low, mid, high = split_bands(x, sr)
    np.testing.assert_allclose(low + mid + high, x, rtol=0, atol=1e-12)


def test_tones_take_their_band_gain():
    # a drawn cut: find a seed whose low band is cut hard and whose other bands differ
    for seed in range(100):
        p = FAM.sample(np.random.default_rng(seed), 100)
        if p.u[0] < -0.7 and abs(p.u[1] - p.u[2]) > 0.5:
            break
    g = p.gains
    assert g[0] < 0.3
    for f, band, tol in ((200.0, 0, 0.01), (3000.0, 2, 0.01)):
        tone = sine(f, 1.0, SR, 0.1)
        assert tone_gain(FAM.apply(tone, SR, p), tone) == pytest.approx(g[band], abs=tol)
    # 700 Hz is mostly mid band (89 %): near its gain, and exactly the analytic response
    tone = sine(700.0, 1.0, SR, 0.1)
    measured = tone_gain(FAM.apply(tone, SR, p), tone)
    assert measured == pytest.approx(g[1], abs=0.12 * max(abs(g[0] - g[1]), abs(g[2] - g[1])))
    for f in (150.0, 450.0, 700.0, 900.0, 1500.0, 3000.0):
        tone = sine(f, 1.0, SR, 0.1)
        assert tone_gain(FAM.apply(tone, SR, p), tone) == pytest.approx(
            analytic_gain(f, g), abs=0.01
        )


def test_removed_band_is_gone():
    p = EqParams(amount=1.0, u=(1.0, -1.0, 1.0))  # mid band removed, others doubled
    tone = sine(707.0, 1.0, SR, 0.1)
    gain = tone_gain(FAM.apply(tone, SR, p), tone)
    # 707 Hz is 11 % outside the mid band, and that part is doubled
    assert gain == pytest.approx(analytic_gain(707.0, (2.0, 0.0, 2.0)), abs=0.01) and gain < 0.25
    low = sine(100.0, 1.0, SR, 0.1)
    assert tone_gain(FAM.apply(low, SR, p), low) == pytest.approx(2.0, abs=0.01)


def test_spectral_distance_grows_with_rho():
    x = speech_like(1.5, SR, seed=2)
    lsd = [
        np.mean(
            [
                log_spectral_distance(
                    x, FAM.apply(x, SR, FAM.sample(np.random.default_rng(s), r)), SR
                )
                for s in range(6)
            ]
        )
        for r in (0, 50, 100)
    ]
    assert lsd[0] < 0.01 and lsd[0] < lsd[1] < lsd[2]


def test_crossovers_scale_at_low_rates():
    assert crossovers(16000) == (500.0, 1000.0)
    assert crossovers(2500) == (500.0, 1000.0)
    assert crossovers(2000) == pytest.approx((400.0, 800.0))
    assert crossovers(1000) == pytest.approx((200.0, 400.0))
    x = speech_like(1.0, 1000, seed=0)
    y = FAM.apply(x, 1000, FAM.sample(np.random.default_rng(0), 80))
    assert y.shape == x.shape and np.all(np.isfinite(y))


def test_bad_params():
    x = np.zeros(100, np.float32)
    for p, field in (
        (EqParams(amount=1.5, u=(0.0, 0.0, 0.0)), "amount"),
        (EqParams(amount=0.5, u=(0.0, 2.0, 0.0)), "u"),
        (EqParams(amount=0.5, u=(0.0, 0.0)), "u"),  # type: ignore[arg-type]
        (EqParams(amount=0.5, u=(0.0, 0.0, 0.0), crossovers_hz=(1000.0, 500.0)), "crossovers"),
    ):
        with pytest.raises(PerturbationError, match=field):
            FAM.apply(x, SR, p)


def test_replay_json_pickle_and_short_input():
    x = speech_like(1.0, SR, seed=4)
    p = FAM.sample(np.random.default_rng(1), 63)
    y = FAM.apply(x, SR, p)
    assert y.dtype == np.float32 and y.shape == x.shape
    again = FAM.params_from_dict(json.loads(p.to_json()))
    assert again == p and pickle.loads(pickle.dumps(p)) == p
    assert np.array_equal(y, FAM.apply(x, SR, again))
    for n in (1, 2, 5, 40):
        assert FAM.apply(x[:n], SR, p).shape == (n,)


@pytest.mark.parametrize("sr", [16000, 22050, 44100, 48000])
def test_sample_rates(sr):
    p = EqParams(amount=1.0, u=(-0.5, 0.0, 0.5))
    for f, g in ((200.0, 0.5), (3000.0, 1.5)):
        tone = sine(f, 1.0, sr, 0.1)
        y = FAM.apply(tone, sr, p)
        assert y.dtype == np.float32 and y.shape == tone.shape
        assert tone_gain(y, tone) == pytest.approx(g, abs=0.01)
