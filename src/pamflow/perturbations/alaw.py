"""A-law re-quantisation (G.711's other companding law, used in European telephony), beside
μ-law: 60 bits down to 1 bit.

With A = 87.6 (G.711's) and ``bits`` b, each sample x in [−1, 1] is

1. companded (after clipping x to [−1, 1]) by the continuous A-law:
   ``y = sign(x) · A|x| / (1 + ln A)`` for ``|x| < 1/A`` (linear near zero), else
   ``y = sign(x) · (1 + ln(A|x|)) / (1 + ln A)``,
2. quantised uniformly with step ``Δ = 2^(1−b)`` over [−1, 1], mid-tread, as pamflow's μ-law
   (zero is a level, so silence stays silent; G.711's 8-bit codes are mid-riser, whose
   smallest levels are ±Δ/2: at few bits that would turn silence into a loud offset),
3. expanded back with the inverse law.

G.711 approximates the curve with 13 linear segments; pamflow uses the continuous law it
approximates. Unlike μ-law, A does not grow with the bits: the law's shape is fixed and only
the quantisation coarsens, so at equal bits A-law keeps more resolution on quiet samples
(its slope at zero is A / (1 + ln A) = 16 against μ-law's μ / ln(1 + μ)).

Strength maps exponentially onto the bits, continuously, as for μ-law:
``bits = 60 · (1 / 60) ** (rho / 100)``: 60 bits at rho = 0, 8 bits at rho = 49.2, 1 bit at
rho = 100. At 8 bits the SNR on speech at a normal level is about 38 dB, the textbook
figure for G.711. Everything runs in float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pamflow.perturbations.base import Family, Params, PerturbationError
from pamflow.perturbations.mulaw import requantise_magnitudes

#: G.711's A
A = 87.6
_LN_A1 = 1.0 + math.log(A)


@dataclass(frozen=True)
class AlawParams(Params):
    bits: float  # 2**bits quantisation steps over [-1, 1] of the A-law companded signal


def alaw_compress(x: np.ndarray) -> np.ndarray:
    """The continuous A-law (A = 87.6) of ``x`` clipped to [−1, 1]: float64 in [−1, 1]."""
    x = np.clip(np.asarray(x, dtype=np.float64), -1.0, 1.0)
    return np.sign(x) * _compress_magnitudes(x)


def _compress_magnitudes(x: np.ndarray) -> np.ndarray:
    """``|alaw_compress(x)|``."""
    ax = np.minimum(np.abs(np.asarray(x, dtype=np.float64)), 1.0)  # |clip(x, -1, 1)|
    small = ax < 1.0 / A
    return np.where(small, A * ax, 1.0 + np.log(np.maximum(A * ax, 1.0))) / _LN_A1


def alaw_expand(y: np.ndarray) -> np.ndarray:
    """The inverse of :func:`alaw_compress`."""
    ay = np.abs(np.asarray(y, dtype=np.float64)) * _LN_A1
    x = np.where(ay < 1.0, ay / A, np.exp(np.minimum(ay, _LN_A1) - 1.0) / A)
    return np.sign(y) * x


def alaw_requantise(x: np.ndarray, bits: float) -> np.ndarray:
    """Compand with A-law, quantise (mid-tread, step 2^(1−bits)), expand: float64."""
    b = float(bits)
    if not (math.isfinite(b) and 1.0 <= b <= 64.0):
        raise PerturbationError(f"alaw: bits must be a number in [1, 64], got {bits!r}")
    y = _compress_magnitudes(x)  # x's sign is carried by requantise_magnitudes
    return requantise_magnitudes(y, x, b, _expand_magnitudes)


def _expand_magnitudes(m: np.ndarray) -> np.ndarray:
    """:func:`alaw_expand` of magnitudes ``m`` >= 0."""
    ay = m * _LN_A1
    return np.where(ay < 1.0, ay / A, np.exp(np.minimum(ay, _LN_A1) - 1.0) / A)


class Alaw(Family[AlawParams]):
    """A-law compand, quantise, expand; rho -> 60..1 bits, exponential."""

    name = "alaw"
    category = "compression"
    params_type = AlawParams
    parameter = "bits of the A-law companded signal (A = 87.6)"
    unit = "bits"
    mild = 60.0
    strong = 1.0
    mapping = "exponential"

    def _sample(self, rng, strength, sources):
        return AlawParams(bits=self.value(strength))

    def _apply(self, audio, sample_rate, params, sources):
        return alaw_requantise(audio, params.bits)
