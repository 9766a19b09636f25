"""Room acoustics of an impulse response: Schroeder decay, RT60, direct-to-reverberant ratio."""

from __future__ import annotations

import numpy as np

from pamflow.measures.levels import EPS


def schroeder_db(rir: np.ndarray) -> np.ndarray:
    """Schroeder backward-integrated energy decay curve in dB, 0 dB at the start."""
    e = np.asarray(rir, dtype=np.float64) ** 2
    edc = np.cumsum(e[::-1])[::-1]
    return 10.0 * np.log10(edc / max(edc[0], EPS) + EPS)


def rt60(rir: np.ndarray, sample_rate: int, *, decay_db: float = 20.0) -> float:
    """RT60 in seconds from the energy decay curve: a line fitted from -5 dB to
    -(5 + decay_db) dB (T20 by default), extrapolated to -60 dB."""
    h = np.asarray(rir, dtype=np.float64)
    start = int(np.argmax(np.abs(h)))
    hi, lo = -5.0, -5.0 - decay_db
    edc, offset = _schroeder_db_within(h[start:], lo, hi)
    idx = np.nonzero((edc <= hi) & (edc >= lo))[0]
    if idx.size < 2:
        return float("nan")
    t = (idx + offset) / float(sample_rate)
    slope, _ = np.polyfit(t, edc[idx], 1)
    if slope >= 0:
        return float("nan")
    return float(-60.0 / slope)


def _schroeder_db_within(rir: np.ndarray, lo: float, hi: float) -> tuple[np.ndarray, int]:
    """``(schroeder_db(rir)[offset:stop], offset)`` for a range that holds every sample
    whose level lies within [``lo``, ``hi``] dB, the same values bit for bit.

    The decay curve never rises (a backward sum of squares), so the range is found by
    bisection on the energies, with a margin far above rounding, and the logarithm, the
    costly part, is taken there only.
    """
    e = np.asarray(rir, dtype=np.float64) ** 2
    edc = np.cumsum(e[::-1])[::-1]
    norm = max(edc[0], EPS) if edc.size else EPS
    if not np.isfinite(norm):  # NaN or inf somewhere: the whole curve, as it comes
        return 10.0 * np.log10(edc / norm + EPS), 0
    first = _first_below(edc, norm * 10.0 ** (hi / 10.0) * (1.0 + 1e-9), strict=False)
    stop = _first_below(edc, norm * 10.0 ** (lo / 10.0) * (1.0 - 1e-9), strict=True)
    return 10.0 * np.log10(edc[first:stop] / norm + EPS), first


def _first_below(curve: np.ndarray, value: float, *, strict: bool) -> int:
    """The first index of the non-increasing ``curve`` at or below ``value`` (below it
    where ``strict``); ``curve.size`` if none is."""
    lo, hi = 0, curve.size
    while lo < hi:
        mid = (lo + hi) // 2
        v = curve[mid]
        if v < value or (v == value and not strict):
            hi = mid
        else:
            lo = mid + 1
    return lo


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
    return 10.0 * np.log10(max(pd, EPS) / pt)
