"""Reading and writing audio: load from a path, URL, bytes or file object; encode/decode
whole files in memory.

Arrays are float32, mono ``(n,)`` unless ``mono=False`` (then ``(n, channels)``), in
[-1, 1]. Files go through fsspec, so any URL fsspec can open works as a path. Formats
libsndfile cannot read are decoded with ffmpeg (:mod:`pamflow.audio.ffmpeg`).
"""

from __future__ import annotations

import io
from typing import BinaryIO

import fsspec
import numpy as np
import soundfile as sf

from pamflow.audio.dsp import resample, to_mono
from pamflow.audio.errors import AudioError
from pamflow.audio.ffmpeg import decode_bytes

#: container formats libsndfile reads directly; anything else is decoded with ffmpeg
SNDFILE_EXTENSIONS = frozenset(
    {".wav", ".flac", ".ogg", ".aiff", ".aif", ".au", ".snd", ".caf", ".w64", ".rf64", ".mat"}
)
AUDIO_EXTENSIONS = SNDFILE_EXTENSIONS | frozenset(
    {".mp3", ".m4a", ".aac", ".opus", ".webm", ".mka", ".mp4", ".wma", ".ac3", ".amr", ".mp2"}
)


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


def decode(
    data: bytes, sample_rate: int | None = None, *, mono: bool = True
) -> tuple[np.ndarray, int]:
    """Decode a whole audio file held in ``data`` (the inverse of :func:`encode`)."""
    return load(bytes(data), sample_rate, mono=mono)
