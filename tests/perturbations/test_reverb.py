"""Reverb families: DRR and RT60 hit their targets on the RIR applied, alignment, replay."""

from __future__ import annotations

import json
import math
import pickle
from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf
from scipy import signal

from pamflow import measures
from pamflow.corpus.sources import Sources
from pamflow.perturbations import reverb
from pamflow.perturbations.base import PerturbationError, fit_full_scale, get
from pamflow.testing import speech_like

SR = 16000
BANK_SR = 22050
BANK_RT60 = (0.1, 0.2, 0.4, 0.7, 1.0, 1.5)
DRY = (0.3, 14.0)  # one more bank RIR: a dry room (RT60 0.3 s, DRR 14 dB) as rir/6.wav


def _bank_rir(rt60: float, drr_db: float, seed: int) -> np.ndarray:
    """10 ms of silence, a unit direct impulse, 3 ms of nothing, then a lowpassed
    exponentially decaying noise tail; the polarity of the direct alternates."""
    rng = np.random.default_rng(seed)
    pre, gap = 221, int(0.003 * BANK_SR)
    n = int(max(0.3, 1.2 * rt60) * BANK_SR)
    t = np.arange(n) / BANK_SR
    tail = rng.standard_normal(n) * np.exp(-3 * math.log(10) / rt60 * t)
    tail = signal.lfilter(*signal.butter(2, 5000, fs=BANK_SR), tail)
    tail[:gap] = 0.0
    tail *= math.sqrt(10 ** (-drr_db / 10) / np.sum(tail**2))
    h = np.concatenate([np.zeros(pre), tail])
    h[pre] = 1.0 if seed % 2 == 0 else -1.0
    return h


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> Sources:
    root = tmp_path_factory.mktemp("rirs")
    rows = []
    for k, (rt, drr) in enumerate([*((rt, 3.0) for rt in BANK_RT60), DRY]):
        h = _bank_rir(rt, drr, seed=k)
        path = root / f"rir{k}.wav"
        sf.write(path, (0.9 * h).astype(np.float32), BANK_SR, subtype="FLOAT")
        rows.append({"id": f"rir/{k}.wav", "path": str(path), "kind": "rir", "label": "test",
                     "rt60_s": measures.rt60(h, BANK_SR), "drr_db": measures.drr_db(h, BANK_SR)})  # fmt: skip
    return Sources(rows)


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    return speech_like(seconds=1.5, sample_rate=SR, seed=4, level_db=-30.0)


def _drr_at_direct(h: np.ndarray, sr: int) -> float:
    """DRR with the direct path known to sit at index w (the module's contract)."""
    w = measures.direct_window(sr)
    return 10 * math.log10(np.sum(h[: 2 * w + 1] ** 2) / np.sum(h[2 * w + 1 :] ** 2))


def _sample(name, rho, sources, seed=0):
    return get(name).sample(np.random.default_rng(seed), rho, sources)


def test_mappings_at_both_ends(sources):
    drr, rt = get("reverb_drr"), get("reverb_rt60")
    assert (drr.category, rt.category) == ("reverb", "reverb")
    assert drr.needs_sources and rt.needs_sources
    assert drr.value(0) == 65.0 and drr.value(100) == -27.0 and drr.value(50) == pytest.approx(19.0)
    assert rt.value(0) == pytest.approx(0.05) and rt.value(100) == pytest.approx(8.0)
    assert rt.value(50) == pytest.approx(math.sqrt(0.05 * 8.0))  # exponential
    assert [_sample("reverb_drr", r, sources).drr_db for r in (0, 100)] == [65.0, -27.0]
    assert [_sample("reverb_rt60", r, sources).rt60_s for r in (0, 100)] == pytest.approx(
        [0.05, 8.0]
    )


def test_same_draws_whatever_the_strength(sources):
    ids = {_sample("reverb_drr", r, sources, seed=7).rir_id for r in (0, 30, 100)}
    assert len(ids) == 1
    seeds = {_sample("reverb_rt60", r, sources, seed=7).seed for r in (0, 30, 100)}
    assert len(seeds) == 1


@pytest.mark.parametrize("rho", [0, 25, 50, 75, 100])
def test_drr_hits_target_on_the_rir(rho, sources):
    for seed in range(3):
        params = _sample("reverb_drr", rho, sources, seed)
        h = reverb.build_rir(params, SR, sources)
        w = measures.direct_window(SR)
        assert np.argmax(np.abs(h[: 2 * w + 1])) == w
        assert _drr_at_direct(h, SR) == pytest.approx(params.drr_db, abs=0.1)
        if np.argmax(np.abs(h)) == w:  # measures.drr_db finds the direct path
            assert measures.drr_db(h, SR) == pytest.approx(params.drr_db, abs=0.1)
        elif params.drr_db >= 0:
            pytest.fail(f"a tail sample outgrew the direct path at DRR {params.drr_db} dB")


