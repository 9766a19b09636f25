"""Packet loss with concealment (VoIP): lost packets filled the way a G.711 decoder's packet
loss concealment does (ITU-T G.711 Appendix I), not left as silence like ``dropouts``.

**Losses.** The clip is cut into packets of ``frame_ms`` (20 ms by default). Which packets are
lost follows a two-state Gilbert model, the usual model of bursty Internet loss: from a
received packet the next is lost with probability ``p``, from a lost one the next is
received with probability ``q = 1 / burst``; ``p = q * rate / (1 - rate)`` so that the
long-run share of lost packets is ``loss_rate``, in bursts of ``burst`` packets on average.
The chain starts in its stationary state and draws from a generator seeded by ``seed``.

**Concealment** (Appendix I's waveform substitution, its 8 kHz constants scaled to the clip's
rate), for each run of lost packets, on the output so far (earlier concealment included,
as in a decoder):

1. the pitch period ``T`` (5..15 ms) maximises the normalised correlation of the last 20 ms
   of history with the history ``T`` earlier;
2. the lost span is filled by repeating the last pitch period, with the last quarter period
   before the loss cross-faded into the repetition (so the joint has no click); after 10 ms
   the last two periods are repeated, after 20 ms the last three (cross-fading a quarter
   period at each change), which keeps long gaps from buzzing;
3. from 10 ms into the loss the fill is attenuated linearly, 20 % per 10 ms, to silence at
   60 ms;
4. at the first received packet the fill's continuation is cross-faded into the signal over
   4 ms, plus 4 ms per 10 ms of loss beyond the first 10 ms (at most 10 ms).

With less than 35 ms of history (15 ms of pitch lag plus the 20 ms window) a loss is left
silent, as a decoder that has heard nothing yet. ``loss_rate`` 0 leaves the clip unchanged.

Strength maps linearly onto the loss rate: 0 % at rho = 0, 40 % at rho = 100.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pamflow.perturbations.base import Family, Params, PerturbationError

ENGINE = "g711-appendix-i"
#: Appendix I's durations (seconds)
PITCH_MIN_S, PITCH_MAX_S, CORR_S = 0.005, 0.015, 0.020
STEP_S = 0.010  # one more period repeated, and 20 % less gain, per 10 ms of loss
SILENT_S = 0.060
END_OLA_S, END_OLA_STEP_S, END_OLA_MAX_S = 0.004, 0.004, 0.010


@dataclass(frozen=True)
class PlcParams(Params):
    loss_rate: float  # long-run share of lost packets, 0..0.9
    seed: int  # seeds the loss pattern
    frame_ms: float = 20.0  # packet length
    burst: float = 2.0  # mean run of lost packets (Gilbert model)
    engine: str = ENGINE


def loss_pattern(frames: int, loss_rate: float, burst: float, seed: int) -> np.ndarray:
    """Boolean array, True where a packet is lost (the Gilbert model above)."""
    rate = float(loss_rate)
    if frames <= 0 or rate <= 0.0:
        return np.zeros(max(frames, 0), dtype=bool)
    q = 1.0 / float(burst)
    p = min(1.0, q * rate / (1.0 - rate))
    u = np.random.default_rng(seed).random(frames + 1)
    lost = np.empty(frames, dtype=bool)
    state = bool(u[0] < rate)  # the stationary distribution
    for i in range(frames):
        lost[i] = state
        state = (u[i + 1] >= q) if state else (u[i + 1] < p)
    return lost


def _pitch(history: np.ndarray, tmin: int, tmax: int, width: int) -> int:
    """The lag in [tmin, tmax] maximising the normalised correlation of the last ``width``
    samples of ``history`` with the history that many samples earlier (the smallest such
    lag on a tie)."""
    n = history.size
    seg = history[n - width :]
    # windows[j] = history[n - width - lag : n - lag] for lag = tmax - j
    windows = np.lib.stride_tricks.sliding_window_view(history[n - width - tmax : n - tmin], width)
    dots = windows @ seg
    sq = np.cumsum(np.concatenate([[0.0], history[n - width - tmax : n - tmin] ** 2]))
    energy = sq[width:] - sq[:-width]
    den = np.sqrt(np.maximum(energy, 0.0) * float(np.dot(seg, seg)))
    corr = np.where(den > 0, dots / np.where(den > 0, den, 1.0), 0.0)[::-1]  # by lag, tmin first
    return tmin + int(np.argmax(corr))


def _ramp(n: int) -> np.ndarray:
    return (np.arange(1, n + 1, dtype=np.float64) / (n + 1)) if n > 0 else np.zeros(0)


def conceal(out: np.ndarray, start: int, stop: int, next_loss: int, sample_rate: int) -> None:
    """Fill ``out[start:stop]`` in place from ``out[:start]`` (the steps above); the fade back
    into the signal after ``stop`` does not reach ``next_loss``."""
    sr = float(sample_rate)
    tmin, tmax = round(PITCH_MIN_S * sr), round(PITCH_MAX_S * sr)
    width, step = round(CORR_S * sr), round(STEP_S * sr)
    if start < tmax + width:
        out[start:stop] = 0.0
        return
    history = out[:start].astype(np.float64)
    period = _pitch(history, tmin, tmax, width)
    quarter = max(1, period // 4)
    gap = stop - start
    extra = max(0, gap - step) // step  # whole 10 ms steps of loss beyond the first
    n_end = min(round(END_OLA_MAX_S * sr), round((END_OLA_S + extra * END_OLA_STEP_S) * sr))
    n_end = max(0, min(n_end, next_loss - stop, out.size - stop))
    t = np.arange(gap + n_end)

    def repeated(span: int) -> np.ndarray:  # the last ``span`` samples of history, repeated
        return history[start - span + np.mod(t, span)]

    # the fill: the last k periods repeated, k = 1, 2, 3 from 0, 10 and 20 ms into the loss;
    # each change cross-fades a quarter period from the old pattern to the new one
    fill = repeated(period)
    for k in (2, 3):
        first = (k - 1) * step
        if first >= t.size:
            break
        new = repeated(min(k * period, start))
        fade = min(quarter, t.size - first)
        w = _ramp(fade)
        fill[first : first + fade] = (1 - w) * fill[first : first + fade] + w * new[
            first : first + fade
        ]
        fill[first + fade :] = new[first + fade :]
    # attenuation: full for 10 ms, then down 20 % per 10 ms, silent from 60 ms
    fill *= np.clip(1.0 - (t - step) / (SILENT_S * sr - step), 0.0, 1.0)
    # start: the last quarter period of history fades into the history one period earlier,
    # which the repetition continues without a jump
    w = _ramp(quarter)
    lead = history[start - quarter : start]
    before = history[start - period - quarter : start - period]
    out[start - quarter : start] = (1 - w) * lead + w * before
    out[start:stop] = fill[:gap]
    if n_end:
        w = _ramp(n_end)
        real = out[stop : stop + n_end].astype(np.float64)
        out[stop : stop + n_end] = (1 - w) * fill[gap:] + w * real


def packet_loss_concealed(
    audio: np.ndarray, sample_rate: int, lost: np.ndarray, frame: int
) -> np.ndarray:
    """``audio`` with the packets marked in ``lost`` (``frame`` samples each) concealed."""
    out = np.array(audio, dtype=np.float32)
    n = out.size
    starts = np.flatnonzero(np.diff(np.concatenate([[False], lost])).astype(bool) & lost)
    runs = []
    for s in starts:
        e = s
        while e < lost.size and lost[e]:
            e += 1
        runs.append((int(s) * frame, min(n, int(e) * frame)))
    for i, (a, b) in enumerate(runs):
        if a >= n:
            break
        nxt = runs[i + 1][0] if i + 1 < len(runs) else n
        conceal(out, a, b, nxt, sample_rate)
    return out


class PacketLoss(Family[PlcParams]):
    """Lost packets concealed as G.711 Appendix I does; rho -> 0..40 % loss, linear."""

    name = "packet_loss"
    category = "misc"
    params_type = PlcParams
    parameter = (
        "packet loss rate (20 ms packets, Gilbert bursts of 2 on average, G.711 App. I concealment)"
    )
    unit = "%"
    mild = 0.0
    strong = 40.0
    mapping = "linear"

    def _sample(self, rng, strength, sources):
        return PlcParams(loss_rate=self.value(strength) / 100.0, seed=int(rng.integers(2**31)))

    def _apply(self, audio, sample_rate, params, sources):
        if params.engine != ENGINE:
            raise PerturbationError(
                f"packet_loss: engine must be {ENGINE!r}, got {params.engine!r}"
            )
        rate, burst, ms = float(params.loss_rate), float(params.burst), float(params.frame_ms)
        if not (math.isfinite(rate) and 0.0 <= rate <= 0.9):
            raise PerturbationError(
                f"packet_loss: loss_rate must be in [0, 0.9], got {params.loss_rate!r}"
            )
        if not (math.isfinite(burst) and burst >= 1.0):
            raise PerturbationError(f"packet_loss: burst must be >= 1, got {params.burst!r}")
        if not (math.isfinite(ms) and 2.5 <= ms <= 200.0):
            raise PerturbationError(
                f"packet_loss: frame_ms must be in [2.5, 200], got {params.frame_ms!r}"
            )
        frame = max(1, round(ms / 1000.0 * sample_rate))
        lost = loss_pattern(-(-audio.shape[0] // frame), rate, burst, int(params.seed))
        return packet_loss_concealed(audio, sample_rate, lost, frame)
