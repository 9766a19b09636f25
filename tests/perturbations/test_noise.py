"""Additive noise families: SNR mapping, SNR against active speech, spectra, corpus noises."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import soundfile as sf
from scipy import signal

from pamflow import measures
from pamflow.corpus.sources import Sources
from pamflow.perturbations import noise
from pamflow.perturbations.base import PerturbationError, get
from pamflow.testing import speech_like

SR = 16000
SYNTHETIC = ["white_noise", "pink_noise"]
CORPUS = {
    "applause_noise": "applause",
    "water_drop_noise": "water_drop",
    "room_noise": "room",
    "babble_noise": "babble",
    "corpus_noise": None,
}
ALL = SYNTHETIC + list(CORPUS)
BANK_SR = 22050
APPLAUSE_S = 0.7  # shorter than the clips: the applause noise has to loop


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> Sources:
    """Four small noise recordings made in code, at 22.05 kHz."""
    root = tmp_path_factory.mktemp("noises")
    rng = np.random.default_rng(0)
    n = int(3.0 * BANK_SR)
    drops = np.zeros(n)
    for pos in rng.integers(0, n - 400, size=60):
        drops[pos : pos + 400] += np.sin(2 * np.pi * 1200 * np.arange(400) / BANK_SR) * np.exp(
            -np.arange(400) / 60
        )
    recordings = {
        "applause": signal.lfilter(
            [1.0], [1.0, -0.5], rng.standard_normal(int(APPLAUSE_S * BANK_SR))
        ),
        "water_drop": drops + 1e-3 * rng.standard_normal(n),
        "room": signal.lfilter([1.0], [1.0, -0.98], rng.standard_normal(n)),
        "babble": sum(speech_like(3.0, BANK_SR, seed=s) for s in range(4)),
    }
    rows = []
    for label, audio in recordings.items():
        path = root / f"{label}.wav"
        audio = 0.3 * audio / np.max(np.abs(audio))
        sf.write(path, audio.astype(np.float32), BANK_SR, subtype="FLOAT")
        rows.append(
            {"id": f"noise/{label}.wav", "path": str(path), "kind": "noise", "label": label}
        )
    return Sources(rows)


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    return speech_like(seconds=2.0, sample_rate=SR, seed=3, level_db=-26.0)


def _run(name, x, rho, sources, seed=0, sr=SR):
    fam = get(name)
    params = fam.sample(np.random.default_rng(seed), rho, sources)
    return params, fam.apply(x, sr, params, sources)


@pytest.mark.parametrize("name", ALL)
def test_mapping_is_linear_in_db_from_66_to_2(name, sources):
    fam = get(name)
    assert fam.category == "additive" and fam.unit == "dB" and fam.mapping == "linear"
    assert fam.value(0) == 66.0 and fam.value(100) == 2.0 and fam.value(50) == pytest.approx(34.0)
    assert fam.needs_sources == (name in CORPUS)
    rng_params = [fam.sample(np.random.default_rng(1), rho, sources) for rho in (0, 100)]
    assert [p.snr_db for p in rng_params] == [66.0, 2.0]
    # moving along rho changes the SNR only: seed / recording / offset stay put
    a, b = (p.to_dict() for p in rng_params)
    a.pop("snr_db"), b.pop("snr_db")
    assert a == b


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("rho", [0, 40, 100])
def test_snr_against_active_speech_hits_target(name, rho, sources, clip):
    params, y = _run(name, clip, rho, sources, seed=rho)
    assert np.max(np.abs(y)) < 1.0  # not rescaled, so the SNR is measurable against clip
    assert measures.snr_db(clip, y, SR) == pytest.approx(params.snr_db, abs=0.1)


@pytest.mark.parametrize("name", ["white_noise", "room_noise"])
def test_snr_ignores_pauses(name, sources):
    """Half the clip is silence: the speech-weighted SNR is on target, the plain SNR over
    the whole clip is lower by about the silent half (3 dB) for a stationary noise."""
    speech = speech_like(seconds=1.0, sample_rate=SR, seed=5, level_db=-26.0)
    x = np.concatenate([speech, np.zeros(SR, np.float32)])
    params, y = _run(name, x, 50, sources)
    assert measures.snr_db(x, y, SR) == pytest.approx(params.snr_db, abs=0.1)
    active = measures.active_mask(x, SR).mean()
    global_snr = measures.snr_db(x, y)
    assert global_snr == pytest.approx(params.snr_db + 10 * np.log10(active), abs=1.0)


@pytest.mark.parametrize("name", ["white_noise", "babble_noise"])
def test_other_sample_rate(name, sources):
    x = speech_like(seconds=1.0, sample_rate=48000, seed=2, level_db=-26.0)
    params, y = _run(name, x, 70, sources, sr=48000)
    assert measures.snr_db(x, y, 48000) == pytest.approx(params.snr_db, abs=0.1)


@pytest.mark.parametrize("name", ALL)
def test_silent_input_is_returned_unchanged(name, sources):
    x = np.zeros(SR // 2, np.float32)
    _, y = _run(name, x, 100, sources)
    assert np.array_equal(y, x)


@pytest.mark.parametrize("name", ALL)
def test_degradation_grows_with_rho(name, sources, clip):
    sdr = {
        rho: np.mean(
            [measures.si_sdr(clip, _run(name, clip, rho, sources, seed=s)[1]) for s in range(3)]
        )
        for rho in (0, 50, 100)
    }
    assert sdr[0] > 40.0, f"{name}: SI-SDR {sdr[0]:.1f} dB at 66 dB SNR"
    assert sdr[0] > sdr[50] + 20 > sdr[100] + 40


@pytest.mark.parametrize("name", ALL)
def test_replay_from_params_and_json(name, sources, clip):
    fam = get(name)
    params, y = _run(name, clip, 60, sources, seed=11)
    assert np.array_equal(y, fam.apply(clip, SR, params, sources))
    again = fam.params_from_dict(json.loads(params.to_json()))
    assert again == params and np.array_equal(y, fam.apply(clip, SR, again, sources))
    assert pickle.loads(pickle.dumps(params)) == params
    assert y.dtype == np.float32 and y.shape == clip.shape


@pytest.mark.parametrize("name", SYNTHETIC)
def test_seed_is_drawn_and_decides_the_noise(name, clip):
    p0, y0 = _run(name, clip, 80, None, seed=0)
    p1, y1 = _run(name, clip, 80, None, seed=1)
    assert p0.seed != p1.seed and not np.allclose(y0, y1)
    assert np.array_equal(noise.white(100, p0.seed), noise.white(100, p0.seed))


def _slope_db_per_decade(x: np.ndarray) -> float:
    f, p = signal.welch(x, SR, nperseg=2048)
    sel = (f > 100) & (f < 6000)
    return float(np.polyfit(np.log10(f[sel]), 10 * np.log10(p[sel]), 1)[0])


def test_white_is_flat_and_pink_falls_3db_per_octave(clip):
    _, yw = _run("white_noise", clip, 100, None)
    _, yp = _run("pink_noise", clip, 100, None)
    assert abs(_slope_db_per_decade(yw - clip)) < 1.0
    assert _slope_db_per_decade(yp - clip) == pytest.approx(-10.0, abs=1.0)
    pink = noise.pink(SR, seed=4, sample_rate=SR)
    assert np.std(pink) == pytest.approx(1.0) and abs(np.mean(pink)) < 1e-9


@pytest.mark.parametrize("name", list(CORPUS))
def test_corpus_noise_records_an_existing_source_and_offset(name, sources):
    label = CORPUS[name]
    seen = set()
    for seed in range(12):
        p = get(name).sample(np.random.default_rng(seed), 30, sources)
        assert p.source_id in sources.ids("noise", label)
        duration = sources.load(p.source_id, SR).size / SR
        assert 0.0 <= p.offset_s < duration
        seen.add(p.source_id)
    if label is None:
        assert len(seen) > 1  # any label: more than one recording is drawn


def test_corpus_noise_reads_the_recording_from_its_offset(sources, clip):
    fam = get("room_noise")
    params = fam.params_type(snr_db=10.0, source_id="noise/room.wav", offset_s=0.5)
    y = fam.apply(clip, SR, params, sources).astype(np.float64)
    rec = sources.load("noise/room.wav", SR)[SR // 2 : SR // 2 + clip.size].astype(np.float64)
    added = y - clip
    gain = np.dot(added, rec) / np.dot(rec, rec)
    assert gain > 0 and np.max(np.abs(added - gain * rec)) < 1e-5


def test_short_recording_loops_with_a_crossfade(sources, clip):
    fam = get("applause_noise")
    params = fam.sample(np.random.default_rng(0), 100, sources)
    added = fam.apply(clip, SR, params, sources).astype(np.float64) - clip
    length = sources.load(params.source_id, SR).size
    period = length - int(round(noise.LOOP_CROSSFADE_S * SR))
    assert clip.size > 2 * period
    # the added noise repeats with the loop period, and has no click at the joints
    a, b = added[: clip.size - period], added[period:]
    assert np.max(np.abs(a - b)) < 1e-6 * np.max(np.abs(added))
    jumps = np.abs(np.diff(added))
    assert np.max(jumps) < 8 * np.std(jumps)


def test_loop_segment_fades_the_end_into_the_start():
    rec = np.arange(10, dtype=float)
    out = noise.loop_segment(rec, 7, 12, crossfade=2)
    phase = (np.arange(2) + 0.5) / 2 * (np.pi / 2)
    joint = rec[:2] * np.sin(phase) + rec[8:] * np.cos(phase)
    assert np.allclose(out, [7, *joint, 2, 3, 4, 5, 6, 7, *joint, 2])
    assert np.array_equal(noise.loop_segment(rec, 3, 5, crossfade=2), rec[3:8])  # no wrap


@pytest.mark.parametrize("name", ["water_drop_noise", "babble_noise"])
def test_missing_label_is_named(name, sources):
    rows = [sources.entry(i) for i in sources.ids("noise") if sources.entry(i)["label"] == "room"]
    only_room = Sources(rows)
    with pytest.raises(PerturbationError, match=CORPUS[name]):
        get(name).sample(np.random.default_rng(0), 50, only_room)
    with pytest.raises(PerturbationError, match="any label"):
        get("corpus_noise").sample(np.random.default_rng(0), 50, Sources([]))


@pytest.mark.slow
def test_demo_corpus_noises():
    from pamflow.corpus.sources import default_sources

    demo = default_sources()
    x = speech_like(seconds=2.5, sample_rate=SR, seed=9, level_db=-26.0)
    for name in ALL:
        params, y = _run(name, x, 30, demo, seed=4)
        if name in CORPUS:
            assert params.source_id in demo.ids("noise", CORPUS[name])
        assert measures.snr_db(x, y, SR) == pytest.approx(params.snr_db, abs=0.1), name
