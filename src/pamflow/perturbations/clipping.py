"""Clipping (NORESQA): hard clipping at 0 to 40 dB below the signal's peak.

Hard clipping models an overdriven input stage or a recording made too hot: every sample
beyond a threshold is flattened to it. The threshold is set relative to the clip's own
peak, so a given strength means the same for a quiet and a loud recording. rho maps
linearly (in dB) onto the threshold, 0 dB below the peak at rho = 0 (nothing clipped,
transparent) to 40 dB below it at rho = 100: ``threshold_db = -40 * rho / 100``.

NORESQA used audiomentations' ``ClippingDistortion``, which clips a random 0..40 % of the
samples (at percentiles of the signal). pamflow sets the threshold in dB instead, a
property of the processing rather than of the signal; the range is chosen to span the same
ground: on speech-like test clips 0, -10, -20 and -40 dB clip about 0, 3.5, 17 and 43 %
of the samples and give an SI-SDR of about +inf, 11, 3.5 and -1 dB.

After clipping, the output is scaled so its RMS equals the input's (make-up gain), so the
family changes the waveform's shape, not its loudness (a 40 dB drop in peak level would
otherwise dominate what a listener hears). The scaled output never exceeds the input's
peak. ``clips`` is True: an input beyond full scale is clipped at +-1, not scaled down.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pamflow.perturbations.base import Family, Params, PerturbationError


@dataclass(frozen=True)
class ClippingParams(Params):
    threshold_db: float  # clipping level relative to the input's peak, dB (<= 0)


def clip_level(audio: np.ndarray, threshold_db: float) -> float:
    """The absolute clipping level for ``audio``: its peak times ``10 ** (threshold_db / 20)``."""
    if not (math.isfinite(threshold_db) and threshold_db <= 0.0):
        raise PerturbationError(
            f"clipping: threshold_db must be a finite number <= 0, got {threshold_db!r}"
        )
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    return peak * 10.0 ** (threshold_db / 20.0)


class Clipping(Family[ClippingParams]):
    """Hard clipping below the peak, RMS kept; rho -> 0..-40 dB threshold (linear in dB)."""

    name = "clipping"
    category = "misc"
    params_type = ClippingParams
    parameter = "clipping threshold below the peak"
    unit = "dB"
    mild = 0.0
    strong = -40.0
    mapping = "linear"
    clips = True

    def _sample(self, rng, strength, sources):
        return ClippingParams(threshold_db=self.value(strength))

    def _apply(self, audio, sample_rate, params, sources):
        x = audio.astype(np.float64)
        t = clip_level(x, params.threshold_db)
        if t <= 0.0:
            return x
        y = np.clip(x, -t, t)
        rms_in = math.sqrt(float(np.mean(x * x)))
        rms_out = math.sqrt(float(np.mean(y * y)))
        return y * (rms_in / rms_out)
