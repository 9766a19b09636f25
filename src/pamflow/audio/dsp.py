"""Array operations on audio: channel mix-down, resampling (soxr), length fitting, lags."""

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


def measure_lag(
    x: np.ndarray, y: np.ndarray, max_lag: int, *, signed: bool = False
) -> tuple[int, float]:
    """``(lag, correlation)``: the delay in samples at which ``y`` best matches ``x`` (the
    cross-correlation peak), searched over 0..max_lag (also down to -max_lag, ``y`` ahead of
    ``x``, when ``signed``), and the normalised correlation there."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    m = x.size + y.size
    nfft = 1 << (m - 1).bit_length()
    cc = np.fft.irfft(np.fft.rfft(y, nfft) * np.conj(np.fft.rfft(x, nfft)), nfft)
    ahead = min(max_lag, x.size - 1) if signed else 0
    candidates = np.concatenate([cc[nfft - ahead :], cc[: min(max_lag, y.size) + 1]])
    lag = int(np.argmax(candidates)) - ahead
    xs, ys = (x, y[lag:]) if lag >= 0 else (x[-lag:], y)
    k = min(xs.size, ys.size)
    norm = float(np.sqrt(np.dot(xs[:k], xs[:k]) * np.dot(ys[:k], ys[:k])))
    return lag, float(candidates[lag + ahead] / norm) if norm > 0 else 0.0
