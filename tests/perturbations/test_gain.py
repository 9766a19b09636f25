"""Gain (CDPAM augmentation): 0 to -20 dB, linear in rho, exact level change."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pamflow.perturbations import get
from pamflow.perturbations.gain import GainParams
from pamflow.testing import speech_like

SR = 16000
FAM = get("gain")


def level_db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.asarray(x, np.float64) ** 2)))


def test_mapping_ends():
    assert FAM.category == "augment" and FAM.mapping == "linear" and FAM.unit == "dB"
    assert FAM.value(0) == 0.0
    assert FAM.value(100) == pytest.approx(-20.0)
    assert FAM.value(25) == pytest.approx(-5.0)
    rng = np.random.default_rng(0)
    assert FAM.sample(rng, 0) == GainParams(gain_db=0.0)
    assert FAM.sample(rng, 100).gain_db == pytest.approx(-20.0)


@pytest.mark.parametrize("rho", [0, 10, 50, 100])
def test_exact_gain_in_db(rho):
    x = speech_like(seconds=1.0, sample_rate=SR, seed=4)
    params = FAM.sample(np.random.default_rng(1), rho)
    y = FAM.apply(x, SR, params)
    assert y.shape == x.shape and y.dtype == np.float32
    expected = -20.0 * rho / 100
    assert level_db(y) - level_db(x) == pytest.approx(expected, abs=1e-4)
    np.testing.assert_allclose(
        y, x.astype(np.float64) * 10 ** (expected / 20), rtol=1e-6, atol=1e-9
    )
    if rho == 0:
        assert np.array_equal(y, x)


def test_replay_and_json_round_trip():
    x = speech_like(seconds=0.5, sample_rate=SR, seed=1)
    params = FAM.sample(np.random.default_rng(3), 33)
    again = FAM.params_from_dict(json.loads(params.to_json()))
    assert again == params
    assert np.array_equal(FAM.apply(x, SR, params), FAM.apply(x, SR, again))


@pytest.mark.parametrize("sr", [16000, 22050, 44100, 48000])
def test_sample_rates(sr):
    x = speech_like(seconds=0.5, sample_rate=sr, seed=2)
    y = FAM.apply(x, sr, GainParams(gain_db=-6.0))
    assert y.shape == x.shape and level_db(y) - level_db(x) == pytest.approx(-6.0, abs=1e-4)
