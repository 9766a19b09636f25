"""μ-law family: bits mapping, quantisation grid, textbook 8-bit SNR, numerics, replay."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from pamflow.measures import si_sdr, snr_db
from pamflow.perturbations import PerturbationError, get
from pamflow.perturbations.mulaw import MulawParams, mulaw_requantise
from pamflow.testing import speech_like

SR = 16000
FAM = get("mulaw")


def compand(x: np.ndarray, bits: float) -> np.ndarray:
    mu = 2.0**bits - 1
    return np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)


def test_mapping_ends():
    assert FAM.category == "compression" and FAM.mapping == "exponential"
    assert FAM.value(0) == pytest.approx(60.0)
    assert FAM.value(100) == pytest.approx(1.0)
    assert FAM.value(49.2) == pytest.approx(8.0, abs=0.01)
    rng = np.random.default_rng(0)
    assert FAM.sample(rng, 0) == MulawParams(bits=60.0)
    assert FAM.sample(rng, 100).bits == pytest.approx(1.0)


def test_rho_zero_is_transparent():
    x = speech_like(2.0, SR, seed=1, level_db=-10)
    y = FAM.apply(x, SR, FAM.sample(np.random.default_rng(0), 0))
    assert np.max(np.abs(y - x)) <= 1e-6
    # from about 30 bits up the output is the input to float32 precision
    assert np.max(np.abs(mulaw_requantise(x, 30).astype(np.float32) - x)) < 1e-9


def test_eight_bits_gives_the_textbook_snr():
    # 8-bit μ-law (μ = 255): about 38 dB, nearly flat over a wide range of levels
    for level, (lo, hi) in ((-20, (35.0, 40.0)), (-10, (35.0, 41.0)), (-40, (33.0, 40.0))):
        xs = [speech_like(2.0, SR, seed=s, level_db=level) for s in range(3)]
        snr = np.mean([snr_db(x, mulaw_requantise(x, 8), SR) for x in xs])
        assert lo < snr < hi, (level, snr)


def test_error_grows_as_bits_shrink():
    x = speech_like(2.0, SR, seed=2)
    bits = [24, 16, 12, 8, 6, 4, 2, 1]
    snrs = [snr_db(x, mulaw_requantise(x, b), SR) for b in bits]
    assert all(a > b for a, b in zip(snrs, snrs[1:], strict=False))
    # continuous in bits: 7.5 bits lies between 7 and 8
    s7, s75, s8 = (snr_db(x, mulaw_requantise(x, b), SR) for b in (7, 7.5, 8))
    assert s7 < s75 < s8


def test_degradation_grows_with_rho():
    xs = [speech_like(1.5, SR, seed=s) for s in range(3)]
    sdr = [
        np.mean([si_sdr(x, FAM.apply(x, SR, FAM.sample(np.random.default_rng(0), r))) for x in xs])
        for r in (0, 50, 100)
    ]
    assert sdr[0] > 100 and 30 < sdr[1] < 45 and sdr[2] < 5


def test_quantisation_grid_and_symmetry():
    x = np.linspace(-1, 1, 20001)
    for bits in (1, 3, 8):
        y = mulaw_requantise(x, bits)
        # the companded output lies on the mid-tread grid of step 2^(1 - bits)
        grid = compand(y, bits) / 2.0 ** (1 - bits)
        np.testing.assert_allclose(grid, np.round(grid), atol=1e-9)
        assert np.unique(np.round(grid)).size == 2 * 2 ** (bits - 1) + 1
        np.testing.assert_allclose(mulaw_requantise(-x, bits), -y, atol=0)  # odd function
        assert mulaw_requantise(np.zeros(4), bits).tolist() == [0.0] * 4  # silence stays
    # 1 bit (μ = 1): three levels, |x| >= sqrt(2) - 1 goes to full scale
    assert mulaw_requantise(np.array([0.4, 0.42, -0.9]), 1).tolist() == [0.0, 1.0, -1.0]


def test_high_bits_numerics():
    x = speech_like(1.0, SR, seed=3)
    # relative resolution about bits * ln 2 * 2^(1 - bits): 5e-11 at 40 bits; from 52 bits
    # the step is held at 2^-51 and float64's own rounding (about 1e-14) dominates
    for bits, rtol in ((40, 1e-10), (52, 1e-13), (53, 1e-13), (60, 1e-13), (64, 1e-13)):
        y = mulaw_requantise(x, bits)
        assert np.all(np.isfinite(y))
        np.testing.assert_allclose(y, x, rtol=rtol, atol=1e-300)


def test_bad_bits():
    x = np.zeros(10, np.float32)
    for bits in (0.5, 65.0, float("nan")):
        with pytest.raises(PerturbationError, match="bits"):
            FAM.apply(x, SR, MulawParams(bits=bits))


def test_replay_json_and_pickle():
    x = speech_like(1.0, SR, seed=4)
    p = FAM.sample(np.random.default_rng(1), 63)
    y = FAM.apply(x, SR, p)
    assert y.dtype == np.float32 and y.shape == x.shape
    again = FAM.params_from_dict(json.loads(p.to_json()))
    assert again == p and pickle.loads(pickle.dumps(p)) == p
    assert np.array_equal(y, FAM.apply(x, SR, again))


@pytest.mark.parametrize("sr", [16000, 22050, 44100, 48000])
def test_sample_rates(sr):
    x = speech_like(1.0, sr, seed=5)
    p = FAM.sample(np.random.default_rng(0), 50)
    y = FAM.apply(x, sr, p)
    assert y.shape == x.shape and y.dtype == np.float32
    assert 30 < snr_db(x, y, sr) < 45  # sample-wise: the rate does not matter
