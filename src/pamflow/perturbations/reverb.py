"""Reverberation (DPAM Table 1, category "reverb"): room impulse responses from the bank.

Both families convolve the input with a room impulse response (RIR) built from one of the
recordings of kind "rir" in ``sources`` (its id is recorded in params), read at the
input's sample rate. The bank RIR is prepared the same way for both:

* its direct path is found (the largest sample), moved onto the sample grid (a sub-sample
  shift, so no fraction of a sample of delay is added), and scaled to unit gain with its
  sign made positive: the output's direct path lines up with the input at the input's
  level. The prepared RIR starts ``w = measures.direct_window(sr)`` samples (2.5 ms)
  before the direct peak, which lies at index ``w``;
* "direct" is the ±2.5 ms window around that peak (``h[:2w+1]``), "tail" all that follows
  (``h[2w+1:]``), the same split as :func:`pamflow.measures.drr_db`.

The output is the convolution aligned on the direct peak and cut to the input's length.
Loudness is not normalised: a strong tail makes the output louder, and ``Family.apply``
scales it down as a whole where it would exceed full scale. The RIR is built in float64;
two engines convolve, recorded in params as ``engine`` so a replay uses the one that made
the row: ``"float32"`` (the default for new rows: input and RIR rounded to float32 and
convolved through float32 FFTs, reverb_drr's RIR spectrum summed from the bank RIR's
direct and tail spectra, which a worker computes once per recording and clip length; the
output differs from float64's by about -130 dB of its level, below the noise of 24-bit
storage) and ``"float64"`` (float64 FFTs, 2-3x slower; the engine of rows made before the
float32 one existed, which is why params without ``engine`` name it).

``reverb_drr``: the direct-to-reverberant ratio, 65 dB (rho = 0) down to -27 dB
(rho = 100), linear in dB; the tail of a randomly drawn bank RIR is scaled so that the
energy ratio of direct to tail equals the target exactly. At very low DRR the tail's
largest sample can exceed the direct peak; :func:`pamflow.measures.drr_db`, which takes
the largest sample for the direct path, then no longer finds it, while the ratio around
the true direct path (index ``w``) is still exact.

``reverb_rt60``: the reverberation time, 0.05 s (rho = 0) to 8 s (rho = 100),
exponential (``rt60 = 0.05 * 160 ** (rho / 100)``). One of the three bank RIRs whose
measured ``rt60_s`` is closest to the target (in log time) is drawn, and its decay
reshaped: the tail is multiplied by ``exp(-(a_target - a_bank) * t)``, ``t`` counted from
the direct peak, with ``a = 3 ln(10) / RT60`` (amplitude decay rate; energy falls 60 dB in
RT60). Where the target outlasts the bank RIR, its late tail (from where the bank tail's
own decay curve reaches -30 dB) is continued by seeded Gaussian noise shaped to the
spectrum of that late tail, decaying at the target rate and energy-matched at the joint
(Polack's stochastic model of late reverberation); the RIR runs until its envelope has
decayed by 60 dB. The direct path and the level of the early tail are kept, so the DRR
stays near the bank RIR's: it moves by ``10 log10(rt60_bank / rt60_target)`` dB, as the
diffuse field of one room at one distance does when only its absorption changes (Sabine),
a few dB for targets inside the bank's range; it is capped at +10 dB (the tail scaled up
where it would fall lower), so that the decay stays audible and measurable. The mildest
setting is therefore a dry room, not a transparent one. RT60 is as
:func:`pamflow.measures.rt60` measures it on the built RIR (T20 of the Schroeder curve,
direct path included); as T20 also sees the direct path and the gap before the first
reflection, the applied decay time is corrected (up to 3 secant steps) until the measured
RT60 is within 1 % of the target where the RIR allows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import fft as sfft
from scipy import signal
from scipy.fft import next_fast_len

from pamflow import measures
from pamflow.perturbations import rir_cache
from pamflow.perturbations.base import Family, P, Params, PerturbationError
from pamflow.perturbations.reverb_decay import (
    ContinuationPlan,
    continuation,
    continuation_plan,
    reshape,
)
from pamflow.seeding import draw_seed

LN1000 = 3.0 * math.log(10.0)  # a = LN1000 / rt60: amplitude decay rate for 60 dB of energy
#: how many of the closest bank RIRs reverb_rt60 draws from
RT60_CANDIDATES = 3
#: reverb_rt60 keeps the tail at most this far (dB) below the direct path, so that the
#: decay stays audible and measurable (T20 fits the energy decay from -5 to -25 dB)
RT60_MAX_DRR_DB = 10.0
#: at most this many corrections of the applied decay time (see build_rir)
RT60_CORRECTIONS = 3


@dataclass(frozen=True)
class DrrParams(Params):
    """Target direct-to-reverberant ratio (dB) and the id of the bank RIR."""

    drr_db: float
    rir_id: str
    engine: str = "float64"  # the convolution: "float32" (new rows) or "float64"; see above


@dataclass(frozen=True)
class Rt60Params(Params):
    """Target RT60 (s), the id of the bank RIR, and the seed of the noise continuation."""

    rt60_s: float
    rir_id: str
    seed: int
    engine: str = "float64"  # the convolution: "float32" (new rows) or "float64"; see above


#: the engines that can convolve a row, by the name its params record
ENGINES = ("float32", "float64")


# -- preparing a bank RIR -------------------------------------------------------------
def _fractional_peak(h: np.ndarray, peak: int, w: int, up: int = 32) -> float:
    """The direct peak's position in samples, to 1/``up`` of a sample."""
    lo, hi = max(0, peak - w), min(h.size, peak + w + 1)
    seg = h[lo:hi]
    if seg.size < 4:
        return float(peak)
    fine = signal.resample(seg, seg.size * up)
    return lo + float(np.argmax(np.abs(fine))) / up