def test_drr_changes_the_tail_only(sources):
    w = measures.direct_window(SR)
    rirs = [reverb.build_rir(reverb.DrrParams(d, "rir/3.wav"), SR, sources) for d in (40.0, 0.0)]
    assert np.array_equal(rirs[0][: 2 * w + 1], rirs[1][: 2 * w + 1])
    ratio = rirs[1][2 * w + 1 :] / rirs[0][2 * w + 1 :]
    finite = np.isfinite(ratio)
    assert np.allclose(ratio[finite], 100.0)  # 40 dB more tail energy, same shape


@pytest.mark.parametrize("sr", [SR, 44100])
def test_rt60_hits_target_across_the_range(sr, sources):
    fam = get("reverb_rt60")
    rhos = np.linspace(0, 100, 9) if sr == SR else [0, 100]
    for rho in rhos:
        for seed in range(3):
            params = fam.sample(np.random.default_rng(seed), rho, sources)
            h = reverb.build_rir(params, sr, sources)
            measured = measures.rt60(h, sr)
            assert measured == pytest.approx(params.rt60_s, rel=0.15), (rho, params)
            # the RIR runs until its decay reaches -60 dB
            assert h.size >= 0.99 * params.rt60_s * sr


def test_rt60_draws_among_the_closest_bank_rirs(sources):
    for rho, expected in ((0, {"rir/0.wav", "rir/1.wav", "rir/6.wav"}),
                          (100, {"rir/3.wav", "rir/4.wav", "rir/5.wav"})):  # fmt: skip
        got = {_sample("reverb_rt60", rho, sources, seed).rir_id for seed in range(20)}
        assert got == expected


def test_rt60_keeps_the_direct_path_and_a_nearby_drr(sources):
    w = measures.direct_window(SR)
    bank = reverb.prepared_rir(sources, "rir/3.wav", SR)
    bank_rt = measures.rt60(bank[2 * w + 1 :], SR)
    drrs = []
    for target in (0.35, 0.7, 1.4, 4.0):
        h = reverb.build_rir(reverb.Rt60Params(target, "rir/3.wav", 5), SR, sources)
        assert np.array_equal(h[: 2 * w + 1], bank[: 2 * w + 1])
        drrs.append(_drr_at_direct(h, SR))
        expected = _drr_at_direct(bank, SR) + 10 * math.log10(bank_rt / target)
        assert drrs[-1] == pytest.approx(expected, abs=1.5)
    assert all(a > b for a, b in zip(drrs, drrs[1:], strict=False))


def test_rt60_caps_the_drr_of_a_dry_room(sources):
    """The dry bank RIR keeps at most 10 dB of DRR, so its decay stays measurable."""
    bank = reverb.prepared_rir(sources, "rir/6.wav", SR)
    assert _drr_at_direct(bank, SR) > 12.0
    for target in (0.05, 0.3):
        h = reverb.build_rir(reverb.Rt60Params(target, "rir/6.wav", 1), SR, sources)
        assert _drr_at_direct(h, SR) == pytest.approx(reverb.RT60_MAX_DRR_DB, abs=0.01)
        assert measures.rt60(h, SR) == pytest.approx(target, rel=0.15)


