"""Pops (DPAM, miscellaneous): 0.01 % to 10 % of the samples set to the signal's peak.

A pop is a single-sample click: the sample is replaced by the signal's maximum or its
minimum, as in the DPAM reference data (a faulty connector, a bit error in a PCM link).
rho maps exponentially onto the share of popped samples, 0.01 % at rho = 0 to 10 % at
rho = 100 (DPAM Table 1): ``percent = 0.01 * 1000 ** (rho / 100)``; the count is
``round(n * percent / 100)`` for a clip of ``n`` samples (so clips shorter than 5,000
samples get no pop at rho = 0). Even rho = 0 is audible as a click or two: on 2 s of
speech-like audio its 3 pops leave an SI-SDR of about 21..25 dB.

Params hold the share and an integer ``seed``. From the seed a generator draws one random
order of all sample positions and a sign per rank; the popped samples are the first
``count`` positions of that order, each set to the max (sign +) or the min (sign -) of the
input. The order depends only on the seed and the clip's length, so for one seed a
stronger setting pops a superset of the samples a weaker one pops, with the same signs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pamflow.perturbations.base import Family, Params, PerturbationError
from pamflow.seeding import draw_seed


@dataclass(frozen=True)
class PopsParams(Params):
    percent: float  # share of samples popped, % (0..100)
    seed: int  # seeds the generator of positions and signs


def popped_count(n: int, percent: float) -> int:
    """How many of ``n`` samples are popped at ``percent`` % (rounded to the nearest)."""
    return int(min(n, round(n * percent / 100.0)))


def pop_positions(n: int, percent: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the popped samples of an ``n``-sample clip, and their signs.

    Returns ``(index, positive)``: ``positive[i]`` is True where sample ``index[i]`` is set
    to the clip's maximum, False where it is set to its minimum. For a given ``seed`` and
    ``n`` the result at a larger ``percent`` starts with the result at a smaller one.
    """
    if not (math.isfinite(percent) and 0.0 <= percent <= 100.0):
        raise PerturbationError(f"pops: percent must lie in [0, 100], got {percent!r}")
    g = np.random.default_rng(int(seed))
    order = g.permutation(n)
    k = popped_count(n, percent)
    # one double per rank, in rank order: the first k of n draws are k draws
    return order[:k], g.random(k) < 0.5


class Pops(Family[PopsParams]):
    """Single-sample pops at the signal's max or min; rho -> 0.01..10 % of samples (exp)."""

    name = "pops"
    category = "misc"
    params_type = PopsParams
    parameter = "popped samples"
    unit = "% of samples"
    mild = 0.01
    strong = 10.0
    mapping = "exponential"

    def _sample(self, rng, strength, sources):
        return PopsParams(percent=self.value(strength), seed=draw_seed(rng))

    def _peak_bound(self, params, input_peak):
        return input_peak  # input samples, moved, kept or zeroed

    def _apply(self, audio, sample_rate, params, sources):
        idx, positive = pop_positions(audio.size, params.percent, params.seed)
        y = audio.copy()
        y[idx[positive]] = audio.max()
        y[idx[~positive]] = audio.min()
        return y
