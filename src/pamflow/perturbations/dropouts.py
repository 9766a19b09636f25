"""Dropouts (DPAM, miscellaneous): 0.01 % to 20 % of the samples lost in packet-like runs.

A dropout models a lost packet with no concealment: a run of consecutive samples set to
exactly zero, with hard edges (no fade; the click at each edge is part of what a listener
hears when a packet is lost, and hard edges keep the dropped share exact). rho maps
exponentially onto the share of dropped samples, 0.01 % at rho = 0 to 20 % at rho = 100
(DPAM Table 1): ``percent = 0.01 * 2000 ** (rho / 100)``; exactly
``round(n * percent / 100)`` samples of an ``n``-sample clip are dropped.

DPAM released no code for dropouts; pamflow places them as follows. From the params'
``seed`` a generator cuts the clip into consecutive slots whose lengths are drawn
uniformly in 5..40 ms (rounded to samples; the frame sizes of common speech codecs, one to
a few packets), then puts the even-numbered slots in a random order, followed by the odd
ones in a random order and last a short slot left at the clip's end, if any. Runs are taken
from that order until the target is reached, the last one cut short (at its start) to make
the total exact. Even slots alone cover about half of a clip, so at up to 20 % the runs are
5..40 ms long and separated by at least 5 ms of kept audio; only very short clips (or hand
made params above ~45 %) reach the odd slots, where runs join into longer bursts. The order
depends only on the seed, the clip's length and its sample rate, so for one seed a stronger
setting drops a superset of the samples a weaker one drops.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pamflow.perturbations.base import Family, Params, PerturbationError
from pamflow.seeding import draw_seed

#: shortest and longest run (slot), seconds
RUN_MIN_S = 0.005
RUN_MAX_S = 0.040


@dataclass(frozen=True)
class DropoutsParams(Params):
    percent: float  # share of samples dropped, % (0..100)
    seed: int  # seeds the generator of slot lengths and their order


def run_bounds(sample_rate: int) -> tuple[int, int]:
    """Shortest and longest run in samples at ``sample_rate``."""
    lo = max(1, int(round(RUN_MIN_S * sample_rate)))
    hi = max(lo, int(round(RUN_MAX_S * sample_rate)))
    return lo, hi


def dropped_count(n: int, percent: float) -> int:
    """How many of ``n`` samples are dropped at ``percent`` % (rounded to the nearest)."""
    return int(min(n, round(n * percent / 100.0)))


def dropout_runs(n: int, sample_rate: int, percent: float, seed: int) -> np.ndarray:
    """The dropped runs of an ``n``-sample clip: an int64 array of ``(start, length)`` rows.

    Rows come in the order they were taken; every run but the last is a whole slot
    (``run_bounds`` long, unless it is the short slot at the clip's end), the last one is
    cut to make the total exactly :func:`dropped_count`. Runs never overlap.
    """
    if not (math.isfinite(percent) and 0.0 <= percent <= 100.0):
        raise PerturbationError(f"dropouts: percent must lie in [0, 100], got {percent!r}")
    target = dropped_count(n, percent)
    if target == 0:
        return np.zeros((0, 2), dtype=np.int64)
    lo, hi = run_bounds(sample_rate)
    g = np.random.default_rng(int(seed))
    lengths = g.integers(lo, hi + 1, size=n // lo + 2)
    ends = np.cumsum(lengths)
    count = int(np.searchsorted(ends, n, side="left")) + 1  # slots needed to cover n
    ends = np.minimum(ends[:count], n)
    starts = np.concatenate([[0], ends[:-1]])
    sizes = ends - starts
    full = np.arange(count - 1) if sizes[-1] < lo and count > 1 else np.arange(count)
    rest = np.arange(full.size, count)  # the short slot at the end, if any
    order = np.concatenate(
        [g.permutation(full[full % 2 == 0]), g.permutation(full[full % 2 == 1]), rest]
    )
    taken = np.cumsum(sizes[order])
    j = int(np.searchsorted(taken, target, side="left"))
    chosen = order[: j + 1]
    runs = np.stack([starts[chosen], sizes[chosen]], axis=1).astype(np.int64)
    runs[-1, 1] -= int(taken[j]) - target
    return runs


def dropout_mask(n: int, sample_rate: int, percent: float, seed: int) -> np.ndarray:
    """Boolean mask of the dropped samples (see :func:`dropout_runs`)."""
    mask = np.zeros(n, dtype=bool)
    for start, length in dropout_runs(n, sample_rate, percent, seed):
        mask[start : start + length] = True
    return mask


class Dropouts(Family[DropoutsParams]):
    """Packet-like runs of zeros (5..40 ms); rho -> 0.01..20 % of samples (exp)."""

    name = "dropouts"
    category = "misc"
    params_type = DropoutsParams
    parameter = "dropped samples"
    unit = "% of samples"
    mild = 0.01
    strong = 20.0
    mapping = "exponential"

    def _sample(self, rng, strength, sources):
        return DropoutsParams(percent=self.value(strength), seed=draw_seed(rng))

    def _peak_bound(self, params, input_peak):
        return input_peak  # input samples, moved, kept or zeroed

    def _apply(self, audio, sample_rate, params, sources):
        y = audio.copy()
        for start, length in dropout_runs(y.size, sample_rate, params.percent, params.seed):
            y[start : start + length] = 0.0
        return y
