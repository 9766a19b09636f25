"""Decoding audio cells: ``{bytes, path}`` structs back to float32 mono arrays.

Float32 WAV cells, the fast option, are read straight from the buffer with numpy (the
RIFF chunks are walked to the ``data`` chunk); everything else, and any WAV this fast path
does not recognise, goes through :func:`pamflow.audio.load` (libsndfile, then ffmpeg).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Any

import numpy as np

from pamflow.audio import AudioError, load
from pamflow.storage.schema import StorageError

_WAVE_FORMAT_IEEE_FLOAT = 3
_WAVE_FORMAT_EXTENSIBLE = 0xFFFE


def decode_audio(value: Mapping[str, Any] | bytes) -> tuple[np.ndarray, int]:
    """Decode one audio cell (a ``{bytes, path}`` dict or the bytes) to
    ``(float32 mono array of shape (n,), sample rate in Hz)``."""
    name = None
    data: bytes | None
    if isinstance(value, Mapping):
        name = value.get("path")
        data = value.get("bytes")
    else:
        data = value
    if data is None:
        raise StorageError(f"audio cell {name or ''} is empty (null)")
    fast = _float_wav(data)
    if fast is not None:
        return fast
    try:
        return load(bytes(data), name=name or "<bytes>")
    except AudioError as e:
        raise StorageError(f"audio cell {e}") from e


def _float_wav(data: bytes) -> tuple[np.ndarray, int] | None:
    """A mono 32-bit float WAV read with numpy, or None to take the general path (which
    also reports truncated or non-finite files with a clear message)."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    pos, fmt = 12, None
    while pos + 8 <= len(data):
        chunk = data[pos : pos + 4]
        size = int.from_bytes(data[pos + 4 : pos + 8], "little")
        body = pos + 8
        if chunk == b"fmt " and size >= 16:
            tag, channels, rate = struct.unpack_from("<HHI", data, body)
            bits = struct.unpack_from("<H", data, body + 14)[0]
            if tag == _WAVE_FORMAT_EXTENSIBLE and size >= 26:
                tag = struct.unpack_from("<H", data, body + 24)[0]  # sub-format GUID
            fmt = (tag, channels, rate, bits)
        elif chunk == b"data":
            if fmt is None or fmt[:2] != (_WAVE_FORMAT_IEEE_FLOAT, 1) or fmt[3] != 32:
                return None
            if body + size > len(data) or size % 4:
                return None
            x = np.frombuffer(data, dtype="<f4", count=size // 4, offset=body).astype(np.float32)
            return (x, int(fmt[2])) if np.all(np.isfinite(x)) else None
        pos = body + size + (size & 1)
    return None
