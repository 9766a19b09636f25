"""Objective measures: active level, SNR, SI-SDR, log-spectral distance, RT60, DRR.

Used to set perturbation levels (SNR against active speech), to label datasets (NMR pairs),
by the simulated listener, and by the tests. All take float arrays and return floats in dB
or seconds.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

_EPS = 1e-20


def _power(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=np.float64)
    return float(np.mean(x * x)) if x.size else 0.0


def active_mask(
    x: np.ndarray, sample_rate: int, *, frame_s: float = 0.02, floor_db: float = 30.0
) -> np.ndarray:
    """Boolean mask of "active" samples: 20 ms frames within ``floor_db`` of the loudest.

    A simple energy gate in the spirit of ITU-T P.56: pauses in speech do not count
    towards its level, so an SNR measured against the active level means the same for a
    sentence with long pauses as for one without.
    """
    x = np.asarray(x, dtype=np.float64)
    n = max(1, int(frame_s * sample_rate))
    frames = x.size // n
    if frames == 0:
        return np.ones(x.size, dtype=bool)
    e = np.mean(x[: frames * n].reshape(frames, n) ** 2, axis=1)
    peak = float(e.max())
    if peak <= 0:
        return np.zeros(x.size, dtype=bool)
    active = e >= peak * 10.0 ** (-floor_db / 10.0)
    mask = np.repeat(active, n)
    tail = x.size - mask.size
    if tail:
        mask = np.concatenate([mask, np.full(tail, bool(active[-1]))])
    return mask


def active_power(x: np.ndarray, sample_rate: int) -> float:
    """Mean power over the active part of ``x`` (see :func:`active_mask`)."""
    x = np.asarray(x, dtype=np.float64)
    m = active_mask(x, sample_rate)
    return _power(x[m]) if m.any() else 0.0


def active_level_db(x: np.ndarray, sample_rate: int) -> float:
    p = active_power(x, sample_rate)
    return 10.0 * np.log10(p) if p > 0 else float("-inf")


def snr_db(clean: np.ndarray, noisy: np.ndarray, sample_rate: int | None = None) -> float:
    """SNR of ``noisy`` against ``clean`` in dB; the noise is ``noisy - clean``.

    With ``sample_rate`` the signal power is the active power of ``clean`` and the noise
    power is measured over the same active samples (speech-weighted SNR).
    """
    clean = np.asarray(clean, dtype=np.float64)
    noise = np.asarray(noisy, dtype=np.float64) - clean
    if sample_rate is not None:
        m = active_mask(clean, sample_rate)
        ps, pn = _power(clean[m]), _power(noise[m])
    else:
        ps, pn = _power(clean), _power(noise)
    if pn <= 0:
        return float("inf")
    return 10.0 * np.log10(max(ps, _EPS) / pn)


def si_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Scale-invariant SDR in dB (Le Roux et al. 2019), means removed."""
    r = np.asarray(reference, dtype=np.float64)
    e = np.asarray(estimate, dtype=np.float64)
    r = r - r.mean()
    e = e - e.mean()
    rr = float(np.dot(r, r))
    if rr <= 0:
        return float("-inf")
    target = (np.dot(e, r) / rr) * r
    noise = e - target
    pt, pn = float(np.dot(target, target)), float(np.dot(noise, noise))
    if pn <= 0:
        return float("inf")
    return 10.0 * np.log10(max(pt, _EPS) / pn)


def log_spectral_distance(
    x: np.ndarray, y: np.ndarray, sample_rate: int, *, n_fft: int = 512
) -> float:
    """Log-spectral distance in dB: RMS over frequency of the log power difference, meaned over frames."""
    hop = n_fft // 4
    _, _, sx = signal.stft(np.asarray(x, np.float64), fs=sample_rate, nperseg=n_fft, noverlap=n_fft - hop)
    _, _, sy = signal.stft(np.asarray(y, np.float64), fs=sample_rate, nperseg=n_fft, noverlap=n_fft - hop)
    floor = 1e-10
    lx = 10 * np.log10(np.abs(sx) ** 2 + floor)
    ly = 10 * np.log10(np.abs(sy) ** 2 + floor)
    return float(np.mean(np.sqrt(np.mean((lx - ly) ** 2, axis=0))))


def schroeder_db(rir: np.ndarray) -> np.ndarray:
    """Schroeder backward-integrated energy decay curve in dB, 0 dB at the start."""
    e = np.asarray(rir, dtype=np.float64) ** 2
    edc = np.cumsum(e[::-1])[::-1]
    return 10.0 * np.log10(edc / max(edc[0], _EPS) + _EPS)


def rt60(rir: np.ndarray, sample_rate: int, *, decay_db: float = 20.0) -> float:
    """RT60 in seconds from the energy decay curve: a line fitted from -5 dB to
    -(5 + decay_db) dB (T20 by default), extrapolated to -60 dB."""
    h = np.asarray(rir, dtype=np.float64)
    start = int(np.argmax(np.abs(h)))
    edc = schroeder_db(h[start:])
    hi, lo = -5.0, -5.0 - decay_db
    idx = np.nonzero((edc <= hi) & (edc >= lo))[0]
    if idx.size < 2:
        return float("nan")
    t = idx / float(sample_rate)
    slope, _ = np.polyfit(t, edc[idx], 1)
    if slope >= 0:
        return float("nan")
    return float(-60.0 / slope)


def direct_window(sample_rate: int, window_ms: float = 2.5) -> int:
    return max(1, int(round(window_ms * 1e-3 * sample_rate)))


def drr_db(rir: np.ndarray, sample_rate: int, *, window_ms: float = 2.5) -> float:
    """Direct-to-reverberant ratio in dB: energy within ±``window_ms`` of the direct
    (largest) peak against the energy after it."""
    h = np.asarray(rir, dtype=np.float64)
    peak = int(np.argmax(np.abs(h)))
    w = direct_window(sample_rate, window_ms)
    direct = h[max(0, peak - w) : peak + w + 1]
    tail = h[peak + w + 1 :]
    pd, pt = float(np.sum(direct**2)), float(np.sum(tail**2))
    if pt <= 0:
        return float("inf")
    return 10.0 * np.log10(max(pd, _EPS) / pt)
