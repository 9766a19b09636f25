"""The codec suite (aac, opus, vorbis, gsm, amr_nb): length and alignment kept at four rates,
degradation growing with strength, settings and engine recorded, replay, bad params."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import soundfile as sf

from pamflow.audio import codecs, ffmpeg, resample
from pamflow.audio.dsp import measure_lag
from pamflow.measures.spectral import log_spectral_distance
from pamflow.perturbations import PerturbationError, get
from pamflow.testing import speech_like

SUITE = ("aac", "opus", "vorbis", "gsm", "amr_nb")
#: codecs that code at 8 kHz whatever the clip's rate
NARROWBAND = ("gsm", "amr_nb")


def _coded(name: str, x: np.ndarray, sr: int, strength: float) -> np.ndarray:
    fam = get(name)
    return fam.apply(x, sr, fam.sample(np.random.default_rng(0), strength))


@pytest.mark.parametrize("sr", [16000, 22050, 44100, 48000])
@pytest.mark.parametrize("name", SUITE)
def test_length_kept_and_no_lag(name, sr):
    x = speech_like(1.0, sr, seed=2)
    y = _coded(name, x, sr, 50.0)
    assert y.shape == x.shape and y.dtype == np.float32
    lag, corr = measure_lag(x, y, 200, signed=True)
    # speech coders (GSM, AMR-NB, Opus's SILK layer below ~30 kb/s) keep the phase to
    # within a sample at 8 kHz; transform coders (AAC, Vorbis) exactly
    tolerance = sr // 8000 if name in (*NARROWBAND, "opus") else 0
    assert abs(lag) <= tolerance, (name, sr, lag, corr)
    assert corr > 0.3


@pytest.mark.parametrize("name", SUITE)
def test_degradation_grows_with_strength(name):
    sr = 16000
    x = speech_like(2.0, sr, seed=1)
    # narrowband codecs remove everything above 4 kHz at every strength: compare in band
    rate = 8000 if name in NARROWBAND else sr
    ref = resample(x, sr, rate)
    d = [
        log_spectral_distance(ref, resample(_coded(name, x, sr, s), sr, rate), rate)
        for s in (0.0, 50.0, 100.0)
    ]
    assert d[0] < d[1] < d[2], (name, d)


@pytest.mark.parametrize("name", SUITE)
def test_params_record_engine_and_replay_bit_for_bit(name):
    fam = get(name)
    params = fam.sample(np.random.default_rng(4), 70.0)
    stored = json.loads(params.to_json())
    assert stored["engine"] in ("ffmpeg", "libsndfile")
    x = speech_like(0.5, 16000, seed=3)
    again = fam.params_from_dict(stored)
    assert again == params
    assert np.array_equal(fam.apply(x, 16000, params), fam.apply(x, 16000, again))


def test_strength_mappings():
    assert get("aac").sample(np.random.default_rng(0), 0).bitrate_kbps == 128
    assert get("aac").sample(np.random.default_rng(0), 100).bitrate_kbps == 8
    assert get("opus").value(100) == pytest.approx(6.0)
    assert get("vorbis").value(0) == 1.0 and get("vorbis").value(100) == 0.0
    assert [get("gsm").sample(np.random.default_rng(0), s).passes for s in (0, 50, 100)] == [
        1,
        4,
        8,
    ]
    modes = [get("amr_nb").sample(np.random.default_rng(0), s).mode_kbps for s in (0, 100)]
    assert modes == [12.2, 4.75]


def test_opus_bitrate_follows_the_asked_one():
    """libsndfile maps its compression level onto Opus's bitrate; pamflow inverts that map
    (``opus_level``): the coded stream's size shows it holds."""
    sr, seconds = 16000, 6.0
    x = (0.1 * np.random.default_rng(0).standard_normal(int(sr * seconds))).astype(np.float32)
    for kbps in (16.0, 48.0, 128.0):
        buf = io.BytesIO()
        sf.write(
            buf, x, sr, format="OGG", subtype="OPUS", compression_level=codecs.opus_level(kbps)
        )
        measured = buf.tell() * 8 / seconds / 1000
        assert measured == pytest.approx(kbps, rel=0.15), (kbps, measured)


def test_ffmpeg_codec_delay_is_measured_once_and_trimmed():
    exe = ffmpeg.ffmpeg_exe()
    codec = codecs.aac(32)
    codecs.ffmpeg_codec_delay.cache_clear()
    delay = codecs.ffmpeg_codec_delay(exe, codec, 16000)
    assert 1024 <= delay <= 4096  # AAC's 1024 samples of priming, at least
    assert codecs.ffmpeg_codec_delay(exe, codec, 16000) == delay
    assert codecs.ffmpeg_codec_delay.cache_info().hits >= 1


def test_codec_rate_rule():
    assert codecs.codec_rate(16000, codecs.OPUS_RATES) == 16000
    assert codecs.codec_rate(44100, codecs.OPUS_RATES) == 48000
    assert codecs.codec_rate(22050, codecs.OPUS_RATES) == 24000
    assert codecs.codec_rate(96000, codecs.OPUS_RATES) == 48000


@pytest.mark.parametrize(
    ("name", "data", "match"),
    [
        ("aac", {"bitrate_kbps": 2}, "aac: bitrate_kbps must be in"),
        ("opus", {"bitrate_kbps": 500.0}, "opus: bitrate_kbps must be in"),
        ("vorbis", {"quality": 1.5}, "vorbis: quality must be in"),
        ("gsm", {"passes": 2.5}, "gsm: passes must be a whole number"),
        ("amr_nb", {"mode_kbps": 9.0}, "amr_nb: mode_kbps must be one of"),
        ("opus", {"bitrate_kbps": 12.0, "engine": "ffmpeg"}, "opus: engine must be one of"),
    ],
)
def test_bad_params_are_refused_naming_the_field(name, data, match):
    fam = get(name)
    with pytest.raises(PerturbationError, match=match):
        fam.apply(np.zeros(1600, np.float32), 16000, fam.params_from_dict(data))