def test_long_rt60_continues_the_tail_smoothly(sources):
    params = reverb.Rt60Params(8.0, "rir/5.wav", 3)
    h = reverb.build_rir(params, SR, sources)
    bank = reverb.prepared_rir(sources, "rir/5.wav", SR)
    assert h.size > 2 * bank.size  # the bank RIR was extended
    # the energy envelope (50 ms frames) is a straight line in dB: no step at the joint
    frame = SR // 20
    frames = h[frame : (h.size // frame) * frame].reshape(-1, frame)
    env_db = 10 * np.log10(np.mean(frames**2, axis=1))
    t = np.arange(env_db.size)
    keep = env_db > env_db[0] - 50
    fit = np.polyval(np.polyfit(t[keep], env_db[keep], 1), t[keep])
    assert np.max(np.abs(env_db[keep] - fit)) < 2.0

    # the continuation keeps the bank tail's spectral balance (lowpassed at 5 kHz)
    def hf_ratio_db(x):
        f, p = signal.welch(x, SR, nperseg=512)
        return 10 * np.log10(p[f > 6500].mean() / p[(f > 200) & (f < 3000)].mean())

    assert hf_ratio_db(h[3 * SR : 4 * SR]) == pytest.approx(hf_ratio_db(bank[SR // 10 :]), abs=4)


@pytest.mark.parametrize("name,rho", [("reverb_drr", 0), ("reverb_drr", 50), ("reverb_rt60", 0),
                                      ("reverb_rt60", 50)])  # fmt: skip
def test_output_is_aligned_on_the_direct_path(name, rho, sources, clip):
    for seed in range(2):
        params = _sample(name, rho, sources, seed)
        y = get(name).apply(clip, SR, params, sources).astype(np.float64)
        xc = signal.correlate(y, clip, mode="full", method="fft")
        assert int(np.argmax(xc)) - (clip.size - 1) == 0  # lag 0, positive polarity


def test_drr_65_db_is_nearly_transparent_at_the_input_level(sources, clip):
    for seed in range(3):
        params = _sample("reverb_drr", 0, sources, seed)
        y = get("reverb_drr").apply(clip, SR, params, sources).astype(np.float64)
        assert measures.si_sdr(clip, y) > 30.0
        # the direct path keeps the input's level (no loudness normalisation)
        assert np.dot(y, clip) / np.dot(clip, clip) == pytest.approx(1.0, abs=0.02)


@pytest.mark.parametrize("name", ["reverb_drr", "reverb_rt60"])
def test_degradation_grows_with_rho(name, sources, clip):
    fam = get(name)
    sdr = {}
    for rho in (0, 50, 100):
        ys = [fam.apply(clip, SR, _sample(name, rho, sources, s), sources) for s in range(3)]
        sdr[rho] = np.mean([measures.si_sdr(clip, y) for y in ys])
    assert sdr[0] > sdr[50] + 3 > sdr[100] + 6, sdr
    assert sdr[0] > (30.0 if name == "reverb_drr" else 5.0), sdr


@pytest.mark.parametrize("name", ["reverb_drr", "reverb_rt60"])
def test_replay_from_params_and_json(name, sources, clip):
    fam = get(name)
    params = _sample(name, 70, sources, seed=2)
    y = fam.apply(clip, SR, params, sources)
    assert y.dtype == np.float32 and y.shape == clip.shape and np.max(np.abs(y)) <= 1.0
    assert np.array_equal(y, fam.apply(clip, SR, params, sources))
    again = fam.params_from_dict(json.loads(params.to_json()))
    assert again == params and np.array_equal(y, fam.apply(clip, SR, again, sources))
    assert pickle.loads(pickle.dumps(params)) == params
    assert params.rir_id in sources.ids("rir")


def test_errors_name_the_problem(sources, clip):
    with pytest.raises(PerturbationError, match="no RIR"):
        get("reverb_drr").sample(np.random.default_rng(0), 10, Sources([]))
    with pytest.raises(PerturbationError, match="no RIR"):
        get("reverb_rt60").sample(np.random.default_rng(0), 10, Sources([]))
    with pytest.raises(PerturbationError, match="rir/missing.wav"):
        get("reverb_drr").apply(clip, SR, reverb.DrrParams(10.0, "rir/missing.wav"), sources)


def test_engines_agree_and_new_rows_record_float32(sources, clip):
    # issue 13: new rows convolve in float32; rows without an engine replay in float64
    for name, rho in (("reverb_drr", 0.0), ("reverb_drr", 90.0), ("reverb_rt60", 60.0)):
        p = _sample(name, rho, sources)
        assert p.engine == "float32"
        old = replace(p, engine="float64")
        assert (
            get(name).params_from_dict({k: v for k, v in p.to_dict().items() if k != "engine"})
            == old
        )
        y32, y64 = get(name).apply(clip, SR, p, sources), get(name).apply(clip, SR, old, sources)
        err = np.sqrt(
            np.mean((y32.astype(np.float64) - y64) ** 2) / np.mean(y64.astype(np.float64) ** 2)
        )
        assert 0.0 < err < 1e-5  # different rounding, -100 dB or less of the level
        assert np.array_equal(y64, get(name).apply(clip, SR, old, sources))
        plain = reverb.convolve_aligned(clip, reverb.build_rir(old, SR, sources), SR)
        assert np.array_equal(y64, fit_full_scale(plain))
    with pytest.raises(PerturbationError, match="engine must be one of"):
        get("reverb_drr").apply(
            clip, SR, replace(_sample("reverb_drr", 5, sources), engine="x"), sources
        )


@pytest.mark.slow
def test_demo_bank():
    from pamflow.corpus.sources import default_sources

    demo = default_sources()
    x = speech_like(seconds=2.5, sample_rate=SR, seed=9, level_db=-30.0)
    for rho in (0, 50, 100):
        for seed in range(2):
            p = _sample("reverb_rt60", rho, demo, seed)
            assert measures.rt60(reverb.build_rir(p, SR, demo), SR) == pytest.approx(
                p.rt60_s, rel=0.15
            )
            q = _sample("reverb_drr", rho, demo, seed)
            assert _drr_at_direct(reverb.build_rir(q, SR, demo), SR) == pytest.approx(
                q.drr_db, abs=0.1
            )
            for fam, params in (("reverb_rt60", p), ("reverb_drr", q)):
                y = get(fam).apply(x, SR, params, demo)
                assert y.shape == x.shape and np.all(np.isfinite(y))
    y0 = get("reverb_drr").apply(x, SR, _sample("reverb_drr", 0, demo), demo)
    assert measures.si_sdr(x, y0) > 25.0
