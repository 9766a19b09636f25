"""Dropouts: exact dropped share, packet-like runs of 5..40 ms, nesting, replay."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pamflow.measures import si_sdr
from pamflow.perturbations import PerturbationError, get
from pamflow.perturbations.dropouts import (
    DropoutsParams,
    dropout_mask,
    dropout_runs,
    dropped_count,
    run_bounds,
)
from pamflow.testing import chirp

SR = 16000
FAM = get("dropouts")


def no_zero_signal(n: int, seed: int = 0) -> np.ndarray:
    """Random samples with |x| >= 0.05: every exact zero in an output was dropped."""
    g = np.random.default_rng(seed)
    return (g.uniform(0.05, 0.5, n) * g.choice([-1.0, 1.0], n)).astype(np.float32)


def zero_runs(y: np.ndarray) -> list[tuple[int, int]]:
    """(start, length) of the maximal runs of exact zeros in ``y``."""
    z = np.concatenate([[0], (y == 0).astype(np.int8), [0]])
    d = np.diff(z)
    starts, ends = np.nonzero(d == 1)[0], np.nonzero(d == -1)[0]
    return list(zip(starts.tolist(), (ends - starts).tolist(), strict=True))


def test_mapping_ends():
    assert FAM.category == "misc" and FAM.mapping == "exponential" and not FAM.clips
    assert FAM.value(0) == pytest.approx(0.01)
    assert FAM.value(100) == pytest.approx(20.0)
    assert FAM.value(50) == pytest.approx(np.sqrt(0.01 * 20.0))
    rng = np.random.default_rng(0)
    assert FAM.sample(rng, 0).percent == pytest.approx(0.01)
    assert FAM.sample(rng, 100).percent == pytest.approx(20.0)


@pytest.mark.parametrize("rho", [0, 35, 70, 100])
def test_exact_share_dropped_in_runs(rho):
    n = int(2.5 * SR)
    x = no_zero_signal(n)
    params = FAM.sample(np.random.default_rng(21), rho)
    y = FAM.apply(x, SR, params)
    target = int(round(n * params.percent / 100))
    assert target == dropped_count(n, params.percent)
    assert int(np.sum(y == 0)) == target  # exactly, the last run cut to fit
    kept = y != 0
    assert np.array_equal(y[kept], x[kept])  # hard edges: nothing else touched
    lo, hi = run_bounds(SR)
    assert (lo, hi) == (80, 640)  # 5 ms and 40 ms at 16 kHz
    runs = zero_runs(y)
    lengths = sorted(length for _, length in runs)
    assert all(length <= hi for length in lengths)
    # every run is a whole 5..40 ms slot but the one cut to fit the total
    assert sum(length < lo for length in lengths) <= 1
    starts = [s for s, _ in runs]
    gaps = np.diff(starts) - np.array([length for _, length in runs])[:-1]
    assert np.all(gaps >= lo)  # separate packets: runs never touch at up to 20 %


def test_runs_match_the_output(clip):
    params = FAM.sample(np.random.default_rng(4), 90)
    runs = dropout_runs(clip.size, SR, params.percent, params.seed)
    mask = dropout_mask(clip.size, SR, params.percent, params.seed)
    assert runs[:, 1].sum() == mask.sum() == dropped_count(clip.size, params.percent)
    y = FAM.apply(clip, SR, params)
    assert np.all(y[mask] == 0) and np.array_equal(y[~mask], clip[~mask])
    lo, hi = run_bounds(SR)
    assert np.all((runs[:-1, 1] >= lo) & (runs[:-1, 1] <= hi))
    assert 0 < runs[-1, 1] <= hi


def test_stronger_setting_drops_a_superset():
    n = int(2.5 * SR)
    for seed in range(4):
        masks = []
        for rho in (0, 20, 50, 80, 100):
            p = FAM.sample(np.random.default_rng(seed), rho)
            masks.append(dropout_mask(n, SR, p.percent, p.seed))
        for weak, strong in zip(masks, masks[1:], strict=False):
            assert np.all(strong[weak]) and strong.sum() > weak.sum()


def test_degradation_grows_with_rho():
    x = chirp(100.0, 4000.0, seconds=2.5, sample_rate=SR)  # no pauses for a run to hide in

    def mean_sdr(rho):
        return np.mean(
            [si_sdr(x, FAM.apply(x, SR, FAM.sample(np.random.default_rng(s), rho)))
             for s in range(4)]
        )  # fmt: skip

    s0, s50, s100 = mean_sdr(0), mean_sdr(50), mean_sdr(100)
    assert s0 > s50 + 5 > s100 + 10
    assert s0 > 30.0  # 4 samples of 40,000 dropped at rho = 0
    assert s100 < 15.0


def test_replay_and_json_round_trip(clip):
    params = FAM.sample(np.random.default_rng(5), 77)
    y = FAM.apply(clip, SR, params)
    assert y.dtype == np.float32 and y.shape == clip.shape
    assert np.array_equal(y, FAM.apply(clip, SR, params))
    again = FAM.params_from_dict(json.loads(params.to_json()))
    assert again == params and np.array_equal(y, FAM.apply(clip, SR, again))


@pytest.mark.parametrize("sr", [16000, 22050, 44100, 48000])
def test_sample_rates(sr):
    n = sr  # 1 s
    x = no_zero_signal(n, seed=1)
    params = FAM.sample(np.random.default_rng(2), 100)
    y = FAM.apply(x, sr, params)
    assert y.shape == x.shape and y.dtype == np.float32
    assert int(np.sum(y == 0)) == round(n * 0.2)
    lo, hi = run_bounds(sr)
    assert lo == round(0.005 * sr) and hi == round(0.040 * sr)
    assert all(length <= hi for _, length in zero_runs(y))


def test_short_clip_and_bad_percent():
    x = no_zero_signal(100)  # shorter than one slot: one run, cut to fit
    y = FAM.apply(x, SR, DropoutsParams(percent=20.0, seed=3))
    assert int(np.sum(y == 0)) == 20
    y = FAM.apply(x, SR, DropoutsParams(percent=100.0, seed=3))
    assert np.all(y == 0)
    with pytest.raises(PerturbationError, match="percent"):
        FAM.apply(x, SR, DropoutsParams(percent=-1.0, seed=3))
