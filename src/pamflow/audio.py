"""Audio helpers: load, resample, loudness, and encode/decode to bytes.

Arrays are float32, mono ``(n,)`` unless ``mono=False`` (then ``(n, channels)``), in
[-1, 1]. Files go through fsspec, so any URL fsspec can open works as a path.
"""

from __future__ import annotations

import io
from functools import lru_cache
from typing import BinaryIO

import fsspec
import numpy as np
import soundfile as sf
import soxr


class AudioError(ValueError):
    """An audio file or buffer that cannot be used; the message names it and says why."""


#: container formats libsndfile reads directly; anything else is decoded with ffmpeg
SNDFILE_EXTENSIONS = frozenset(
    {".wav", ".flac", ".ogg", ".aiff", ".aif", ".au", ".snd", ".caf", ".w64", ".rf64", ".mat"}
)
AUDIO_EXTENSIONS = SNDFILE_EXTENSIONS | frozenset(
    {".mp3", ".m4a", ".aac", ".opus", ".webm", ".mka", ".mp4", ".wma", ".ac3", ".amr", ".mp2"}
)


def to_mono(x: np.ndarray) -> np.ndarray:
    """Average channels: ``(n, c) -> (n,)``; mono input is returned as it is."""
    x = np.asarray(x)
    return x if x.ndim == 1 else x.mean(axis=1)


def resample(x: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample along the first axis with soxr (VHQ); a no-op when the rates match."""
    if int(orig_sr) == int(target_sr):
        return np.asarray(x, dtype=np.float32)
    y = soxr.resample(np.asarray(x, dtype=np.float32), int(orig_sr), int(target_sr), quality="VHQ")
    return np.asarray(y, dtype=np.float32)


def _read_sndfile(fh: BinaryIO, name: str) -> tuple[np.ndarray, int]:
    with sf.SoundFile(fh) as f:
        sr = f.samplerate
        expected = f.frames
        data = f.read(dtype="float32", always_2d=True)
    if expected > 0 and data.shape[0] < expected:
        raise AudioError(
            f"{name}: truncated: header promises {expected} frames, only {data.shape[0]} read"
        )
    return data, sr


def load(
    source: str | bytes | BinaryIO,
    sample_rate: int | None = None,
    *,
    mono: bool = True,
    name: str | None = None,
) -> tuple[np.ndarray, int]:
    """Read audio from a path/URL, bytes or a file object; return ``(audio, sample_rate)``.

    libsndfile reads WAV, FLAC, OGG, AIFF...; other formats (MP3, M4A, Opus...) are decoded
    with ffmpeg. With ``sample_rate`` the audio is resampled to it.
    """
    label = name or (source if isinstance(source, str) else "<buffer>")
    try:
        if isinstance(source, str):
            with fsspec.open(source, "rb") as fh:
                raw = fh.read()
        elif isinstance(source, bytes | bytearray | memoryview):
            raw = bytes(source)
        else:
            raw = source.read()
    except (OSError, ValueError) as e:
        raise AudioError(f"{label}: unreadable: {e}") from e
    if not raw:
        raise AudioError(f"{label}: empty file")
    try:
        data, sr = _read_sndfile(io.BytesIO(raw), label)
    except AudioError:
        raise
    except (sf.LibsndfileError, RuntimeError, TypeError):
        from pamflow.ffmpeg import decode_bytes

        data, sr = decode_bytes(raw, name=label)
    if data.size and not np.all(np.isfinite(data)):
        raise AudioError(f"{label}: holds NaN or inf samples")
    if mono:
        data = to_mono(data)
    if sample_rate is not None:
        data = resample(data, sr, sample_rate)
        sr = int(sample_rate)
    return np.ascontiguousarray(data, dtype=np.float32), int(sr)


def encode(
    audio: np.ndarray, sample_rate: int, *, format: str = "FLAC", subtype: str | None = None
) -> bytes:
    """Encode audio as a whole file in memory (FLAC 24-bit by default).

    ``format="WAV", subtype="FLOAT"`` gives a float32 WAV: lossless and fastest to decode.
    """
    fmt = format.upper()
    if subtype is None:
        subtype = {"FLAC": "PCM_24", "WAV": "FLOAT"}.get(fmt, "PCM_24")
    buf = io.BytesIO()
    x = np.asarray(audio, dtype=np.float32)
    if subtype.startswith("PCM"):
        # integer formats cannot hold full scale +1.0; stay just inside it
        x = np.clip(x, -1.0, 1.0 - 2.0**-23)
    sf.write(buf, x, int(sample_rate), format=fmt, subtype=subtype)
    return buf.getvalue()


def decode(data: bytes, sample_rate: int | None = None, *, mono: bool = True) -> tuple[np.ndarray, int]:
    """Decode a whole audio file held in ``data`` (the inverse of :func:`encode`)."""
    return load(bytes(data), sample_rate, mono=mono)


def rms_db(x: np.ndarray) -> float:
    """RMS level in dBFS (-inf for silence)."""
    x = np.asarray(x, dtype=np.float64)
    p = float(np.mean(x * x)) if x.size else 0.0
    return 10.0 * np.log10(p) if p > 0 else float("-inf")


@lru_cache(maxsize=16)
def _meter(sample_rate: int):  # noqa: ANN202
    import pyloudnorm

    return pyloudnorm.Meter(sample_rate)


def loudness(x: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness in LUFS (ITU-R BS.1770, pyloudnorm).

    Clips shorter than one 400 ms gating block, or entirely below the gate, fall back to
    their RMS level in dBFS. Silence gives -inf.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.size < int(0.4 * sample_rate) + 1:
        return rms_db(x)
    with np.errstate(divide="ignore"):
        value = float(_meter(int(sample_rate)).integrated_loudness(x))
    return value if np.isfinite(value) else rms_db(x)


def fix_length(x: np.ndarray, n: int) -> np.ndarray:
    """Trim or zero-pad the first axis to ``n`` samples."""
    if x.shape[0] >= n:
        return x[:n]
    pad = [(0, n - x.shape[0])] + [(0, 0)] * (x.ndim - 1)
    return np.pad(x, pad)
