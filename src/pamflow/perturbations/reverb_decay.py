"""reverb_rt60's decay reshaping: a bank RIR's tail made to decay at a target rate, and
continued by shaped noise where the target outlasts it (see :mod:`pamflow.perturbations.reverb`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import signal

from pamflow import measures

#: the bank tail is kept down to this level of its energy decay curve before the noise
#: continuation takes over (when one is needed)
JOINT_EDC_DB = -30.0
JOINT_CROSSFADE_S = 0.01


def late_shaping_filter(late: np.ndarray, a: float, sample_rate: int) -> np.ndarray:
    """A short linear-phase FIR with the average spectrum of ``late`` (decay removed)."""
    t = np.arange(late.size) / sample_rate
    flat = late * np.exp(a * t)
    nper = int(min(256, max(16, flat.size // 4)))
    _, psd = signal.welch(flat, nperseg=nper)
    fir = np.fft.fftshift(np.fft.irfft(np.sqrt(psd), nper)) * np.hanning(nper)
    return fir


@dataclass(frozen=True)
class Continuation:
    """Where the noise continuation of a bank tail starts, and its unit-variance noise."""

    joint: int  # first sample that is noise only
    start: int  # first sample of the crossfade into the noise
    noise: np.ndarray  # shaped noise for samples start .. length


@dataclass(frozen=True)
class ContinuationPlan:
    """What a bank tail's noise continuation takes from the bank RIR alone."""

    joint: int
    start: int
    fir: np.ndarray  # the shaping filter
    norm: float  # its L2 norm


def continuation_plan(h: np.ndarray, sample_rate: int, a_bank: float) -> ContinuationPlan:
    """The joint where the bank tail's own decay curve reaches :data:`JOINT_EDC_DB`, the
    crossfade's start, and a filter with the spectrum of the late tail before the joint."""
    t0 = 2 * measures.direct_window(sample_rate) + 1
    tail = h[t0:]
    below = np.nonzero(measures.schroeder_db(tail) <= JOINT_EDC_DB)[0]
    j = t0 + max(8, int(below[0]) if below.size else int(0.9 * tail.size))
    fir = late_shaping_filter(h[max(t0, j - 4096) : j], a_bank, sample_rate)
    start = j - min(int(JOINT_CROSSFADE_S * sample_rate), j - t0)
    return ContinuationPlan(j, start, fir, math.sqrt(float(np.sum(fir**2))))


def continuation(
    h: np.ndarray,
    sample_rate: int,
    a_bank: float,
    seed: int,
    length: int,
    plan: ContinuationPlan | None = None,
) -> Continuation:
    """Seeded noise shaped like the late tail of ``h`` (see :func:`continuation_plan`;
    what does not depend on the target decay, so corrections of the decay reuse it)."""
    if plan is None:
        plan = continuation_plan(h, sample_rate, a_bank)
    white = np.random.default_rng(seed).standard_normal(length - plan.start + plan.fir.size - 1)
    noise = signal.oaconvolve(white, plan.fir, mode="valid")
    return Continuation(plan.joint, plan.start, noise / plan.norm)


def reshape(
    h: np.ndarray,
    sample_rate: int,
    a_bank: float,
    a_target: float,
    length: int,
    late: Continuation | None,
    tail_times: np.ndarray | None = None,
) -> np.ndarray:
    """``h`` (prepared) with its tail decaying at ``a_target`` instead of ``a_bank``,
    ``length`` samples long, continued by ``late`` (needed where ``length > h.size`` or
    the decay is slowed down). ``tail_times``: ``(arange(2w + 1, h.size) - w) / sr``."""
    w = measures.direct_window(sample_rate)
    t0 = 2 * w + 1
    out = np.zeros(length)
    out[: h.size] = h[:length]
    if tail_times is None or length < h.size:
        tail_times = (np.arange(t0, min(h.size, length)) - w) / sample_rate
    out[t0 : h.size] *= np.exp(-(a_target - a_bank) * tail_times)
    if late is None:
        return out
    j, start = late.joint, late.start
    # the level at the joint, from the mean power of the reshaped tail just before it
    win = max(4, min(int(0.05 * sample_rate), (j - t0) // 2))
    wt = win / sample_rate
    decay_mean = math.expm1(2.0 * a_target * wt) / (2.0 * a_target * wt)
    level = math.sqrt(float(np.mean(out[j - win : j] ** 2)) / decay_mean)
    cont = late.noise * (level * np.exp(-a_target * (np.arange(start, length) - j) / sample_rate))
    xf = j - start
    if xf > 0:
        phase = (np.arange(xf) + 0.5) / xf * (np.pi / 2)
        cont[:xf] = out[start:j] * np.cos(phase) + cont[:xf] * np.sin(phase)
    out[start:] = cont
    return out
