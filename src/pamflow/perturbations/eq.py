"""Equalisation (DPAM Table 1, eq): cut or boost three bands, amount 0 to 1.

Models a coloured playback or transmission chain (a small loudspeaker, a cheap microphone,
a tone control): the spectrum is tilted band by band while the waveform stays otherwise
intact. As in DPAM's code, the signal is split into three bands at 500 Hz and 1 kHz with
4th-order Butterworth filters, and each band k (low, mid, high) gets its own gain
``g_k = 1 + s · u_k``, with u_k drawn uniformly in [−1, 1] and recorded in params, and
``s`` (the "band cut/boost" amount of Table 1) the strength mapped linearly:
``s = rho / 100``, 0 at rho = 0 and 1 at rho = 100. At s = 1 a band's gain lies anywhere
between 0 (the band removed: −∞ dB) and 2 (+6.0 dB); at s = 0.5 between 0.5 and 1.5
(−6.0 to +3.5 dB); at s = 0 every gain is 1. The draws u_k are the same at every strength,
so for a fixed seed the gains move along a straight line from 1 as rho grows.

The split is exactly complementary, so s = 0 is the identity (to float64 rounding): the
low band is a zero-phase low-pass (a 4th-order Butterworth at 500 Hz run forwards and
backwards: 8th-order slopes, −6 dB at 500 Hz); the high band is the zero-phase high-pass
at 1 kHz of what remains; the mid band is the rest, so low + mid + high = x. The whole
response is real (zero-phase): with L(f) and H(f) the squared Butterworth magnitudes,
``G(f) = g_low·L + g_mid·(1 − L)(1 − H) + g_high·(1 − L)·H``. A 200 Hz tone lies 99.9 %
in the low band and a 3 kHz tone 99.99 % in the high band; the mid band is only an octave
wide, so a 700 Hz tone (its centre) is 89 % mid, 6 % low and 5 % high. At low sample
rates both crossovers are scaled down by the same factor so that the upper one stays at or
below 0.8 × Nyquist (below 2.5 kHz sampling).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import signal

from pamflow.perturbations.base import Family, Params, PerturbationError

try:  # scipy's own in-place kernel behind signal.sosfilt, called without the copies
    from scipy.signal._sosfilt import _sosfilt
except ImportError:  # pragma: no cover - another scipy: the public functions, same output
    _sosfilt = None

CROSSOVERS_HZ = (500.0, 1000.0)
ORDER = 4


@dataclass(frozen=True)
class EqParams(Params):
    amount: float  # s in [0, 1]: the band gains are 1 + amount * u
    u: tuple[float, float, float]  # per band (low, mid, high), each in [-1, 1]
    crossovers_hz: tuple[float, float] = CROSSOVERS_HZ

    @property
    def gains(self) -> tuple[float, float, float]:
        """Linear gain of the low, mid and high band."""
        low, mid, high = (1.0 + self.amount * u for u in self.u)
        return low, mid, high


def crossovers(
    sample_rate: int, wanted: tuple[float, float] = CROSSOVERS_HZ
) -> tuple[float, float]:
    """The crossover frequencies used at ``sample_rate``: ``wanted``, scaled down together
    if the upper one would lie above 0.8 x Nyquist."""
    lo, hi = (float(f) for f in wanted)
    scale = min(1.0, 0.8 * (sample_rate / 2.0) / hi)
    return lo * scale, hi * scale


@lru_cache(maxsize=64)
def _sos(kind: str, freq: float, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """The filter's second-order sections, and their initial state for a unit step."""
    sos = signal.butter(ORDER, freq, btype=kind, fs=sample_rate, output="sos")
    return sos, signal.sosfilt_zi(sos)  # shared: neither is ever written to


def _sosfiltfilt(filt: tuple[np.ndarray, np.ndarray], x: np.ndarray, pad: int) -> np.ndarray:
    """``signal.sosfiltfilt(sos, x, padlen=pad)`` of float64 ``x`` (``0 < pad < x.size``),
    bit for bit: the same odd extension, initial states and kernel, with the initial
    states computed once per filter and no copies beyond the two passes' buffers."""
    sos, zi = filt
    if _sosfilt is None:  # pragma: no cover
        return signal.sosfiltfilt(sos, x, padlen=pad)
    # scipy's odd_ext, then a forward pass started at rest on the first sample
    y = np.concatenate((2 * x[:1] - x[pad:0:-1], x, 2 * x[-1:] - x[-2 : -(pad + 2) : -1]))
    y = y.reshape(1, -1)
    _sosfilt(sos, y, np.ascontiguousarray((zi * y[0, :1]).reshape(1, -1, 2)))
    # the backward pass, started at rest on the last sample
    back = y[:, ::-1].copy()
    _sosfilt(sos, back, np.ascontiguousarray((zi * back[0, :1]).reshape(1, -1, 2)))
    return back[0, ::-1][pad:-pad]


def split_bands(
    x: np.ndarray, sample_rate: int, wanted: tuple[float, float] = CROSSOVERS_HZ
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(low, mid, high)`` float64 bands of ``x`` with ``low + mid + high == x``."""
    x = np.asarray(x, dtype=np.float64)
    lo, hi = crossovers(sample_rate, wanted)
    if x.size < 2:
        return x.copy(), np.zeros_like(x), np.zeros_like(x)
    pad = min(x.size - 1, 15)  # scipy's default padlen for these two-section filters
    low = _sosfiltfilt(_sos("lowpass", lo, sample_rate), x, pad)
    rest = x - low
    high = _sosfiltfilt(_sos("highpass", hi, sample_rate), rest, pad)
    return low, rest - high, high


def _check(params: EqParams) -> None:
    s, u, f = params.amount, params.u, params.crossovers_hz
    if not (isinstance(s, int | float) and math.isfinite(s) and 0.0 <= s <= 1.0):
        raise PerturbationError(f"eq: amount must be a number in [0, 1], got {s!r}")
    if len(u) != 3 or not all(isinstance(v, int | float) and -1.0 <= v <= 1.0 for v in u):
        raise PerturbationError(f"eq: u must be three numbers in [-1, 1], got {u!r}")
    if len(f) != 2 or not (0.0 < f[0] < f[1]):
        raise PerturbationError(f"eq: crossovers_hz must be two rising positive Hz, got {f!r}")


class Eq(Family[EqParams]):
    """Three-band cut/boost (500 Hz, 1 kHz); rho -> amount 0..1, linear."""

    name = "eq"
    category = "eq"
    params_type = EqParams
    parameter = "band cut/boost amount s (band gains 1 + s·u)"
    unit = ""
    mild = 0.0
    strong = 1.0
    mapping = "linear"

    def _sample(self, rng, strength, sources):
        u = rng.uniform(-1.0, 1.0, size=3)
        return EqParams(amount=self.value(strength), u=(float(u[0]), float(u[1]), float(u[2])))

    def _apply(self, audio, sample_rate, params, sources):
        _check(params)
        (low, mid, high), (g_low, g_mid, g_high) = (
            split_bands(audio, sample_rate, params.crossovers_hz),
            params.gains,
        )
        # sum(g * b for g, b in zip(gains, bands)), in place: 0 + g·low + g·mid + g·high
        y = np.multiply(low, g_low)
        y += 0.0
        t = np.multiply(mid, g_mid)
        y += t
        y += np.multiply(high, g_high, out=t)
        return y
