"""ffmpeg helpers: decoding files, MP3 bitrate planning, aligned and batched round trips."""

from __future__ import annotations

import os
import subprocess
import tempfile

import numpy as np
import pytest
from scipy import signal

from pamflow.audio import AudioError, load
from pamflow.audio import ffmpeg as ff
from pamflow.testing import audio_bytes, chirp, lag_of, sine, speech_like


def music_like(seconds: float, sample_rate: int, seed: int) -> np.ndarray:
    """Decaying harmonic notes and a few noisy hits: a rough stand-in for music."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    y = np.zeros(n)
    for _ in range(8):
        f0, start = rng.uniform(110, 880), int(rng.uniform(0, 0.8 * seconds) * sample_rate)
        env = np.exp(-t[: n - start] * rng.uniform(2, 6))
        for h in range(1, 6):
            y[start:] += env * np.sin(2 * np.pi * f0 * h * t[: n - start]) / h
    for _ in range(4):
        start = int(rng.uniform(0, 0.9 * seconds) * sample_rate)
        hit = rng.standard_normal(min(800, n - start)) * np.exp(
            -np.arange(min(800, n - start)) / 150
        )
        y[start : start + hit.size] += 2 * hit
    return (0.3 * y / np.max(np.abs(y))).astype(np.float32)


def band_gain_db(x, y, sr, lo, hi):
    f, px = signal.welch(x, sr, nperseg=1024)
    _, py = signal.welch(y, sr, nperseg=1024)
    m = (f >= lo) & (f < hi)
    return 10 * np.log10(py[m].sum() / px[m].sum())


# -- planning ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sr", "asked", "planned"),
    [
        (16000, 320, (32000, 320)),  # MPEG-2 stops at 160: coded at twice the rate
        (16000, 16, (16000, 16)),
        (16000, 170, (16000, 160)),  # snapped first (log-nearest), then the rate chosen
        (16000, 180, (32000, 192)),
        (22050, 320, (44100, 320)),
        (44100, 8, (22050, 8)),  # MPEG-1 starts at 32: coded at half the rate
        (48000, 24, (24000, 24)),
        (44100, 144, (44100, 160)),  # 144 (MPEG-2 only) is not on the ladder
        (8000, 96, (16000, 96)),  # MPEG-2.5 stops at 64
        (8000, 320, (32000, 320)),
        (96000, 320, (48000, 320)),
        (12000, 11.0, (12000, 8)),
        (12000, 12.0, (12000, 16)),  # log midpoint of 8 and 16 is 11.3
    ],
)
def test_plan_mp3_examples(sr, asked, planned):
    assert ff.plan_mp3(sr, asked) == planned


@pytest.mark.parametrize("sr", [8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000, 96000])
def test_plan_mp3_is_always_legal_and_keeps_the_rate_when_it_can(sr):
    for asked in np.geomspace(5, 400, 60):
        rate, kbps = ff.plan_mp3(sr, asked)
        assert kbps in ff.legal_bitrates(rate)
        assert kbps == ff.snap_bitrate(asked)  # the ladder step does not depend on the rate
        if sr in ff.MP3_RATES and kbps in ff.legal_bitrates(sr):
            assert rate == sr
    with pytest.raises(ValueError, match="bitrate_kbps"):
        ff.plan_mp3(sr, 0)


@pytest.mark.parametrize(("rate", "kbps"), [(16000, 8), (16000, 160), (44100, 32), (32000, 320)])
def test_lame_codes_at_the_planned_bitrate(rate, kbps):
    # LAME would silently change an illegal bitrate: the byte count shows what it used
    seconds = 2.0
    x = (0.1 * np.random.default_rng(0).standard_normal((int(seconds * rate), 1))).astype("<f4")
    enc = ff._codec_cmds(ff.ffmpeg_exe(), rate, 1, kbps)[0]
    data = ff._pipeline([enc], x.tobytes(), "test")
    assert len(data) * 8 / seconds / 1000 == pytest.approx(kbps, rel=0.06)


# -- round trips ---------------------------------------------------------------------


@pytest.mark.parametrize("sr", [16000, 22050, 44100, 48000])
@pytest.mark.parametrize("kbps", [8, 16, 32, 64, 128, 320])
def test_mp3_roundtrip_is_sample_aligned(sr, kbps):
    for x in (speech_like(1.5, sr, seed=1), music_like(1.5, sr, seed=2)):
        y = ff.mp3_roundtrip(x, sr, kbps)
        assert y.shape == x.shape and y.dtype == np.float32
        assert lag_of(x, y) == 0
        assert np.corrcoef(x, y)[0, 1] > 0.8


def test_codec_delay_is_measured_once():
    exe = ff.ffmpeg_exe()
    ff.codec_delay.cache_clear()
    d = ff.codec_delay(exe, 16000, 32)
    # LAME's 576-sample encoder delay plus the decoder's 529, or 0 where ffmpeg trims it
    assert d in (0, 1105)
    assert ff.codec_delay(exe, 16000, 32) == d
    assert ff.codec_delay.cache_info().hits >= 1


def test_low_bitrates_band_limit_the_signal():
    sr = 16000
    w = (0.1 * np.random.default_rng(0).standard_normal(2 * sr)).astype(np.float32)
    y16, y8, y64 = (ff.mp3_roundtrip(w, sr, k) for k in (16, 8, 64))
    # 16 kb/s: LAME low-passes at about 5.5 kHz (measured: -97 dB above 6 kHz) and keeps
    # what is below (measured +0.4..+0.8 dB, LAME's 0.95 input scale included)
    assert band_gain_db(w, y16, sr, 6000, 8000) < -40
    assert abs(band_gain_db(w, y16, sr, 200, 4000)) < 1.5
    # 8 kb/s cuts at about 3 kHz (measured -99 dB above 3.5 kHz), 64 kb/s keeps 5..7 kHz
    assert band_gain_db(w, y8, sr, 3500, 8000) < -40
    assert abs(band_gain_db(w, y64, sr, 5000, 7000)) < 1.5


def test_lame_input_scale_is_kept():
    # LAME's presets scale the input by 0.95 up to 160 kb/s and by 1.0 from 256 kb/s
    x = sine(440, 1.0, 44100, 0.1)
    mid = slice(4000, -4000)
    for kbps, scale in ((64, 0.95), (160, 0.95), (320, 1.0)):
        y = ff.mp3_roundtrip(x, 44100, kbps)
        assert np.dot(x[mid], y[mid]) / np.dot(x[mid], x[mid]) == pytest.approx(scale, abs=0.005)


def test_roundtrip_is_deterministic_and_stereo_works():
    x = speech_like(1.0, 22050, seed=4)
    assert np.array_equal(ff.mp3_roundtrip(x, 22050, 24), ff.mp3_roundtrip(x, 22050, 24))
    st = np.stack([x, chirp(200, 6000, 1.0, 22050, 0.2)], axis=1)
    y = ff.mp3_roundtrip(st, 22050, 96)
    assert y.shape == st.shape and y.dtype == np.float32
    for c in range(2):
        assert lag_of(st[:, c], y[:, c]) == 0
        assert np.corrcoef(st[:, c], y[:, c])[0, 1] > 0.95


@pytest.mark.parametrize(("sr", "kbps"), [(16000, 16), (16000, 64), (44100, 128), (16000, 320)])
def test_batch_is_bit_identical_to_single_calls(sr, kbps, monkeypatch):
    rng = np.random.default_rng(sr + kbps)
    clips = [
        speech_like(rng.uniform(0.3, 1.5), sr, seed=i, level_db=rng.uniform(-35, -8))
        for i in range(4)
    ]
    clips += [music_like(rng.uniform(0.3, 1.5), sr, seed=i) for i in range(3)]
    clips += [np.zeros(0, np.float32), np.zeros(37, np.float32), sine(1000, 0.05, sr, 0.9)]
    single = [ff.mp3_roundtrip(c, sr, kbps) for c in clips]
    many = ff.mp3_roundtrip_many(clips, sr, kbps)
    assert all(np.array_equal(s, m) for s, m in zip(single, many, strict=True))
    # how the clips are grouped into encoder runs does not matter either
    monkeypatch.setattr(ff, "_BATCH_SAMPLES", 30000)
    assert all(
        np.array_equal(s, m)
        for s, m in zip(single, ff.mp3_roundtrip_many(clips, sr, kbps), strict=True)
    )


def test_roundtrip_bad_input():
    with pytest.raises(ValueError, match="NaN"):
        ff.mp3_roundtrip(np.array([0.0, np.nan], np.float32), 16000, 32)
    with pytest.raises(ValueError, match="channel counts"):
        ff.mp3_roundtrip_many([np.zeros(10, np.float32), np.zeros((10, 2), np.float32)], 16000, 32)
    with pytest.raises(ValueError, match="not an MP3 sample rate"):
        ff.mp3_roundtrip(np.zeros(10, np.float32), 16000, 32, encode_rate=20000)
    # an explicit encoding rate snaps the bitrate to what that rate allows
    x = speech_like(0.5, 16000, seed=0)
    assert np.array_equal(
        ff.mp3_roundtrip(x, 16000, 320, encode_rate=16000), ff.mp3_roundtrip(x, 16000, 160)
    )
    assert ff.mp3_roundtrip_many([], 16000, 32) == []


# -- decoding files ------------------------------------------------------------------


def _encode_with_ffmpeg(x: np.ndarray, sr: int, args: list[str], ext: str) -> bytes:
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "clip" + ext)
        cmd = [ff.ffmpeg_exe(), "-loglevel", "error", "-f", "f32le", "-ar", str(sr)]
        cmd += ["-ac", str(x.shape[1]), "-i", "pipe:0", *args, out]
        subprocess.run(cmd, input=x.astype("<f4").tobytes(), check=True)
        with open(out, "rb") as fh:
            return fh.read()


@pytest.fixture(scope="module")
def stereo() -> np.ndarray:
    t = np.arange(44100) / 44100
    return np.stack(
        [0.3 * np.sin(2 * np.pi * 440 * t), 0.2 * np.sin(2 * np.pi * 660 * t)], 1
    ).astype(np.float32)


def test_decode_bytes_wav_is_exact(stereo):
    y, sr = ff.decode_bytes(audio_bytes(stereo, 44100, "FLOAT"), name="a.wav")
    assert sr == 44100 and y.dtype == np.float32 and np.array_equal(y, stereo)


@pytest.mark.parametrize(
    ("ext", "args", "rate"),
    [
        (".m4a", ["-c:a", "aac", "-b:a", "128k"], 44100),  # MP4 index at the end: needs seeking
        (".opus", ["-c:a", "libopus", "-b:a", "64k"], 48000),  # Opus decodes at 48 kHz
        (".mp3", ["-c:a", "libmp3lame", "-b:a", "192k"], 44100),
        (".mka", ["-c:a", "pcm_s16le"], 44100),
    ],
)
def test_decode_bytes_lossy_formats(stereo, ext, args, rate):
    data = _encode_with_ffmpeg(stereo, 44100, args, ext)
    y, sr = ff.decode_bytes(data, name="clip" + ext)
    assert sr == rate and y.ndim == 2 and y.shape[1] == 2 and y.dtype == np.float32
    assert abs(y.shape[0] / sr - 1.0) < 0.05
    rms = np.sqrt(np.mean(y[2000:-2000].astype(np.float64) ** 2, axis=0))
    np.testing.assert_allclose(rms, [0.3 / np.sqrt(2), 0.2 / np.sqrt(2)], rtol=0.05)


def test_load_falls_back_on_ffmpeg(stereo):
    data = _encode_with_ffmpeg(stereo, 44100, ["-c:a", "aac", "-b:a", "128k"], ".m4a")
    y, sr = load(data, 16000, name="x.m4a")
    assert sr == 16000 and y.ndim == 1 and abs(y.size - 16000) < 1000


def test_decode_bytes_errors_name_the_file(stereo):
    with pytest.raises(AudioError, match=r"^bad\.mp3: ffmpeg cannot decode it: .*Invalid data"):
        ff.decode_bytes(b"not audio at all" * 64, name="bad.mp3")
    data = _encode_with_ffmpeg(stereo, 44100, ["-c:a", "aac"], ".m4a")
    with pytest.raises(AudioError, match=r"^cut\.m4a: "):
        ff.decode_bytes(data[:1500], name="cut.m4a")


def test_ffmpeg_binary_can_be_overridden(monkeypatch):
    real = ff.ffmpeg_exe()
    monkeypatch.setenv("PAMFLOW_FFMPEG", real)
    assert ff.ffmpeg_exe() == real
    monkeypatch.setenv("PAMFLOW_FFMPEG", "/nonexistent/ffmpeg")
    with pytest.raises(ff.FFmpegError, match="PAMFLOW_FFMPEG"):
        ff.mp3_roundtrip(np.zeros(100, np.float32), 16000, 32)
