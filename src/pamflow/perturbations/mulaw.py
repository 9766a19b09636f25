"""μ-law re-quantisation (DPAM Table 1, compression; NORESQA): 60 bits down to 1 bit.

Models logarithmic companding codecs (G.711 telephony uses 8-bit μ-law) and, at few bits,
coarse requantisation noise that follows the signal's envelope. With ``bits`` b and
``μ = 2^b − 1`` (as in DPAM's code), each sample x in [−1, 1] is

1. companded (after clipping x to [−1, 1]): ``y = sign(x) · ln(1 + μ|x|) / ln(1 + μ)``,
2. quantised uniformly with step ``Δ = 2 / 2^b = 2^(1−b)`` over [−1, 1], mid-tread:
   ``y_q = clip(Δ · round(y / Δ), −1, 1)``; zero is a level, so silence stays silent
   (like G.711, whose sign-magnitude codes hold zero exactly), and there are
   ``2 · floor(2^(b−1)) + 1`` levels (3 at b = 1: −1, 0, +1),
3. expanded back: ``x̂ = sign(y_q) · ((1 + μ)^|y_q| − 1) / μ`` (DPAM's code stopped after
   step 2; the paper calls the perturbation a re-quantisation, so pamflow expands back).

Strength maps exponentially onto the bits, continuously (no rounding to an integer):
``bits = 60 · (1 / 60) ** (rho / 100)``: 60 bits at rho = 0, 8 bits at rho = 49.2, 1 bit at
rho = 100. At 8 bits the SNR on speech at a normal level is the textbook one for μ-law,
about 38 dB.

Numerics: everything runs in float64 with ``log1p``/``expm1``. The relative resolution of
μ-law at b bits is about ``b · ln 2 · 2^(1−b)``, below float32's 2^−24 from about 30 bits:
from there up (rho below about 17) the output equals the input to float32 precision.
Above 52 bits the step is held at 2^−51, the finest float64 resolves over [−1, 1]
(μ still follows 2^b − 1); nothing audible changes there.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pamflow.perturbations.base import Family, Params, PerturbationError

#: steps finer than 2^-51 cannot be resolved by float64 over [-1, 1]
MAX_STEP_BITS = 52.0


@dataclass(frozen=True)
class MulawParams(Params):
    bits: float  # μ = 2**bits - 1 and 2**bits quantisation steps over [-1, 1]


def mulaw_requantise(x: np.ndarray, bits: float) -> np.ndarray:
    """Compand with μ = 2^bits − 1, quantise (mid-tread, step 2^(1−bits)), expand: float64."""
    b = float(bits)
    if not (math.isfinite(b) and 1.0 <= b <= 64.0):
        raise PerturbationError(f"mulaw: bits must be a number in [1, 64], got {bits!r}")
    mu = 2.0**b - 1.0
    log_mu = math.log1p(mu)
    # |y| of step 1, in place (|clip(x, -1, 1)| = min(|x|, 1)); its sign is x's
    y = np.minimum(np.abs(np.asarray(x, dtype=np.float64)), 1.0)
    np.multiply(y, mu, out=y)
    np.log1p(y, out=y)
    np.divide(y, log_mu, out=y)
    return requantise_magnitudes(y, x, b, lambda m: np.expm1(m * log_mu) / mu)


def quantise(y: np.ndarray, bits: float) -> np.ndarray:
    """Uniform mid-tread quantisation of companded ``y`` in [−1, 1] with step 2^(1−bits)
    (held at 2^−51 from 52 bits up); zero is a level. Shared by μ-law and A-law."""
    step = 2.0 ** (1.0 - min(float(bits), MAX_STEP_BITS))
    return np.clip(step * np.round(y / step), -1.0, 1.0)


def requantise_magnitudes(
    y: np.ndarray, x: np.ndarray, bits: float, expand: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """``sign(yq) · expand(|yq|)`` with ``yq = quantise(sign(x) · y, bits)``: the expanded
    output of μ-law or A-law from the companded magnitudes ``y`` (float64, overwritten) of
    the samples ``x``; ``expand`` maps magnitudes in [0, 1] to [0, 1], elementwise.

    Bit for bit what expanding :func:`quantise`'s output gives, with fewer passes: the
    levels are counted as magnitudes, and where there are fewer levels than samples / 4
    ``expand`` runs once per level and the samples look theirs up.
    """
    step = 2.0 ** (1.0 - min(float(bits), MAX_STEP_BITS))
    np.divide(y, step, out=y)
    np.round(y, out=y)  # |round(sign · y / step)|: rounding is odd
    top = math.ceil(1.0 / step) + 1  # levels from here up are all clipped to 1
    if top < max(64, y.size // 4) and not math.isnan(float(y.max())):
        table = expand(np.minimum(step * np.arange(top + 1, dtype=np.float64), 1.0))
        out = table.take(np.minimum(y, top, out=y).astype(np.intp))
    else:
        np.multiply(y, step, out=y)
        out = expand(np.minimum(y, 1.0, out=y))
    # the sign of x, where the level is not 0 (sign(yq) is 0 there: +0.0 out, as np.sign)
    np.copysign(out, x, out=out)
    return np.add(out, 0.0, out=out)


class Mulaw(Family[MulawParams]):
    """μ-law compand, quantise, expand; rho -> 60..1 bits, exponential."""

    name = "mulaw"
    category = "compression"
    params_type = MulawParams
    parameter = "bits (μ = 2^bits − 1)"
    unit = "bits"
    mild = 60.0
    strong = 1.0
    mapping = "exponential"

    def _sample(self, rng, strength, sources):
        return MulawParams(bits=self.value(strength))

    def _apply(self, audio, sample_rate, params, sources):
        return mulaw_requantise(audio, params.bits)
