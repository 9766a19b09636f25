"""Audio primitives: reading and encoding files, resampling, levels, and ffmpeg.

- :mod:`~pamflow.audio.io`: :func:`load` (path, URL, bytes or file object), :func:`encode`
  and :func:`decode` of whole files in memory.
- :mod:`~pamflow.audio.dsp`: :func:`to_mono`, :func:`resample` (soxr), :func:`fix_length`.
- :mod:`~pamflow.audio.loudness`: :func:`rms_db`, :func:`loudness` (LUFS).
- :mod:`~pamflow.audio.ffmpeg`: the ffmpeg binary, decoding any format, MP3 round trips.
- :mod:`~pamflow.audio.errors`: :class:`AudioError`, :class:`FFmpegError`.

This package imports nothing else from pamflow.
"""

from pamflow.audio.dsp import fix_length, resample, to_mono
from pamflow.audio.errors import AudioError, FFmpegError
from pamflow.audio.io import AUDIO_EXTENSIONS, SNDFILE_EXTENSIONS, decode, encode, load
from pamflow.audio.loudness import loudness, rms_db

__all__ = [
    "AUDIO_EXTENSIONS",
    "SNDFILE_EXTENSIONS",
    "AudioError",
    "FFmpegError",
    "decode",
    "encode",
    "fix_length",
    "load",
    "loudness",
    "resample",
    "rms_db",
    "to_mono",
]