def _shift(h: np.ndarray, delta: float) -> np.ndarray:
    """``h`` delayed by ``delta`` samples (fractional), via a phase ramp on a padded FFT."""
    pad = 64
    n = next_fast_len(h.size + 2 * pad, real=True)
    spec = np.fft.rfft(np.concatenate([np.zeros(pad), h]), n)
    spec *= np.exp(-2j * np.pi * np.fft.rfftfreq(n) * delta)
    return np.fft.irfft(spec, n)[pad : pad + h.size]


def _direct_gain(direct: np.ndarray, sample_rate: int) -> float:
    """RMS magnitude response of the direct window over 100 Hz .. min(0.4 sr, 8 kHz)."""
    nfft = 1 << max(12, int(direct.size - 1).bit_length())
    mag2 = np.abs(np.fft.rfft(direct, nfft)) ** 2
    f = np.fft.rfftfreq(nfft, 1.0 / sample_rate)
    band = (f >= 100.0) & (f <= min(0.4 * sample_rate, 8000.0))
    return float(np.sqrt(np.mean(mag2[band])))


def prepared_rir(sources, rir_id: str, sample_rate: int) -> np.ndarray:
    """The bank RIR ``rir_id`` at ``sample_rate``: direct peak on the grid at index
    ``w = measures.direct_window(sample_rate)``, unit direct gain, positive polarity.
    float64; a new array (the cached recording is not touched)."""
    return _bank(sources, rir_id, int(sample_rate)).h.copy()


class _Bank:
    """A bank RIR prepared at one sample rate (read-only), with what the families derive
    from it alone, computed when first needed; kept in :data:`rir_cache.BANKS`."""

    __slots__ = ("serial", "h", "drr_db", "_a", "_plan", "_t")

    def __init__(self, serial: int, h: np.ndarray, sample_rate: int) -> None:
        h.setflags(write=False)
        self.serial, self.h = serial, h
        self.drr_db = tail_drr_db(h, sample_rate)
        self._a: float | None = None
        self._plan: ContinuationPlan | None = None
        self._t: np.ndarray | None = None

    def a_bank(self, sr: int, rir_id: str) -> float:
        """Amplitude decay rate of the bank tail (``LN1000 / RT60``)."""
        if self._a is None:
            self._a = LN1000 / _tail_rt60(self.h, sr, measures.direct_window(sr), rir_id)
        return self._a

    def plan(self, sr: int, a_bank: float) -> ContinuationPlan:
        if self._plan is None:
            self._plan = continuation_plan(self.h, sr, a_bank)
        return self._plan

    def tail_times(self, sr: int) -> np.ndarray:
        """Seconds from the direct peak of the tail's samples, ``h[2w+1:]``."""
        if self._t is None:
            w = measures.direct_window(sr)
            self._t = (np.arange(2 * w + 1, self.h.size) - w) / sr
        return self._t


