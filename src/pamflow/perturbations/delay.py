"""Delay (CDPAM augmentation): up to 0.25 s of silence at the start or at the end.

CDPAM makes its metric tolerant of small time shifts by adding 0.25 s of silence at the
beginning or the end of a clip. pamflow keeps the clip's length: silence at the start
shifts the audio later (its end is cut), silence at the end shifts it earlier (its start
is cut). Strength maps linearly onto the length of the silence, 0 s at rho = 0 to 0.25 s
at rho = 100; the side is drawn at random and recorded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pamflow.perturbations.base import Family, Params, PerturbationError


@dataclass(frozen=True)
class DelayParams(Params):
    seconds: float
    side: str  # "start" or "end"


class Delay(Family[DelayParams]):
    name = "delay"
    category = "augment"
    params_type = DelayParams
    parameter = "silence added"
    unit = "s"
    mild = 0.0
    strong = 0.25
    mapping = "linear"

    def _sample(self, rng, strength, sources):
        side = "start" if rng.random() < 0.5 else "end"
        return DelayParams(seconds=self.value(strength), side=side)

    def _peak_bound(self, params, input_peak):
        return input_peak  # input samples, moved, kept or zeroed

    def _apply(self, audio, sample_rate, params, sources):
        if params.side not in ("start", "end"):
            raise PerturbationError(f"delay: side must be 'start' or 'end', got {params.side!r}")
        n = audio.size
        k = min(n, int(round(params.seconds * sample_rate)))
        out = np.zeros(n, dtype=audio.dtype)
        if params.side == "start":
            out[k:] = audio[: n - k]
        else:
            out[: n - k] = audio[k:]
        return out
