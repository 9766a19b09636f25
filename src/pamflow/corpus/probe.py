"""Probing one audio file: decode it (whole, or in blocks when big), check it, measure it.

:func:`inspect_audio` reads a file held in memory; :func:`inspect_audio_file` a local file
in blocks of :data:`STREAM_FRAMES` frames (bounded memory, for files over
:data:`STREAM_BYTES`). Both raise :class:`BadAudioFile` with a one-line reason starting
with its class (see :mod:`pamflow.corpus.index`) and return the manifest measurements.
:class:`pamflow.corpus.sources.Sources` applies the same limits when it loads a recording.
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
from collections.abc import Callable
from typing import Any

import numpy as np
import soundfile as sf

from pamflow.audio import AudioError, load, loudness
from pamflow.audio.loudness import StreamingLoudness

MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1000, 384000
MIN_DURATION_S = 0.01
#: local files larger than this are indexed in blocks (:func:`inspect_audio_file`)
STREAM_BYTES = 4 << 20
STREAM_FRAMES = 1 << 16
SILENCE_PEAK_DB = -90.0
#: containers whose header frame count is exact, so fewer decoded frames means truncation
_EXACT_HEADER = frozenset({".wav", ".flac", ".aiff", ".aif", ".au", ".snd", ".caf", ".w64"})


class BadAudioFile(ValueError):
    """A file to quarantine; the message is its one-line reason."""


def _wav_shortfall(raw: bytes, file_size: int | None = None) -> str | None:
    """A reason if a RIFF/WAVE file's data chunk promises more bytes than the file holds.

    ``raw`` is the file or its first bytes (then ``file_size`` is the file's size). (libsndfile
    quietly shortens such files instead of reporting them.) A data size of 0 or 0xFFFFFFFF
    means "unknown" (streamed writers) and is accepted.
    """
    file_size = len(raw) if file_size is None else file_size
    if len(raw) < 12 or raw[:4] not in (b"RIFF", b"RIFX") or raw[8:12] != b"WAVE":
        return None
    endian = "<" if raw[:4] == b"RIFF" else ">"
    pos, block = 12, 0
    while pos + 8 <= len(raw):
        chunk, size = raw[pos : pos + 4], struct.unpack(endian + "I", raw[pos + 4 : pos + 8])[0]
        if chunk == b"fmt " and pos + 22 <= len(raw):
            block = struct.unpack(endian + "H", raw[pos + 20 : pos + 22])[0]
        if chunk == b"data":
            have = file_size - pos - 8
            if size in (0, 0xFFFFFFFF) or have >= size:
                return None
            if block:
                return (
                    f"truncated: header promises {size // block} frames, "
                    f"only {have // block} present"
                )
            return f"truncated: data chunk promises {size} bytes, only {have} present"
        pos += 8 + size + (size & 1)
    return None


def _header_frames(raw: bytes, ext: str) -> int | None:
    if ext not in _EXACT_HEADER:
        return None
    try:
        frames = sf.info(io.BytesIO(raw)).frames
    except Exception:
        return None
    return int(frames) if frames > 0 else None


def _classify(message: str, name: str) -> str:
    msg = message[len(name) + 2 :] if message.startswith(f"{name}: ") else message
    low = msg.lower()
    if low.startswith("truncated"):
        return msg
    if low.startswith("empty"):
        return "empty: 0 bytes" if low == "empty file" else "empty: " + msg
    if "nan or inf" in low:  # pamflow.audio.load: "holds NaN or inf samples"
        return "non-finite: " + msg
    return "unreadable: " + msg


def inspect_audio(raw: bytes, name: str, ext: str = "") -> dict[str, Any]:
    """Measure one audio file held in ``raw``; raise ``BadAudioFile(reason)`` if it is unusable.

    Returns ``duration_s, sample_rate, channels, num_frames, loudness_lufs, peak_db``.
    """
    if not raw:
        raise BadAudioFile("empty: 0 bytes")
    short = _wav_shortfall(raw) if ext in (".wav", "") else None
    if short:
        raise BadAudioFile(short)
    promised = _header_frames(raw, ext)
    try:
        data, sr = load(raw, mono=False, name=name)
    except AudioError as e:
        reason = _classify(str(e), name)
        if promised and reason.startswith("unreadable: "):
            reason = (
                f"corrupt: header reads ({promised} frames) but the audio data does not "
                f"decode ({reason.removeprefix('unreadable: ')})"
            )
        raise BadAudioFile(reason) from e
    except Exception as e:
        what = f"{type(e).__name__}: {e}"
        if promised:
            raise BadAudioFile(
                f"corrupt: header reads ({promised} frames) but the audio data "
                f"does not decode ({what})"
            ) from e
        raise BadAudioFile(f"unreadable: no decoder accepts it ({what})") from e
    frames, channels = int(data.shape[0]), int(data.shape[1]) if data.ndim == 2 else 1
    peak = float(np.max(np.abs(data))) if data.size else 0.0

    def level() -> float:
        # BS.1770 sums channel powers (pyloudnorm weights up to 5 channels); more: mono mix
        x = data[:, 0] if channels == 1 else (data if channels <= 5 else data.mean(axis=1))
        return float(loudness(x, sr))

    return _measured(frames, promised, channels, int(sr), peak, level)


def _measured(
    frames: int,
    promised: int | None,
    channels: int,
    sr: int,
    peak: float,
    level: Callable[[], float],
) -> dict[str, Any]:
    """The checks every decoded file passes, and its manifest measurements."""
    if promised and frames < promised:
        raise BadAudioFile(f"truncated: header promises {promised} frames, only {frames} decoded")
    if frames == 0:
        raise BadAudioFile("empty: 0 audio frames")
    if not MIN_SAMPLE_RATE <= sr <= MAX_SAMPLE_RATE:
        raise BadAudioFile(
            f"bad sample rate: {sr} Hz outside {MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE} Hz"
        )
    if frames / sr < MIN_DURATION_S:
        raise BadAudioFile(f"too short: {1000 * frames / sr:.2f} ms < {1000 * MIN_DURATION_S:g} ms")
    peak_db = float(20.0 * np.log10(peak)) if peak > 0 else float("-inf")
    if peak_db < SILENCE_PEAK_DB:
        raise BadAudioFile(f"silent: peak {peak_db:.1f} dBFS below {SILENCE_PEAK_DB:g} dBFS")
    return {
        "duration_s": frames / sr,
        "sample_rate": sr,
        "channels": channels,
        "num_frames": frames,
        "loudness_lufs": level(),
        "peak_db": peak_db,
    }


def inspect_audio_file(path: str, name: str, ext: str = "") -> tuple[dict[str, Any], str, int]:
    """:func:`inspect_audio` of a local file read in blocks, never whole: the header is
    probed, the audio decoded :data:`STREAM_FRAMES` frames at a time (peak, non-finite
    samples and BS.1770 loudness accumulated), the sha256 computed in chunks. Memory stays
    bounded whatever the file's size. Returns ``(measurements, sha256, size)``; raises
    ``BadAudioFile`` as :func:`inspect_audio` does, or ``LookupError`` when libsndfile
    cannot open the file (the caller then reads it whole, for ffmpeg)."""
    size = os.path.getsize(path)
    if not size:
        raise BadAudioFile("empty: 0 bytes")
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    short = _wav_shortfall(head, size) if ext in (".wav", "") else None
    if short:
        raise BadAudioFile(short)
    try:
        snd = sf.SoundFile(path)
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        raise LookupError(str(e)) from e
    with snd:
        sr, channels, promised = int(snd.samplerate), int(snd.channels), int(snd.frames) or None
        meter = (
            StreamingLoudness(sr, channels) if MIN_SAMPLE_RATE <= sr <= MAX_SAMPLE_RATE else None
        )
        frames, peak = 0, 0.0
        try:
            for block in snd.blocks(blocksize=STREAM_FRAMES, dtype="float32", always_2d=True):
                if not np.isfinite(block).all():
                    raise BadAudioFile(f"non-finite: {name}: holds NaN or inf samples")
                frames += len(block)
                peak = max(peak, float(np.max(np.abs(block))) if block.size else 0.0)
                if meter is not None:
                    meter.feed(block)
        except sf.LibsndfileError as e:
            raise BadAudioFile(
                f"corrupt: header reads ({promised} frames) but the audio data does not "
                f"decode ({e})"
            ) from e
    info = _measured(frames, promised, channels, sr, peak, meter.value if meter else float)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return info, h.hexdigest(), size
