"""Errors of the audio layer: each message names the file or buffer and the reason."""

from __future__ import annotations


class AudioError(ValueError):
    """An audio file or buffer that cannot be used; the message names it and says why."""


class FFmpegError(RuntimeError):
    """ffmpeg failed or could not be found; the message holds ffmpeg's last error line."""