def _bank(sources, rir_id: str, sample_rate: int) -> _Bank:
    """The prepared bank RIR ``rir_id`` at ``sample_rate``, prepared once per recording."""
    if rir_id not in sources:
        raise PerturbationError(f"reverb: RIR id {rir_id!r} is not in the sources")
    raw = np.asarray(sources.load(rir_id, sample_rate))
    serial = rir_cache.recording_key(raw).serial
    return rir_cache.BANKS.get_or_make(
        (serial, sample_rate),
        lambda: _Bank(serial, _prepare(raw, rir_id, sample_rate), sample_rate),
        rir_cache.array_bytes,
    )


def _prepare(raw: np.ndarray, rir_id: str, sample_rate: int) -> np.ndarray:
    """:func:`prepared_rir` of the recording ``raw``."""
    raw = np.asarray(raw, dtype=np.float64)
    if raw.size == 0 or not np.any(raw):
        raise PerturbationError(f"reverb: RIR {rir_id!r} is empty or silent")
    w = measures.direct_window(sample_rate)
    peak = int(np.argmax(np.abs(raw)))
    pos = _fractional_peak(raw, peak, w)
    start = int(round(pos)) - w
    h = _shift(raw, start + w - pos)  # the direct peak now falls on sample start + w
    h = np.concatenate([np.zeros(max(0, -start)), h[max(0, start) :]])
    gain = _direct_gain(h[: 2 * w + 1], sample_rate)
    if gain <= 0.0 or h[w] == 0.0:
        raise PerturbationError(f"reverb: RIR {rir_id!r} has no direct path")
    h /= gain * np.sign(h[w])
    if h.size <= 2 * w + 1 or not np.any(h[2 * w + 1 :]):
        raise PerturbationError(f"reverb: RIR {rir_id!r} has no reverberant tail after 2.5 ms")
    return h


def tail_drr_db(h: np.ndarray, sample_rate: int) -> float:
    """DRR (dB) of a prepared RIR around its direct path at index ``w`` (see module doc)."""
    w = measures.direct_window(sample_rate)
    pd, pt = float(np.sum(h[: 2 * w + 1] ** 2)), float(np.sum(h[2 * w + 1 :] ** 2))
    return 10.0 * math.log10(pd / pt) if pt > 0 else float("inf")


def _set_drr(h: np.ndarray, sample_rate: int, drr_db: float) -> np.ndarray:
    """Scale the tail of a prepared RIR (in place) so that its DRR is ``drr_db``."""
    w = measures.direct_window(sample_rate)
    h[2 * w + 1 :] *= 10.0 ** ((tail_drr_db(h, sample_rate) - drr_db) / 20.0)
    return h


def _bank_rt60(sources, rir_id: str) -> float:
    """The RT60 (s) the manifest records for ``rir_id``, measured at 16 kHz if it does not."""
    src = sources
    value = src.entry(rir_id).get("rt60_s")
    if value is not None and np.isfinite(value) and value > 0:
        return float(value)
    value = measures.rt60(_bank(src, rir_id, 16000).h, 16000)
    if not (np.isfinite(value) and value > 0):
        raise PerturbationError(f"reverb_rt60: cannot measure the RT60 of RIR {rir_id!r}")
    return float(value)


def build_rir(params: DrrParams | Rt60Params, sample_rate: int, sources=None) -> np.ndarray:
    """The exact RIR ``reverb_drr`` or ``reverb_rt60`` applies for ``params`` at
    ``sample_rate`` (float64, direct peak at index ``measures.direct_window(sample_rate)``);
    a new array."""
    return _built_rir(params, int(sample_rate), sources).copy()


