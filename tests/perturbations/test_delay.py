"""Delay (CDPAM augmentation): up to 0.25 s of silence at the start or the end, length kept."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pamflow.perturbations import PerturbationError, get
from pamflow.perturbations.delay import DelayParams
from pamflow.testing import chirp

FAM = get("delay")


def test_mapping_ends():
    assert FAM.category == "augment" and FAM.mapping == "linear" and FAM.unit == "s"
    assert FAM.value(0) == 0.0
    assert FAM.value(100) == pytest.approx(0.25)
    assert FAM.value(40) == pytest.approx(0.1)
    assert FAM.sample(np.random.default_rng(0), 0).seconds == 0.0
    assert FAM.sample(np.random.default_rng(0), 100).seconds == pytest.approx(0.25)


def test_side_is_drawn_and_recorded():
    sides = [FAM.sample(np.random.default_rng(s), 50).side for s in range(40)]
    assert set(sides) == {"start", "end"}
    assert 10 < sides.count("start") < 30


@pytest.mark.parametrize("sr", [16000, 22050, 44100, 48000])
@pytest.mark.parametrize("side", ["start", "end"])
def test_shift_by_the_right_number_of_samples(sr, side):
    x = chirp(200.0, 3000.0, seconds=0.5, sample_rate=sr) + np.float32(0.01)  # no zeros
    n = x.size
    params = DelayParams(seconds=0.1, side=side)
    k = round(0.1 * sr)
    y = FAM.apply(x, sr, params)
    assert y.shape == x.shape and y.dtype == np.float32
    if side == "start":  # silence first, the audio later, its end cut
        assert np.all(y[:k] == 0) and np.array_equal(y[k:], x[: n - k])
    else:  # the audio earlier, its start cut, silence at the end
        assert np.all(y[n - k :] == 0) and np.array_equal(y[: n - k], x[k:])
    assert int(np.sum(y == 0)) == k


def test_rho_zero_is_the_identity_and_long_delay_is_silence():
    x = chirp(seconds=0.2, sample_rate=16000)
    for side in ("start", "end"):
        assert np.array_equal(FAM.apply(x, 16000, DelayParams(seconds=0.0, side=side)), x)
        y = FAM.apply(x, 16000, DelayParams(seconds=0.25, side=side))  # longer than the clip
        assert y.shape == x.shape and np.all(y == 0)


def test_replay_json_and_bad_side():
    x = chirp(seconds=0.5, sample_rate=16000)
    params = FAM.sample(np.random.default_rng(9), 70)
    again = FAM.params_from_dict(json.loads(params.to_json()))
    assert again == params
    assert np.array_equal(FAM.apply(x, 16000, params), FAM.apply(x, 16000, again))
    with pytest.raises(PerturbationError, match="side"):
        FAM.apply(x, 16000, DelayParams(seconds=0.1, side="middle"))
