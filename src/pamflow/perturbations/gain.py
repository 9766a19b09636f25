"""Gain (CDPAM augmentation): a level change of 0 to -20 dB.

CDPAM trains its metric to ignore overall level by presenting clips at a random gain in
-20..0 dB. Strength maps linearly onto the attenuation: rho = 0 leaves the level as it is
(0 dB), rho = 100 attenuates by 20 dB.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pamflow.perturbations.base import Family, Params


@dataclass(frozen=True)
class GainParams(Params):
    gain_db: float


class Gain(Family[GainParams]):
    name = "gain"
    category = "augment"
    params_type = GainParams
    parameter = "gain"
    unit = "dB"
    mild = 0.0
    strong = -20.0
    mapping = "linear"

    def _sample(self, rng, strength, sources):
        return GainParams(gain_db=self.value(strength))

    def _apply(self, audio, sample_rate, params, sources):
        y = audio.astype(np.float64)
        y *= 10.0 ** (params.gain_db / 20.0)
        return y

    def _peak_bound(self, params, input_peak):
        # rounding is monotonic: no |x| * g exceeds the peak's (NaN where g is)
        return input_peak * 10.0 ** (params.gain_db / 20.0)