def _built_rir(params: DrrParams | Rt60Params, sr: int, sources) -> np.ndarray:
    """:func:`build_rir`, read-only, from :data:`rir_cache.BUILT` where it was built lately."""
    if not isinstance(params, DrrParams | Rt60Params):
        raise PerturbationError(f"reverb: build_rir needs DrrParams or Rt60Params, got {params!r}")
    bank = _bank(sources, params.rir_id, sr)
    # the RIR does not depend on the engine that convolves with it
    key = (
        bank.serial,
        sr,
        type(params).__name__,
        *(v for k, v in vars(params).items() if k != "engine"),
    )
    found = rir_cache.BUILT.get(key)
    if found is None:
        found = _build(bank, params, sr)
        found.setflags(write=False)
        rir_cache.BUILT.put(key, found, found.nbytes)
    return found


def _build(bank: _Bank, params: DrrParams | Rt60Params, sr: int) -> np.ndarray:
    h = bank.h
    if isinstance(params, DrrParams):
        out = h.copy()  # _set_drr of the prepared RIR, whose DRR the bank knows
        drr_db = float(params.drr_db)
        out[2 * measures.direct_window(sr) + 1 :] *= 10.0 ** ((bank.drr_db - drr_db) / 20.0)
        return out
    if not (params.rt60_s > 0 and np.isfinite(params.rt60_s)):
        raise PerturbationError(f"reverb_rt60: rt60_s must be > 0, got {params.rt60_s!r}")
    w = measures.direct_window(sr)
    a_bank = bank.a_bank(sr, params.rir_id)
    # T20 on the whole RIR also sees the direct path and the gap before the first
    # reflections; correct the applied decay time (secant steps in log time) until the
    # measured RT60 is within 1 % of the target, keeping the best of a few tries
    applied = float(params.rt60_s)
    # the RIR runs until the target decay reaches -60 dB, rt60 seconds after the direct path
    length = max(h.size, w + int(math.ceil(applied * sr)))
    late = None
    best, best_err = None, math.inf
    for _ in range(RT60_CORRECTIONS + 1):
        a_target = LN1000 / applied
        if late is None and (length > h.size or a_target < a_bank):
            late = continuation(h, sr, a_bank, params.seed, length, bank.plan(sr, a_bank))
        out = reshape(h, sr, a_bank, a_target, length, late, bank.tail_times(sr))
        if tail_drr_db(out, sr) > RT60_MAX_DRR_DB:
            _set_drr(out, sr, RT60_MAX_DRR_DB)
        measured = measures.rt60(out, sr)
        err = abs(math.log(measured / params.rt60_s)) if np.isfinite(measured) else math.inf
        if err < best_err:
            best, best_err = out, err
        if err < 0.01 or not np.isfinite(err):
            break
        applied *= params.rt60_s / measured
    return out if best is None else best


def _tail_rt60(h: np.ndarray, sr: int, w: int, rir_id: str) -> float:
    value = measures.rt60(h[2 * w + 1 :], sr)
    if not (np.isfinite(value) and value > 0):
        raise PerturbationError(f"reverb_rt60: cannot measure the decay of RIR {rir_id!r}")
    return float(value)


def convolve_aligned(audio: np.ndarray, rir: np.ndarray, sample_rate: int) -> np.ndarray:
    """``audio`` convolved with a prepared ``rir`` (direct peak at index ``w``), aligned on
    the direct peak and cut to the input's length."""
    x = np.asarray(audio, dtype=np.float64)
    w = measures.direct_window(sample_rate)
    h = rir[: x.size + w]  # later taps reach only past the end of the clip
    return signal.fftconvolve(x, h)[w : w + x.size]


def convolve_aligned32(audio: np.ndarray, rir: np.ndarray, sample_rate: int) -> np.ndarray:
    """:func:`convolve_aligned` in float32 (the ``"float32"`` engine): the input and the
    RIR rounded to float32, one FFT of each and an inverse FFT, all in single precision,
    of ``next_fast_len(n + m - 1)`` points. float32 out."""
    x = np.asarray(audio, dtype=np.float32)
    w = measures.direct_window(sample_rate)
    h = np.asarray(rir[: x.size + w], dtype=np.float32)
    size = next_fast_len(x.size + h.size - 1, real=True)
    spec = sfft.rfft(x, size)
    spec *= sfft.rfft(h, size)
    return sfft.irfft(spec, size)[w : w + x.size]


