"""Frequency masking (NORESQA): a band of 1 % to 50 % of 0..Nyquist removed.

Frequency masking removes one band of frequencies, as SpecAugment masks spectrogram rows,
but on the waveform: a missing band in a bad filter, a narrow-band channel, a notch.
NORESQA used audiomentations' ``FrequencyMask`` (a 6th-order Butterworth band-stop whose
width is drawn up to half of 0..Nyquist). rho maps exponentially onto the band's width,
1 % of 0..Nyquist at rho = 0 to 50 % at rho = 100:
``width_percent = 1 * 50 ** (rho / 100)`` (at 16 kHz: 80 Hz to 4 kHz).

Params record the band as fractions of the Nyquist frequency (``lo``, ``hi``), so they
mean the same at any sample rate. The position is drawn once: ``u`` uniform in [0, 1),
``lo = u * (1 - w)``, ``hi = lo + w`` for a width ``w``; for one draw a wider band contains
every narrower one (both edges move outwards as ``w`` grows).

The filter is zero-phase, applied with one real FFT of the whole clip (zero-padded by
``8 / edge`` samples so its ringing does not wrap around): the gain is exactly 0 on
[lo, hi] and rises to 1 along a raised-cosine edge of width ``edge`` (0.5 % of
0..Nyquist, 40 Hz at 16 kHz) on each side. The smooth edges keep the filter's ringing to
tens of milliseconds, where a brick-wall mask would ring through the whole clip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import fft as sfft

from pamflow.perturbations.base import Family, Params, PerturbationError

#: width of the raised-cosine edge on each side of the band, fraction of Nyquist
EDGE = 0.005


@dataclass(frozen=True)
class FreqMaskParams(Params):
    lo: float  # lower edge of the removed band, fraction of Nyquist (0..1)
    hi: float  # upper edge, fraction of Nyquist (lo..1)
    edge: float = EDGE  # raised-cosine transition on each side, fraction of Nyquist


def mask_gain(freq: np.ndarray, lo: float, hi: float, edge: float) -> np.ndarray:
    """The mask's gain at frequencies ``freq`` (fractions of Nyquist)."""
    f = np.asarray(freq, dtype=np.float64)
    dist = np.maximum(lo - f, f - hi)  # <= 0 inside the band, distance to it outside
    if edge <= 0.0:
        return (dist > 0).astype(np.float64)
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.clip(dist / edge, 0.0, 1.0))
    return np.where(dist <= 0.0, 0.0, ramp)


def check_band(params: FreqMaskParams) -> None:
    lo, hi, edge = params.lo, params.hi, params.edge
    if not all(math.isfinite(v) for v in (lo, hi, edge)):
        raise PerturbationError(f"freq_mask: lo, hi and edge must be finite, got {params}")
    if not (0.0 <= lo <= hi <= 1.0):
        raise PerturbationError(
            f"freq_mask: need 0 <= lo <= hi <= 1 (fractions of Nyquist), got lo={lo}, hi={hi}"
        )
    if not (0.0 <= edge <= 0.5):
        raise PerturbationError(f"freq_mask: edge must lie in [0, 0.5], got {edge}")


class FreqMask(Family[FreqMaskParams]):
    """One band removed by a zero-phase FFT mask; rho -> 1..50 % of 0..Nyquist (exp)."""

    name = "freq_mask"
    category = "misc"
    params_type = FreqMaskParams
    parameter = "masked band width"
    unit = "% of 0..Nyquist"
    mild = 1.0
    strong = 50.0
    mapping = "exponential"

    def _sample(self, rng, strength, sources):
        u = float(rng.random())
        w = self.value(strength) / 100.0
        lo = u * (1.0 - w)
        return FreqMaskParams(lo=lo, hi=min(1.0, lo + w), edge=EDGE)

    def _apply(self, audio, sample_rate, params, sources):
        check_band(params)
        x = audio.astype(np.float64)
        n = x.size
        pad = n if params.edge <= 0.0 else int(math.ceil(8.0 / params.edge))
        size = sfft.next_fast_len(n + pad, real=True)
        spec = sfft.rfft(x, size)
        freq = np.arange(spec.size) * (2.0 / size)
        return sfft.irfft(spec * mask_gain(freq, params.lo, params.hi, params.edge), size)[:n]
