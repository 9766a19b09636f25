"""Codec round trips beyond MP3, every one sample-aligned with its input and equal in length.

Two engines:

* **libsndfile, in process** (:func:`sndfile_roundtrip`): Ogg Vorbis, Ogg Opus and GSM 06.10
  full rate (in WAV), encoded to and decoded from memory by the libsndfile that
  ``soundfile`` ships. No process starts, nothing touches the disk. libsndfile honours the
  Ogg streams' pre-skip, and GSM 06.10 frames have no look-ahead, so the decoded audio is
  aligned as it comes (measured lag 0; the tests check it at 16, 22.05, 44.1 and 48 kHz);
  it is cut to the input's length (GSM pads the last 160-sample frame).
* **ffmpeg** (:func:`ffmpeg_roundtrip`): AAC (FFmpeg's native encoder, ADTS stream) and
  AMR-NB (OpenCORE), through the bundled ffmpeg binary with command lines built by
  ffmpeg-python. These streams carry no priming information, so the decoder's output lags
  the input by the codec delay (1024 samples of AAC priming, AMR's frame and look-ahead);
  the delay is measured once per process for each (binary, codec, setting, rate) by coding
  a fixed probe and locating its cross-correlation peak (:func:`~pamflow.audio.dsp.measure_lag`, cached), then
  trimmed, as for MP3 (:mod:`pamflow.audio.ffmpeg`).

Codecs that only run at some sample rates (Opus: 8, 12, 16, 24, 48 kHz; GSM and AMR-NB:
8 kHz; AAC: the MPEG-4 rates) get the clip resampled (soxr, VHQ) to the rate
:func:`codec_rate` picks, and the result resampled back.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import lru_cache

import ffmpeg as ffmpeg_python
import numpy as np
import soundfile as sf

from pamflow.audio.dsp import fix_length, resample
from pamflow.audio.errors import FFmpegError
from pamflow.audio.ffmpeg import _QUIET, _pipeline, _probe, ffmpeg_exe, probe_delay

#: sample rates each codec runs at; a clip at another rate is coded at :func:`codec_rate`
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
AAC_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000)
NARROWBAND_RATES = (8000,)
#: largest codec delay (samples) the measurement searches
MAX_LAG = 8192
#: libsndfile's Opus encoder maps its compression level c onto a target bitrate of
#: ``256 - 250 c`` kb/s (per channel): 256 kb/s at 0, 6 kb/s at 1
OPUS_MAX_KBPS = 256.0
OPUS_MIN_KBPS = 6.0


def codec_rate(sample_rate: int, rates: tuple[int, ...]) -> int:
    """The rate of ``rates`` a clip at ``sample_rate`` is coded at: its own when allowed,
    else the lowest allowed rate above it (no band is lost), else the highest one."""
    sr = int(sample_rate)
    if sr in rates:
        return sr
    above = [r for r in rates if r > sr]
    return min(above) if above else max(rates)


# -- libsndfile -------------------------------------------------------------------------


@dataclass(frozen=True)
class SndfileCodec:
    """A libsndfile format: container, subtype, rates it runs at, and whether it takes a
    compression level (Vorbis and Opus do; GSM 06.10 has one bitrate)."""

    container: str
    subtype: str
    rates: tuple[int, ...] | None = None  # None: any rate
    levels: bool = True


VORBIS = SndfileCodec("OGG", "VORBIS")
OPUS = SndfileCodec("OGG", "OPUS", OPUS_RATES)
GSM610 = SndfileCodec("WAV", "GSM610", NARROWBAND_RATES, levels=False)


def sndfile_roundtrip(
    audio: np.ndarray, sample_rate: int, codec: SndfileCodec, level: float | None = None
) -> np.ndarray:
    """Code mono ``audio`` with libsndfile in memory and decode it back: float32, same length,
    aligned. ``level`` is libsndfile's compression level in [0, 1] (Vorbis: 1 - quality;
    Opus: see :data:`OPUS_MAX_KBPS`); None for codecs without one."""
    x = np.asarray(audio, dtype=np.float32)
    sr = int(sample_rate)
    rate = codec_rate(sr, codec.rates) if codec.rates else sr
    if codec.levels != (level is not None):
        raise ValueError(
            f"{codec.subtype}: compression level {'needed' if codec.levels else 'not taken'}"
        )
    buf = io.BytesIO()
    sf.write(
        buf,
        resample(x, sr, rate),
        rate,
        format=codec.container,
        subtype=codec.subtype,
        compression_level=None if level is None else float(level),
    )
    buf.seek(0)
    y, got = sf.read(buf, dtype="float32", always_2d=False)
    if got != rate:  # pragma: no cover - libsndfile decodes at the rate it encoded
        raise FFmpegError(f"{codec.subtype}: decoded at {got} Hz, coded at {rate} Hz")
    return np.ascontiguousarray(fix_length(resample(y, rate, sr), x.shape[0]), dtype=np.float32)


def opus_level(kbps: float) -> float:
    """libsndfile's Opus compression level for a target bitrate in kb/s (6..256)."""
    k = min(max(float(kbps), OPUS_MIN_KBPS), OPUS_MAX_KBPS)
    return (OPUS_MAX_KBPS - k) / (OPUS_MAX_KBPS - OPUS_MIN_KBPS)


