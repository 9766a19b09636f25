"""The faster code paths of issue 13 give the outputs of the plain formulas bit for bit, so
rows made before them replay unchanged: each is checked here against the plain version it
replaced (the family digests in tests/test_row_digests.py pin whole outputs)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import signal

from pamflow import measures
from pamflow.measures.levels import EPS, active_frames, select_active
from pamflow.perturbations import eq, noise
from pamflow.perturbations.alaw import A, alaw_requantise
from pamflow.perturbations.base import get
from pamflow.perturbations.mulaw import mulaw_requantise, quantise
from pamflow.testing import speech_like


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def _mulaw_plain(x, bits):
    x = np.clip(np.asarray(x, dtype=np.float64), -1.0, 1.0)
    mu = 2.0**bits - 1.0
    log_mu = math.log1p(mu)
    yq = quantise(np.sign(x) * np.log1p(mu * np.abs(x)) / log_mu, bits)
    return np.sign(yq) * np.expm1(np.abs(yq) * log_mu) / mu


def _alaw_plain(x, bits):
    ln_a1 = 1.0 + math.log(A)
    x = np.clip(np.asarray(x, dtype=np.float64), -1.0, 1.0)
    ax = np.abs(x)
    y = np.sign(x) * np.where(ax < 1.0 / A, A * ax, 1.0 + np.log(np.maximum(A * ax, 1.0))) / ln_a1
    yq = quantise(y, bits)
    ay = np.abs(yq) * ln_a1
    return np.sign(yq) * np.where(ay < 1.0, ay / A, np.exp(np.minimum(ay, ln_a1) - 1.0) / A)


def _inputs() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    edges = [0.0, -0.0, 1.0, -1.0, 1.5, -2.0, np.inf, -np.inf, 1e-40, -1e-40, -1e-12, 0.5]
    tiny = np.exp(rng.uniform(-40, 0, 3000)) * rng.choice([-1, 1], 3000)
    return [
        np.concatenate([edges, rng.standard_normal(5000) * 0.3]),
        tiny.astype(np.float32),
        rng.uniform(-1, 1, 7),  # fewer samples than levels: the per-sample path
    ]


@pytest.mark.parametrize("bits", [1.0, 2.5, 8.0, 11.3, 16.0, 30.0, 52.0, 60.0])
def test_mulaw_and_alaw_match_the_per_sample_formulas(bits):
    for x in _inputs():
        assert _same_bits(mulaw_requantise(x, bits), _mulaw_plain(x, bits))
        assert _same_bits(alaw_requantise(x, bits), _alaw_plain(x, bits))


def test_eq_filters_match_scipy_sosfiltfilt():
    rng = np.random.default_rng(1)
    for n in (2, 3, 16, 17, 1000, 4097):
        x = rng.standard_normal(n)
        for sr in (8000, 44100):
            for kind, f in (("lowpass", 500.0), ("highpass", 1000.0)):
                filt = eq._sos(kind, f, sr)
                pad = min(n - 1, 15)
                ours = eq._sosfiltfilt(filt, x, pad)
                assert _same_bits(ours, signal.sosfiltfilt(filt[0], x, padlen=pad))


def _rt60_plain(h, sr, decay_db=20.0):
    h = np.asarray(h, dtype=np.float64)
    edc = measures.schroeder_db(h[int(np.argmax(np.abs(h))) :])
    idx = np.nonzero((edc <= -5.0) & (edc >= -5.0 - decay_db))[0]
    if idx.size < 2:
        return float("nan")
    slope, _ = np.polyfit(idx / float(sr), edc[idx], 1)
    return float(-60.0 / slope) if slope < 0 else float("nan")


def test_rt60_matches_the_whole_decay_curve():
    rng = np.random.default_rng(2)
    for k in range(40):
        sr, rt = (8000, 16000, 44100)[k % 3], rng.uniform(0.02, 2.0)
        n = int(rng.integers(50, 40000))
        h = rng.standard_normal(n) * np.exp(-6.9 * np.arange(n) / sr / rt)
        if k % 4 == 0:
            h[: n // 3] = 0.0
        for decay in (10.0, 20.0, 30.0):
            a, b = measures.rt60(h, sr, decay_db=decay), _rt60_plain(h, sr, decay)
            assert a == b or (math.isnan(a) and math.isnan(b))
    assert math.isnan(measures.rt60(np.zeros(10), 16000))
    assert EPS > 0


def test_loop_segment_matches_the_gather_over_the_loop():
    rng = np.random.default_rng(3)
    for _ in range(300):
        rec = rng.standard_normal(int(rng.integers(1, 200))).astype(np.float32)
        start, n, fade = (
            int(rng.integers(0, 500)),
            int(rng.integers(1, 700)),
            int(rng.integers(0, 40)),
        )
        r = rec.astype(np.float64)
        c = min(fade, r.size // 4)
        unit = r[: r.size - c].copy()
        if c:
            phase = (np.arange(c) + 0.5) / c * (np.pi / 2)
            unit[:c] = r[:c] * np.sin(phase) + r[r.size - c :] * np.cos(phase)
        s = start % r.size
        want = r[s : s + n] if s + n <= r.size else unit[(s + np.arange(n)) % unit.size]
        assert _same_bits(noise.loop_segment(rec, start, n, fade), want)


def test_active_samples_gathered_by_frame_are_the_masked_ones():
    rng = np.random.default_rng(4)
    for k in range(200):
        n, sr = int(rng.integers(1, 3000)), (8000, 16000)[k % 2]
        x = rng.standard_normal(n) * np.repeat(rng.uniform(0, 1, n // 40 + 1) ** 8, 40)[:n]
        if k % 10 == 0:
            x[: n // 2] = 0.0
        v = rng.standard_normal(n)
        assert _same_bits(select_active(v, *active_frames(x, sr)), v[measures.active_mask(x, sr)])


@pytest.mark.parametrize("name", ["delay", "dropouts", "pops"])
def test_float32_families_scale_loud_input_as_in_float64(name):
    # these families now keep the input's float32 samples; beyond full scale the output is
    # scaled down in float32, which rounds as the float64 division did (a quotient of two
    # float32 values rounded to float64 then float32 rounds once: 53 >= 2 * 24 + 2)
    x = speech_like(seconds=1.0, sample_rate=16000, seed=2) * np.float32(6.0)
    fam = get(name)
    p = fam.sample(np.random.default_rng(5), 80.0)
    y = np.asarray(fam._apply(x, 16000, p, None), dtype=np.float64)
    assert np.max(np.abs(y)) > 1.0
    assert _same_bits(fam.apply(x, 16000, p), (y / np.max(np.abs(y))).astype(np.float32))


def test_gain_skips_the_output_pass_only_where_its_bound_allows():
    from pamflow.perturbations.gain import GainParams

    fam = get("gain")
    x = speech_like(seconds=0.5, sample_rate=16000, seed=3)
    x = x * np.float32(0.9 / np.max(np.abs(x)))
    for db in (-6.0, 0.0, 0.9, 6.0):
        y = x.astype(np.float64) * 10.0 ** (db / 20.0)  # the float64 product, as always
        peak = np.max(np.abs(y))
        want = (y / peak if peak > 1.0 else y).astype(np.float32)
        assert _same_bits(fam.apply(x, 16000, GainParams(gain_db=db)), want)
    assert not np.any(fam.apply(x, 16000, GainParams(gain_db=float("nan"))))  # NaN: silence
