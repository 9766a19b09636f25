"""A simulated listener: same/different answers from the audio pair itself.

Builds without humans still need JND labels. A :class:`SimulatedListener` hears a reference
and a perturbed copy, measures an objective :func:`perceptual_distance` between them (it
never sees the strength ``rho``), and answers "different" (1) with probability::

    psi(d) = lapse / 2 + (1 - lapse) * Phi((d - threshold) / slope)

drawing from its own ``numpy.random.Generator``. ``threshold`` and ``slope`` are in the
distance's unit (dB, see below). A :class:`ListenerPanel` draws a population of listeners
with log-normal thresholds around :data:`JND_DISTANCE_DB`, the distance of a typical
just-noticeable difference.

Calibration (six speech-like clips from :func:`pamflow.testing.speech_like`, 2.5 s at
16 kHz, the registry's families): at the middle of the strength axis (``rho = 50``), white
noise (34 dB SNR) measures 0.35..0.64 dB (median 0.46) and MP3 (51 kb/s) 0.47..0.56 dB
(median 0.53); a 1 dB level change measures 0.57..0.65 dB. :data:`JND_DISTANCE_DB` =
0.5 dB puts the median listener's JND in the middle of both axes (white noise near
rho 50..53, MP3 near rho 45..50) and a level JND near 0.8 dB. Over the whole registry the
median listener's JND falls at rho ~ 40..70 for the additive noises, MP3, mu-law,
dropouts, frequency masking and DRR; earlier for EQ and clipping (rho ~ 10..20) and pops
(rho ~ 0: a few full-scale clicks are audible); later for Griffin-Lim (rho ~ 75).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import sparse
from scipy.special import ndtr

#: distance (dB, :func:`perceptual_distance`) of a typical just-noticeable difference
JND_DISTANCE_DB = 0.5
#: internal-noise floor of :func:`perceptual_distance`, dB below the loudest mel band
DYNAMIC_RANGE_DB = 50.0
N_MELS = 40
#: power of the mean over frames (2: a root mean square, which weighs short local changes,
#: clicks or dropouts, more than a plain mean would)
POOL_POWER = 2.0


class ListenerError(ValueError):
    """Bad input to the simulated listener: bad audio, parameters or distance curve."""


@functools.lru_cache(maxsize=16)
def _mel_basis(sample_rate: int, n_fft: int, n_mels: int) -> sparse.csr_matrix:
    import librosa

    fb = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, dtype=np.float64)
    return sparse.csr_matrix(fb)


@functools.lru_cache(maxsize=16)
def _window(n_fft: int) -> np.ndarray:
    return np.hanning(n_fft + 2)[1:-1]


def _frame_params(sample_rate: int) -> tuple[int, int]:
    """FFT size: the power of two at or above 30 ms (512 at 16 kHz); hop a quarter of it."""
    n_fft = 1 << max(6, math.ceil(math.log2(0.03 * sample_rate)))
    return n_fft, n_fft // 4


def _mel_energy(x: np.ndarray, sample_rate: int, n_fft: int, hop: int, n_mels: int) -> np.ndarray:
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop] * _window(n_fft)
    spec = np.fft.rfft(frames, axis=1)
    power = spec.real**2 + spec.imag**2
    return np.asarray(_mel_basis(sample_rate, n_fft, n_mels) @ power.T)  # (n_mels, frames)


def _as_signal(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2:
        x = x.mean(axis=1)
    if x.ndim != 1:
        raise ListenerError(f"{name}: expected mono audio (n,) or (n, channels), got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ListenerError(f"{name}: audio holds NaN or infinite samples")
    return x


def perceptual_distance(
    ref: np.ndarray,
    test: np.ndarray,
    sample_rate: int,
    *,
    dynamic_range_db: float = DYNAMIC_RANGE_DB,
    n_mels: int = N_MELS,
    pool_power: float = POOL_POWER,
) -> float:
    """Mean absolute log-mel difference in dB between ``ref`` and ``test``.

    Both signals are cut into the same frames (about 30 ms: 512 samples at 16 kHz, hop a
    quarter), the power spectrum of each frame is pooled into ``n_mels`` mel bands, and an
    internal-noise floor ``dynamic_range_db`` below the loudest band of either signal is
    added to every band energy (a soft absolute threshold: differences far below the
    signal count little, so the measure ignores inaudible changes in digital silence yet
    grows smoothly as noise emerges). Each frame's distance is the mean over bands of
    ``|10 log10((E_ref + floor) / (E_test + floor))|``; the frames are pooled by a power
    mean ``(mean_t d_t ** pool_power) ** (1 / pool_power)`` (2 by default: a root mean
    square, so that short local changes such as dropouts and clicks weigh more than they
    would in a plain mean; 1 gives the plain mean).

    Properties: 0 for identical audio; symmetric in ``ref`` and ``test``; unchanged when
    both are scaled by the same gain; a gain change of ``g`` dB gives at most ``|g|``; it
    grows with the level of added noise, reverb, coding noise, band-limiting, EQ, pops and
    dropouts. Signals of different length are compared over the shorter one; stereo is
    averaged to mono. Cost: a few milliseconds for a 2.5 s pair at 16 kHz. Calibrated at
    16 kHz (see the module docstring); other rates use a proportional frame size.
    """
    a = _as_signal(ref, "ref")
    b = _as_signal(test, "test")
    if not sample_rate or sample_rate <= 0:
        raise ListenerError(f"sample_rate must be a positive integer, got {sample_rate}")
    if not dynamic_range_db > 0:
        raise ListenerError(f"dynamic_range_db must be > 0, got {dynamic_range_db}")
    if not (math.isfinite(pool_power) and pool_power >= 1):
        raise ListenerError(f"pool_power must be a finite number >= 1, got {pool_power}")
    n_fft, hop = _frame_params(int(sample_rate))
    n = min(a.size, b.size)
    if n < n_fft:
        raise ListenerError(
            f"audio too short for perceptual_distance: {n} samples, need at least {n_fft} "
            f"at {sample_rate} Hz"
        )
    ea = _mel_energy(a[:n], int(sample_rate), n_fft, hop, int(n_mels))
    eb = _mel_energy(b[:n], int(sample_rate), n_fft, hop, int(n_mels))
    peak = max(float(ea.max()), float(eb.max()))
    if peak <= 0.0:
        return 0.0  # both silent
    floor = peak * 10.0 ** (-dynamic_range_db / 10.0)
    per_frame = np.mean(np.abs(10.0 * np.log10((ea + floor) / (eb + floor))), axis=0)
    return float(np.mean(per_frame**pool_power) ** (1.0 / pool_power))


class SimulatedListener:
    """A listener who answers from the distance between the two recordings.

    ``threshold`` (dB of :func:`perceptual_distance`) is the distance at which "same" and
    "different" are equally likely, ``slope`` (dB) the spread of the Gaussian-CDF
    psychometric function, ``lapse`` the rate of random answers (half of them
    "different"). Answers are drawn from ``numpy.random.default_rng(seed)``, so a listener
    rebuilt from :meth:`to_dict` gives the same answers to the same questions.
    """

    def __init__(self, threshold: float, slope: float, lapse: float = 0.05, seed: int = 0) -> None:
        if not (math.isfinite(threshold) and threshold > 0):
            raise ListenerError(f"threshold must be a finite distance > 0 dB, got {threshold}")
        if not (math.isfinite(slope) and slope > 0):
            raise ListenerError(f"slope must be a finite distance > 0 dB, got {slope}")
        if not (0.0 <= lapse < 1.0):
            raise ListenerError(f"lapse must be in [0, 1), got {lapse}")
        if int(seed) != seed or seed < 0:
            raise ListenerError(f"seed must be an integer >= 0, got {seed}")
        self.threshold = float(threshold)
        self.slope = float(slope)
        self.lapse = float(lapse)
        self.seed = int(seed)
        self._rng = np.random.default_rng(self.seed)

    def __repr__(self) -> str:
        return (
            f"SimulatedListener(threshold={self.threshold:.4g}, slope={self.slope:.4g}, "
            f"lapse={self.lapse:.4g}, seed={self.seed})"
        )

    def to_dict(self) -> dict[str, Any]:
        """The listener's parameters (JSON-serialisable), for the dataset's records."""
        return {
            "threshold": self.threshold,
            "slope": self.slope,
            "lapse": self.lapse,
            "seed": self.seed,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SimulatedListener:
        return cls(**data)

    def p_different(self, distance: float) -> float:
        """Probability of answering "different" to a pair at ``distance`` dB."""
        if not math.isfinite(distance) or distance < 0:
            raise ListenerError(f"distance must be a finite number >= 0, got {distance}")
        z = (distance - self.threshold) / self.slope
        return float(self.lapse / 2 + (1 - self.lapse) * ndtr(z))

    def answer_distance(self, distance: float) -> int:
        """Answer (1 = different, 0 = same) to a pair whose distance is already known."""
        return int(self._rng.random() < self.p_different(distance))

    def answer(self, ref: np.ndarray, test: np.ndarray, sample_rate: int) -> int:
        """Answer (1 = different, 0 = same) to the pair ``ref``, ``test``."""
        return self.answer_distance(perceptual_distance(ref, test, sample_rate))

    def true_jnd_strength(
        self,
        distance_of_strength: Callable[[float], float],
        *,
        lo: float = 0.0,
        hi: float = 100.0,
        tol: float = 0.01,
    ) -> float:
        """The strength at which this listener answers "different" half the time.

        ``distance_of_strength(rho)`` gives the distance of the pair at strength ``rho``
        along one axis; it must grow with ``rho``. ``p = 0.5`` exactly where the distance
        equals ``threshold``, found by bisection to ``tol`` strength units. Returns ``lo``
        when even the mildest pair is at or above threshold, ``hi`` when even the strongest
        is below it.
        """
        if not lo < hi:
            raise ListenerError(f"need lo < hi, got lo={lo}, hi={hi}")
        f_lo = float(distance_of_strength(lo)) - self.threshold
        f_hi = float(distance_of_strength(hi)) - self.threshold
        if not (math.isfinite(f_lo) and math.isfinite(f_hi)):
            raise ListenerError("distance_of_strength returned a non-finite distance")
        if f_lo >= 0:
            return float(lo)
        if f_hi < 0:
            return float(hi)
        while hi - lo > tol:
            mid = 0.5 * (lo + hi)
            f_mid = float(distance_of_strength(mid)) - self.threshold
            if not math.isfinite(f_mid):
                raise ListenerError(f"distance_of_strength({mid}) is not finite")
            if f_mid >= 0:
                hi = mid
            else:
                lo = mid
        return 0.5 * (lo + hi)


class _default_or_self:
    """A method that binds to its instance, or to the default instance ``cls()`` when it is
    called on the class: ``ListenerPanel.sample(rng, n)`` draws from the default panel."""

    def __init__(self, func: Callable[..., Any]) -> None:
        self.func = func
        self.__doc__ = func.__doc__
        self.__wrapped__ = func

    def __get__(self, obj: Any, objtype: type | None = None) -> Callable[..., Any]:
        owner = objtype if objtype is not None else type(obj)
        return types.MethodType(self.func, obj if obj is not None else owner())


@dataclasses.dataclass(frozen=True)
class ListenerPanel:
    """A population of simulated listeners.

    Thresholds are log-normal: median ``threshold_median`` dB with a log standard deviation
    ``threshold_log_sd`` (0.3: two thirds of listeners within x0.74..x1.35); each
    listener's ``slope`` is ``threshold`` times a factor drawn uniformly in ``slope_ratio``
    and their ``lapse`` uniformly in ``lapse``.
    """

    threshold_median: float = JND_DISTANCE_DB
    threshold_log_sd: float = 0.3
    slope_ratio: tuple[float, float] = (0.15, 0.4)
    lapse: tuple[float, float] = (0.0, 0.08)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.threshold_median) and self.threshold_median > 0):
            raise ListenerError(f"threshold_median must be > 0 dB, got {self.threshold_median}")
        if not (math.isfinite(self.threshold_log_sd) and self.threshold_log_sd >= 0):
            raise ListenerError(f"threshold_log_sd must be >= 0, got {self.threshold_log_sd}")
        lo, hi = self.slope_ratio
        if not (0 < lo <= hi and math.isfinite(hi)):
            raise ListenerError(
                f"slope_ratio must be (low, high) with 0 < low <= high, got {self.slope_ratio}"
            )
        lo, hi = self.lapse
        if not (0 <= lo <= hi < 1):
            raise ListenerError(
                f"lapse must be (low, high) with 0 <= low <= high < 1, got {self.lapse}"
            )

    @_default_or_self
    def sample(self, rng: np.random.Generator, n: int) -> list[SimulatedListener]:
        """Draw ``n`` listeners; each gets its own answer seed drawn from ``rng``.

        Called on the class (``ListenerPanel.sample(rng, n)``) it uses the default panel.
        """
        if int(n) != n or n < 0:
            raise ListenerError(f"n must be an integer >= 0, got {n}")
        n = int(n)
        thresholds = self.threshold_median * np.exp(self.threshold_log_sd * rng.standard_normal(n))
        slopes = thresholds * rng.uniform(*self.slope_ratio, size=n)
        lapses = rng.uniform(*self.lapse, size=n)
        seeds = rng.integers(0, 2**63 - 1, size=n)
        return [
            SimulatedListener(float(t), float(s), float(lp), int(sd))
            for t, s, lp, sd in zip(thresholds, slopes, lapses, seeds, strict=True)
        ]


@functools.lru_cache(maxsize=16)
def panel_for(seed: int, key: int, size: int, threshold: float) -> tuple[SimulatedListener, ...]:
    """The panel of ``size`` listeners of a dataset with seed ``seed`` (``key`` keeps the
    panels of different recipes apart); cached per process."""
    from pamflow.seeding import derive_seed

    rng = np.random.default_rng(derive_seed(seed, key))
    return tuple(ListenerPanel(threshold_median=threshold).sample(rng, size))