# -- ffmpeg -----------------------------------------------------------------------------


@dataclass(frozen=True)
class FfmpegCodec:
    """An ffmpeg encoder and the raw stream format its packets travel in."""

    encoder: str  # ffmpeg encoder: "aac", "libopencore_amrnb"
    muxer: str  # the stream's format when written: "adts", "amr"
    demuxer: str  # and when read: "aac", "amr"
    rates: tuple[int, ...]
    options: tuple[tuple[str, str], ...] = ()  # encoder options, e.g. (("b:a", "32k"),)


def aac(kbps: int) -> FfmpegCodec:
    """FFmpeg's native AAC-LC encoder at a constant ``kbps`` kb/s, in an ADTS stream."""
    return FfmpegCodec("aac", "adts", "aac", AAC_RATES, (("b:a", f"{int(kbps)}k"),))


def amr_nb(kbps: float) -> FfmpegCodec:
    """OpenCORE's AMR-NB encoder at the mode of ``kbps`` (4.75..12.2 kb/s), 8 kHz."""
    return FfmpegCodec(
        "libopencore_amrnb", "amr", "amr", NARROWBAND_RATES, (("b:a", f"{kbps:g}k"),)
    )


@lru_cache(maxsize=64)
def _ffmpeg_cmds(exe: str, codec: FfmpegCodec, rate: int) -> tuple[tuple[str, ...], ...]:
    """Encoder (raw float32 in, coded stream out) and decoder (stream in, float32 out)."""
    opts = {"c:a": codec.encoder, **dict(codec.options)}
    enc = ffmpeg_python.input("pipe:0", f="f32le", ar=rate, ac=1).output(
        "pipe:1", **opts, f=codec.muxer
    )
    dec = ffmpeg_python.input("pipe:0", f=codec.demuxer).output(
        "pipe:1", **{"c:a": "pcm_f32le"}, f="f32le", ac=1
    )
    return tuple(tuple(n.global_args(*_QUIET).compile(cmd=exe)) for n in (enc, dec))


def _ffmpeg_code(exe: str, x: np.ndarray, rate: int, codec: FfmpegCodec) -> np.ndarray:
    what = f"{codec.encoder} {dict(codec.options)} at {rate} Hz"
    out = _pipeline(_ffmpeg_cmds(exe, codec, rate), x.astype("<f4").tobytes(), what)
    return np.frombuffer(out[: len(out) - len(out) % 4], dtype="<f4")


@lru_cache(maxsize=256)
def ffmpeg_codec_delay(exe: str, codec: FfmpegCodec, rate: int) -> int:
    """Samples (at ``rate``) by which ``codec``'s decoded output lags its input, measured."""
    x = _probe(rate)
    y = _ffmpeg_code(exe, np.concatenate([x, np.zeros(MAX_LAG, np.float32)]), rate, codec)
    return probe_delay(x, y, MAX_LAG, f"{codec.encoder} {dict(codec.options)} at {rate} Hz")


def ffmpeg_roundtrip(audio: np.ndarray, sample_rate: int, codec: FfmpegCodec) -> np.ndarray:
    """Code mono ``audio`` through ffmpeg and back: float32, same length, the codec delay
    trimmed (measured per setting, cached)."""
    x = np.asarray(audio, dtype=np.float32)
    sr = int(sample_rate)
    rate = codec_rate(sr, codec.rates)
    exe = ffmpeg_exe()
    delay = ffmpeg_codec_delay(exe, codec, rate)
    xr = resample(x, sr, rate)
    n = xr.shape[0]
    # the tail flushes the codec's look-ahead, so the clip's last samples come out too
    y = _ffmpeg_code(exe, np.concatenate([xr, np.zeros(delay + 4096, np.float32)]), rate, codec)
    y = fix_length(y[delay:], n)
    return np.ascontiguousarray(fix_length(resample(y, rate, sr), x.shape[0]), dtype=np.float32)
