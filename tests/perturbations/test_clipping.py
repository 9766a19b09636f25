"""Clipping: threshold below the peak, share of clipped samples, RMS kept, replay."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pamflow.measures import si_sdr
from pamflow.perturbations import PerturbationError, get
from pamflow.perturbations.clipping import ClippingParams, clip_level
from pamflow.testing import speech_like

SR = 16000
FAM = get("clipping")


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.asarray(x, np.float64) ** 2)))


def test_mapping_ends():
    assert FAM.category == "misc" and FAM.mapping == "linear" and FAM.clips
    assert FAM.value(0) == 0.0
    assert FAM.value(100) == pytest.approx(-40.0)
    assert FAM.value(50) == pytest.approx(-20.0)  # linear in dB
    rng = np.random.default_rng(0)
    assert FAM.sample(rng, 0).threshold_db == 0.0
    assert FAM.sample(rng, 100).threshold_db == pytest.approx(-40.0)


def test_rho_zero_is_the_identity(clip):
    assert np.array_equal(FAM.apply(clip, SR, FAM.sample(np.random.default_rng(0), 0)), clip)


@pytest.mark.parametrize("rho", [10, 50, 100])
def test_threshold_respected_and_rms_kept(clip, rho):
    params = FAM.sample(np.random.default_rng(0), rho)
    y = FAM.apply(clip, SR, params).astype(np.float64)
    x = clip.astype(np.float64)
    t = clip_level(x, params.threshold_db)
    assert t == pytest.approx(np.max(np.abs(x)) * 10 ** (-0.4 * rho / 20))
    gain = rms(x) / rms(np.clip(x, -t, t))
    assert gain > 1.0
    # the shape is the clipped input, then scaled back to the input's RMS
    np.testing.assert_allclose(y, np.clip(x, -t, t) * gain, rtol=1e-6, atol=1e-7)
    assert rms(y) == pytest.approx(rms(x), rel=1e-5)
    assert np.max(np.abs(y)) <= np.max(np.abs(x)) + 1e-7
    # the samples beyond the threshold form the plateau at the output's peak
    plateau = np.isclose(np.abs(y), np.max(np.abs(y)), rtol=1e-6)
    assert np.array_equal(plateau, np.abs(x) >= t)


def test_clipped_share_and_distortion_grow_with_rho():
    clips = [speech_like(seconds=1.5, sample_rate=SR, seed=s) for s in range(3)]
    shares, sdrs = [], []
    for rho in (0, 25, 50, 75, 100):
        p = FAM.sample(np.random.default_rng(0), rho)
        shares.append(np.mean([np.mean(np.abs(x) > clip_level(x, p.threshold_db)) for x in clips]))
        sdrs.append(np.mean([si_sdr(x, FAM.apply(x, SR, p)) for x in clips]))
    assert shares[0] == 0.0 and sdrs[0] == np.inf
    assert all(a < b for a, b in zip(shares, shares[1:], strict=False))
    assert all(a > b for a, b in zip(sdrs, sdrs[1:], strict=False))
    # the documented span (NORESQA's ClippingDistortion clipped up to 40 % of samples)
    assert 0.2 < shares[-1] < 0.6
    assert sdrs[-1] < 3.0 and sdrs[1] > 8.0


def test_replay_and_json_round_trip(clip):
    params = FAM.sample(np.random.default_rng(5), 42)
    y = FAM.apply(clip, SR, params)
    assert y.dtype == np.float32 and y.shape == clip.shape
    again = FAM.params_from_dict(json.loads(params.to_json()))
    assert again == params and np.array_equal(y, FAM.apply(clip, SR, again))


def test_over_full_scale_input_is_clipped_not_scaled():
    x = np.array([0.0, 0.5, 2.0, -3.0, 0.25], dtype=np.float32)
    y = FAM.apply(x, SR, ClippingParams(threshold_db=0.0))
    assert np.array_equal(y, np.clip(x, -1, 1))


@pytest.mark.parametrize("sr", [16000, 22050, 44100, 48000])
def test_sample_rates(sr):
    x = speech_like(seconds=1.0, sample_rate=sr, seed=2)
    p = FAM.sample(np.random.default_rng(1), 60)
    y = FAM.apply(x, sr, p)
    assert y.shape == x.shape and y.dtype == np.float32
    assert rms(y) == pytest.approx(rms(x), rel=1e-5)
    assert np.mean(np.abs(x) > clip_level(x, p.threshold_db)) > 0.05


def test_silence_and_bad_threshold():
    z = np.zeros(100, np.float32)
    assert np.array_equal(FAM.apply(z, SR, ClippingParams(threshold_db=-20.0)), z)
    with pytest.raises(PerturbationError, match="threshold_db"):
        FAM.apply(np.ones(10, np.float32) * 0.1, SR, ClippingParams(threshold_db=3.0))
