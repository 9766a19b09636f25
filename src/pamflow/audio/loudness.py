"""Levels: RMS in dBFS and integrated loudness in LUFS (ITU-R BS.1770, pyloudnorm)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np


def rms_db(x: np.ndarray) -> float:
    """RMS level in dBFS (-inf for silence)."""
    x = np.asarray(x, dtype=np.float64)
    p = float(np.mean(x * x)) if x.size else 0.0
    return 10.0 * np.log10(p) if p > 0 else float("-inf")


@lru_cache(maxsize=16)
def _meter(sample_rate: int):
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