def _drr32(audio: np.ndarray, params: DrrParams, sr: int, sources) -> np.ndarray:
    """reverb_drr's ``"float32"`` engine: :func:`convolve_aligned32` with the RIR's
    spectrum made of the bank RIR's direct and tail spectra (float32, transformed once per
    bank RIR and clip length) as ``D + g T``, ``g`` the tail's gain (float32)."""
    bank = _bank(sources, params.rir_id, sr)
    x = np.asarray(audio, dtype=np.float32)
    w = measures.direct_window(sr)
    m = min(bank.h.size, x.size + w)
    size = next_fast_len(x.size + m - 1, real=True)

    def parts() -> tuple[np.ndarray, np.ndarray]:
        direct, tail = bank.h[:m].astype(np.float32), bank.h[:m].astype(np.float32)
        direct[2 * w + 1 :] = 0.0
        tail[: 2 * w + 1] = 0.0
        return sfft.rfft(direct, size), sfft.rfft(tail, size)

    key = (bank.serial, sr, x.size)
    d, t = rir_cache.SPECTRA.get_or_make(key, parts, lambda v: v[0].nbytes + v[1].nbytes)
    spec = t * np.float32(10.0 ** ((bank.drr_db - float(params.drr_db)) / 20.0))
    spec += d
    spec *= sfft.rfft(x, size)
    return sfft.irfft(spec, size)[w : w + x.size]


class _Reverb(Family[P]):
    category = "reverb"
    needs_sources = True

    def _apply(self, audio, sample_rate, params, sources):
        if params.engine not in ENGINES:
            raise PerturbationError(
                f"{self.name}: engine must be one of {ENGINES}, got {params.engine!r}"
            )
        if params.engine == "float32" and isinstance(params, DrrParams):
            return _drr32(audio, params, sample_rate, sources)
        rir = _built_rir(params, sample_rate, sources)
        if params.engine == "float32":
            return convolve_aligned32(audio, rir, sample_rate)
        return convolve_aligned(audio, rir, sample_rate)

    @staticmethod
    def _rir_ids(sources, name: str) -> list[str]:
        ids = sources.ids("rir")
        if not ids:
            raise PerturbationError(f"{name}: the sources hold no RIR (kind 'rir')")
        return ids


class ReverbDRR(_Reverb[DrrParams]):
    """Reverberation at a direct-to-reverberant ratio of 65 dB (rho = 0) down to -27 dB
    (rho = 100), linear in dB: a bank RIR drawn at random, its tail scaled to the target."""

    name = "reverb_drr"
    params_type = DrrParams
    parameter = "direct-to-reverberant ratio"
    unit = "dB"
    mild = 65.0
    strong = -27.0
    mapping = "linear"

    def _sample(self, rng, strength, sources):
        ids = self._rir_ids(sources, self.name)
        rir_id = ids[int(rng.integers(len(ids)))]
        return DrrParams(drr_db=self.value(strength), rir_id=rir_id, engine="float32")


class ReverbRT60(_Reverb[Rt60Params]):
    """Reverberation with an RT60 of 0.05 s (rho = 0) to 8 s (rho = 100), exponential in
    rho: one of the 3 bank RIRs closest in RT60, its decay reshaped (and continued with
    shaped noise where needed), its DRR kept."""

    name = "reverb_rt60"
    params_type = Rt60Params
    parameter = "reverberation time RT60"
    unit = "s"
    mild = 0.05
    strong = 8.0
    mapping = "exponential"

    def _sample(self, rng, strength, sources):
        ids = self._rir_ids(sources, self.name)
        k = int(rng.integers(RT60_CANDIDATES))
        seed = draw_seed(rng)
        target = self.value(strength)
        dist = sorted((abs(math.log(_bank_rt60(sources, i) / target)), i) for i in ids)
        rir_id = dist[min(k, len(dist) - 1)][1]
        return Rt60Params(rt60_s=target, rir_id=rir_id, seed=seed, engine="float32")
