"""Spectral distances between two signals."""

from __future__ import annotations

import numpy as np
from scipy import signal


def log_spectral_distance(
    x: np.ndarray, y: np.ndarray, sample_rate: int, *, n_fft: int = 512
) -> float:
    """Log-spectral distance in dB: RMS over frequency of the log power difference, meaned over frames."""
    hop = n_fft // 4
    _, _, sx = signal.stft(
        np.asarray(x, np.float64), fs=sample_rate, nperseg=n_fft, noverlap=n_fft - hop
    )
    _, _, sy = signal.stft(
        np.asarray(y, np.float64), fs=sample_rate, nperseg=n_fft, noverlap=n_fft - hop
    )
    floor = 1e-10
    lx = 10 * np.log10(np.abs(sx) ** 2 + floor)
    ly = 10 * np.log10(np.abs(sy) ** 2 + floor)
    return float(np.mean(np.sqrt(np.mean((lx - ly) ** 2, axis=0))))
