"""espeak-ng speech through pamflow's own ctypes bindings."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from pamflow.corpus.demo.speech import SAMPLE_RATE, SPEAKERS, SpeechError, list_variants, synthesize

TEXT = "The birch canoe slid on the smooth planks."


def _median_f0(x: np.ndarray, sr: int) -> float:
    """Median pitch (Hz) over loud 40 ms frames, from the autocorrelation peak in 60..400 Hz."""
    n = int(0.04 * sr)
    frames = x[: x.size // n * n].reshape(-1, n).astype(np.float64)
    loud = frames[
        np.sqrt(np.mean(frames**2, axis=1)) > 0.6 * np.sqrt(np.mean(x.astype(np.float64) ** 2))
    ]
    lo, hi = int(sr / 400), int(sr / 60)
    f0 = []
    for fr in loud:
        fr = fr - fr.mean()
        ac = np.correlate(fr, fr, "full")[n - 1 :]
        lag = lo + int(np.argmax(ac[lo:hi]))
        if ac[lag] > 0.3 * ac[0]:
            f0.append(sr / lag)
    return float(np.median(f0))


def test_synthesize_gives_float32_speech_at_espeak_rate():
    audio, sr = synthesize(TEXT)
    assert sr == SAMPLE_RATE == 22050
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert 1.0 < audio.size / sr < 5.0  # a 9-word sentence at 175 words/min
    assert np.all(np.abs(audio) < 1.0)
    rms_db = 20 * np.log10(np.sqrt(np.mean(audio.astype(np.float64) ** 2)))
    assert rms_db > -35.0
    # int16 samples from espeak, scaled exactly by 1/32768
    assert np.array_equal(audio * 32768, np.round(audio * 32768))


def test_synthesize_is_deterministic_even_after_other_utterances():
    first, _ = synthesize(TEXT, "en+m1")
    synthesize("Something else entirely, said by someone else.", "en+f1", rate=220, pitch=80)
    again, _ = synthesize(TEXT, "en+m1")
    # espeak keeps hidden state between utterances; each call must start from scratch
    assert np.array_equal(first, again)


def test_synthesize_is_deterministic_across_processes():
    audio, _ = synthesize(TEXT, "en-us+m3", rate=180)
    code = (
        "import hashlib; from pamflow.corpus.demo.speech import synthesize; "
        f"a, _ = synthesize({TEXT!r}, 'en-us+m3', rate=180); "
        "print(hashlib.sha256(a.tobytes()).hexdigest())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == hashlib.sha256(audio.tobytes()).hexdigest()


def test_voices_rate_and_pitch_change_the_audio():
    male, sr = synthesize(TEXT, "en+m1")
    female, _ = synthesize(TEXT, "en+f1")
    assert not np.array_equal(
        male[: min(male.size, female.size)], female[: min(male.size, female.size)]
    )
    assert _median_f0(female, sr) > 1.3 * _median_f0(male, sr)
    slow, _ = synthesize(TEXT, "en+m1", rate=120)
    fast, _ = synthesize(TEXT, "en+m1", rate=260)
    assert slow.size > 1.5 * fast.size
    low, _ = synthesize(TEXT, "en+m1", pitch=20)
    high, _ = synthesize(TEXT, "en+m1", pitch=80)
    assert _median_f0(high, sr) > 1.2 * _median_f0(low, sr)


def test_volume_scales_the_amplitude():
    loud, _ = synthesize(TEXT, volume=100)
    quiet, _ = synthesize(TEXT, volume=50)
    ratio = np.sqrt(np.mean(quiet.astype(np.float64) ** 2) / np.mean(loud.astype(np.float64) ** 2))
    assert 0.4 < ratio < 0.6


def test_concurrent_calls_are_serialised_and_still_deterministic():
    jobs = [(TEXT, "en+m1"), ("Help the woman get back to her feet.", "en+f1")] * 4
    serial = [synthesize(t, v)[0] for t, v in jobs]
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(lambda job: synthesize(*job)[0], jobs))
    for a, b in zip(serial, parallel, strict=True):
        assert np.array_equal(a, b)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"text": "hello", "voice": "zz+nothing"}, "voice 'zz\\+nothing'"),
        ({"text": "   "}, "non-empty"),
        ({"text": "hello", "rate": 20}, "rate 20"),
        ({"text": "hello", "pitch": 101}, "pitch 101"),
        ({"text": "hello", "volume": -1}, "volume -1"),
    ],
)
def test_bad_requests_raise_clear_errors(kwargs, match):
    with pytest.raises(SpeechError, match=match):
        synthesize(**kwargs)


def test_demo_speakers_are_distinct_and_valid():
    assert len(SPEAKERS) >= 6
    assert len({s.id for s in SPEAKERS}) == len(SPEAKERS)
    assert len({(s.voice, s.rate, s.pitch) for s in SPEAKERS}) == len(SPEAKERS)
    variants = set(list_variants())
    assert {"m1", "f1"} <= variants
    for s in SPEAKERS:
        assert s.voice.split("+")[1] in variants
        audio, _ = s.say("Hello.")
        assert np.max(np.abs(audio)) > 0.05


def test_survives_removal_of_its_private_library_copy():
    import shutil

    import pamflow.corpus.demo.speech as speech

    before, _ = synthesize("Hello there.")
    shutil.rmtree(speech._library._dir)  # e.g. a temp-folder cleaner
    after, _ = synthesize("Hello there.")
    assert np.array_equal(before, after)
