"""A-law family: the law against G.711's, the quantisation grid, the 8-bit SNR, degradation
growing with strength, length and alignment at four rates, replay."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from pamflow.measures import snr_db
from pamflow.perturbations import PerturbationError, get
from pamflow.perturbations.alaw import A, AlawParams, alaw_compress, alaw_expand, alaw_requantise
from pamflow.testing import speech_like

FAM = get("alaw")


def test_mapping_and_params():
    assert FAM.category == "compression" and FAM.mapping == "exponential"
    assert FAM.value(0) == pytest.approx(60.0) and FAM.value(100) == pytest.approx(1.0)
    params = FAM.sample(np.random.default_rng(0), 49.2)
    assert params.bits == pytest.approx(8.0, abs=0.01)
    assert AlawParams.from_dict(json.loads(json.dumps(params.to_dict()))) == params


def test_the_law_is_g711s_continuous_curve_and_inverts():
    x = np.linspace(-1.0, 1.0, 200001)
    y = alaw_compress(x)
    assert np.max(np.abs(alaw_expand(y) - x)) < 1e-12
    # its defining points: linear with slope A / (1 + ln A) below 1/A, 1 at full scale
    assert alaw_compress(np.array([1.0]))[0] == pytest.approx(1.0)
    assert alaw_compress(np.array([0.5 / A]))[0] == pytest.approx(0.5 / (1 + np.log(A)))
    assert np.all(np.diff(y) >= 0)


def test_against_g711_segments_at_8_bits():
    """G.711's 13-segment A-law (audioop, where this Python still has it) and the
    continuous law pamflow uses give the same SNR on speech within 1.5 dB at 8 bits (the
    segments approximate the curve; G.711 quantises mid-riser)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        audioop = pytest.importorskip("audioop")
    x = speech_like(2.0, 16000, seed=3, level_db=-20)
    pcm = np.round(x * 32767).astype("<i2")
    g711 = np.frombuffer(audioop.alaw2lin(audioop.lin2alaw(pcm.tobytes(), 2), 2), "<i2")
    ours = alaw_requantise(x, 8.0)
    assert snr_db(x, ours) == pytest.approx(snr_db(x, g711 / 32767.0), abs=1.5)


def test_quantisation_grid_and_silence():
    y = alaw_compress(alaw_requantise(np.linspace(-1, 1, 10001), 3.0))
    assert np.allclose(y * 4, np.round(y * 4), atol=1e-12)  # levels at multiples of 2^(1-3)
    assert np.all(alaw_requantise(np.zeros(100), 1.0) == 0)  # mid-tread: silence stays


def test_degradation_grows_with_strength_and_8_bits_is_textbook():
    x = speech_like(2.0, 16000, seed=1)
    snrs = [snr_db(x, FAM.apply(x, 16000, FAM.sample(np.random.default_rng(0), s)))
            for s in (0, 20, 40, 60, 80, 100)]  # fmt: skip
    assert all(a > b for a, b in zip(snrs, snrs[1:], strict=False)), snrs
    assert snr_db(x, alaw_requantise(x, 8.0)) == pytest.approx(38.0, abs=3.0)


@pytest.mark.parametrize("sr", [16000, 22050, 44100, 48000])
def test_length_kept_and_no_lag(sr):
    x = speech_like(1.0, sr, seed=2)
    y = FAM.apply(x, sr, FAM.sample(np.random.default_rng(0), 50))
    assert y.shape == x.shape and y.dtype == np.float32
    lags = np.arange(-50, 51)
    corr = [float(np.dot(np.roll(y, k), x)) for k in lags]
    assert lags[int(np.argmax(corr))] == 0


def test_bad_bits_are_refused():
    with pytest.raises(PerturbationError, match="alaw: bits"):
        alaw_requantise(np.zeros(4), 0.5)
