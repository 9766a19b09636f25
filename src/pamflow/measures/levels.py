"""Levels and ratios: active level (speech-active frames), SNR, SI-SDR.

Used to set perturbation levels (SNR against active speech), to label datasets (NMR pairs),
by the simulated listener, and by the tests. All take float arrays and return floats in dB
or seconds.
"""

from __future__ import annotations

import numpy as np

#: floor under powers, so silence gives finite dB
EPS = 1e-20


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
    active, n = active_frames(x, sample_rate, frame_s=frame_s, floor_db=floor_db)
    if active is None:
        return np.ones(x.size, dtype=bool)
    mask = np.repeat(active, n)
    tail = x.size - mask.size
    if tail:
        mask = np.concatenate([mask, np.full(tail, bool(active[-1]))])
    return mask


def active_frames(
    x: np.ndarray, sample_rate: int, *, frame_s: float = 0.02, floor_db: float = 30.0
) -> tuple[np.ndarray | None, int]:
    """The decisions behind :func:`active_mask`: ``(active, n)``, one boolean per whole
    frame of ``n`` samples (the samples after the last whole frame go with it); ``active``
    is None where ``x`` is shorter than a frame (every sample counts as active)."""
    x = np.asarray(x, dtype=np.float64)
    n = max(1, int(frame_s * sample_rate))
    frames = x.size // n
    if frames == 0:
        return None, n
    e = np.mean(x[: frames * n].reshape(frames, n) ** 2, axis=1)
    peak = float(e.max())
    if peak <= 0:
        return np.zeros(frames, dtype=bool), n
    return e >= peak * 10.0 ** (-floor_db / 10.0), n


def select_active(v: np.ndarray, active: np.ndarray | None, n: int) -> np.ndarray:
    """``v[active_mask(...)]`` for the ``(active, n)`` of :func:`active_frames` (a new
    array), gathered frame by frame."""
    if active is None:
        return np.array(v)
    frames = active.size
    out = v[: frames * n].reshape(frames, n)[active].reshape(-1)
    if active[-1] and v.size > frames * n:
        out = np.concatenate([out, v[frames * n :]])
    return out


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
    return 10.0 * np.log10(max(ps, EPS) / pn)


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
    return 10.0 * np.log10(max(pt, EPS) / pn)
