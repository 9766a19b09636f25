"""Array operations on audio: channel mix-down, resampling (soxr), length fitting."""

from __future__ import annotations

import numpy as np
import soxr


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


def fix_length(x: np.ndarray, n: int) -> np.ndarray:
    """Trim or zero-pad the first axis to ``n`` samples."""
    if x.shape[0] >= n:
        return x[:n]
    pad = [(0, n - x.shape[0])] + [(0, 0)] * (x.ndim - 1)
    return np.pad(x, pad)
