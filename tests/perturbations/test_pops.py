"""Pops: share of popped samples, their values, nesting across strengths, replay."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pamflow.measures import si_sdr
from pamflow.perturbations import PerturbationError, get
from pamflow.perturbations.pops import PopsParams, pop_positions, popped_count
from pamflow.testing import speech_like

SR = 16000
FAM = get("pops")


def test_mapping_ends():
    assert FAM.category == "misc" and FAM.mapping == "exponential" and not FAM.clips
    assert FAM.value(0) == pytest.approx(0.01)
    assert FAM.value(100) == pytest.approx(10.0)
    assert FAM.value(50) == pytest.approx(np.sqrt(0.01 * 10.0))  # geometric midpoint
    rng = np.random.default_rng(0)
    assert FAM.sample(rng, 0).percent == pytest.approx(0.01)
    assert FAM.sample(rng, 100).percent == pytest.approx(10.0)


@pytest.mark.parametrize("rho", [0, 40, 100])
def test_exact_share_set_to_max_or_min(clip, rho):
    params = FAM.sample(np.random.default_rng(11), rho)
    y = FAM.apply(clip, SR, params)
    idx, positive = pop_positions(clip.size, params.percent, params.seed)
    k = int(round(clip.size * params.percent / 100))
    assert idx.size == k == popped_count(clip.size, params.percent)
    assert np.unique(idx).size == k
    assert np.all(y[idx[positive]] == clip.max())
    assert np.all(y[idx[~positive]] == clip.min())
    rest = np.ones(clip.size, dtype=bool)
    rest[idx] = False
    assert np.array_equal(y[rest], clip[rest])
    if rho == 100:  # 4000 pops: both signs, about half each
        assert 0.45 < positive.mean() < 0.55


def test_stronger_setting_pops_a_superset(clip):
    for seed in range(4):
        changed = []
        for rho in (10, 40, 70, 100):
            params = FAM.sample(np.random.default_rng(seed), rho)
            idx, positive = pop_positions(clip.size, params.percent, params.seed)
            changed.append(dict(zip(idx.tolist(), positive.tolist(), strict=True)))
        for weak, strong in zip(changed, changed[1:], strict=False):
            assert weak.keys() <= strong.keys()
            assert all(strong[i] == s for i, s in weak.items())  # same sign too
            assert len(strong) > len(weak)


def test_degradation_grows_with_rho(clip):
    def mean_sdr(rho):
        return np.mean(
            [si_sdr(clip, FAM.apply(clip, SR, FAM.sample(np.random.default_rng(s), rho)))
             for s in range(4)]
        )  # fmt: skip

    s0, s50, s100 = mean_sdr(0), mean_sdr(50), mean_sdr(100)
    assert s0 > s50 + 10 > s100 + 20
    # rho = 0 pops 4 of 40,000 samples: close to transparent (measured ~25 dB on speech)
    assert s0 > 20.0
    assert s100 < 0.0


def test_replay_and_json_round_trip(clip):
    params = FAM.sample(np.random.default_rng(5), 63)
    y = FAM.apply(clip, SR, params)
    assert y.dtype == np.float32 and y.shape == clip.shape
    assert np.array_equal(y, FAM.apply(clip, SR, params))
    again = FAM.params_from_dict(json.loads(params.to_json()))
    assert again == params
    assert np.array_equal(y, FAM.apply(clip, SR, again))
    other = FAM.apply(clip, SR, FAM.sample(np.random.default_rng(6), 63))
    assert not np.array_equal(y, other)  # another seed pops elsewhere


@pytest.mark.parametrize("sr", [16000, 22050, 44100, 48000])
def test_sample_rates(sr):
    x = speech_like(seconds=1.0, sample_rate=sr, seed=2)
    params = FAM.sample(np.random.default_rng(1), 80)
    y = FAM.apply(x, sr, params)
    assert y.shape == x.shape and y.dtype == np.float32
    idx, _ = pop_positions(x.size, params.percent, params.seed)
    assert idx.size == round(x.size * params.percent / 100)
    hit = (y == x.max()) | (y == x.min())
    assert np.all(hit[idx])


def test_bad_percent_is_named(clip):
    with pytest.raises(PerturbationError, match="percent"):
        FAM.apply(clip, SR, PopsParams(percent=150.0, seed=1))
