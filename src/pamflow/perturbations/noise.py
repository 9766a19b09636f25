"""Additive noise (DPAM Table 1, category "additive"): white, pink and recorded noises.

Every family here adds a noise at a signal-to-noise ratio set by the strength: SNR falls
linearly in dB from 66 dB at rho = 0 to 2 dB at rho = 100 (``snr = 66 - 0.64 * rho``).

The SNR is speech-weighted, measured against the *active* part of the clean input (the
20 ms frames within 30 dB of the loudest, :func:`pamflow.measures.active_mask`): the noise
is scaled so that its power over those same active samples is ``active_power(clean) /
10 ** (snr / 10)``. This is exactly what ``pamflow.measures.snr_db(clean, noisy,
sample_rate)`` measures, so the two agree (up to float32 rounding) as long as the output
did not have to be scaled down to fit full scale. Pauses do not dilute the level, so a
sentence with long pauses gets the same audible SNR as one without. A silent input
(active power 0) is returned unchanged: it has no level to set an SNR against.

Synthetic noises (``white_noise``, ``pink_noise``) are drawn from a generator seeded by
the ``seed`` in their params. Recorded noises (``applause_noise``, ``water_drop_noise``,
``room_noise``, ``babble_noise``, and ``corpus_noise`` for any label) record the source id
and a start offset in seconds; the recording is read at the input's sample rate, starting
at the offset, and looped with a short equal-power crossfade if the clip runs past its end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from pamflow.measures.levels import active_frames, select_active
from pamflow.perturbations.base import Family, P, Params, PerturbationError
from pamflow.seeding import draw_seed

#: length of the crossfade where a recorded noise loops back to its start, in seconds
LOOP_CROSSFADE_S = 0.05
#: pink noise has a 1/f power spectrum above this frequency and is flat below it (Hz)
PINK_FLOOR_HZ = 20.0


@dataclass(frozen=True)
class NoiseParams(Params):
    """A synthetic noise: the target SNR (dB, against active speech) and the noise seed."""

    snr_db: float
    seed: int


@dataclass(frozen=True)
class CorpusNoiseParams(Params):
    """A recorded noise: the target SNR (dB), the source id and the start offset (s)."""

    snr_db: float
    source_id: str
    offset_s: float


def add_at_snr(audio: np.ndarray, noise: np.ndarray, snr_db: float, sample_rate: int) -> np.ndarray:
    """``audio + g * noise`` with ``g`` set so that the SNR over the active samples of
    ``audio`` is ``snr_db`` (see the module docstring). float64 out.

    A silent ``audio`` is returned as it is; so is ``audio`` when the noise is silent over
    its active samples (no gain can bring it to any finite SNR).
    """
    x = np.asarray(audio, dtype=np.float64)
    n = np.asarray(noise, dtype=np.float64)
    active, frame = active_frames(x, sample_rate)  # the samples of active_mask(x, sr)
    if active is not None and not active.any():
        return x.copy()
    ps = _mean_square(select_active(x, active, frame))
    pn = _mean_square(select_active(n, active, frame))
    if ps <= 0.0 or pn <= 0.0:
        return x.copy()
    gain = np.sqrt(ps / (pn * 10.0 ** (snr_db / 10.0)))
    y = np.multiply(n, gain)
    return np.add(x, y, out=y)


def _mean_square(v: np.ndarray) -> float:
    """``np.mean(v ** 2)``, squaring in place (``v`` is a temporary)."""
    return float(np.mean(np.square(v, out=v)))


def white(n: int, seed: int) -> np.ndarray:
    """``n`` samples of unit-variance Gaussian white noise from ``seed``."""
    return np.random.default_rng(seed).standard_normal(n)


def pink(n: int, seed: int, sample_rate: int) -> np.ndarray:
    """``n`` samples of pink (1/f power) noise: seeded white noise shaped in the frequency
    domain by ``1/sqrt(f)`` above :data:`PINK_FLOOR_HZ`, flat below it, no DC; unit variance."""
    if n < 2:
        return np.zeros(n)
    spec = np.fft.rfft(white(n, seed))
    f = np.fft.rfftfreq(n, 1.0 / sample_rate)
    shape = 1.0 / np.sqrt(np.maximum(f, PINK_FLOOR_HZ))
    shape[0] = 0.0
    y = np.fft.irfft(spec * shape, n)
    std = float(np.std(y))
    return y / std if std > 0 else y


def loop_segment(recording: np.ndarray, start: int, n: int, crossfade: int) -> np.ndarray:
    """``n`` samples of ``recording`` from ``start``, looping back to its beginning with an
    equal-power crossfade of ``crossfade`` samples when the end is reached."""
    rec = np.asarray(recording)  # converted to float64 where read, not as a whole
    length = rec.size
    if length == 0:
        raise PerturbationError("noise: the noise recording is empty")
    start %= length
    if start + n <= length:
        return rec[start : start + n].astype(np.float64)
    c = min(crossfade, length // 4)
    # the output runs through the loop unit rec[: length - c] from `start`, wrapping
    unit = length - c
    head = np.asarray(rec[:c], dtype=np.float64)
    if c > 0:
        # the loop's last c samples fade out while its first c samples fade in, so the
        # periodic extension of the unit runs seamlessly from rec[length - c - 1] to rec[0]
        phase = (np.arange(c) + 0.5) / c * (np.pi / 2)
        head = head * np.sin(phase) + np.asarray(rec[length - c :], np.float64) * np.cos(phase)
    out = np.empty(n)
    done, pos = 0, start % unit
    while done < n:
        m = min(unit - pos, n - done)
        out[done : done + m] = rec[pos : pos + m]
        if pos < c:
            out[done : done + min(c - pos, m)] = head[pos : pos + min(c - pos, m)]
        done, pos = done + m, 0
    return out


class AdditiveNoise(Family[P]):
    """Shared behaviour of the additive-noise families: the SNR mapping and the mixing.

    Subclasses say how to draw their params (:meth:`_sample`) and how to make ``n``
    samples of noise from them (:meth:`noise`).
    """

    category = "additive"
    parameter = "SNR against active speech"
    unit = "dB"
    mild = 66.0
    strong = 2.0
    mapping = "linear"

    def noise(self, n: int, sample_rate: int, params, sources) -> np.ndarray:
        raise NotImplementedError

    def _apply(self, audio, sample_rate, params, sources):
        if not np.any(audio):
            return audio.astype(np.float64)
        x = np.asarray(audio, dtype=np.float64)
        return add_at_snr(
            x, self.noise(x.size, sample_rate, params, sources), params.snr_db, sample_rate
        )


class WhiteNoise(AdditiveNoise[NoiseParams]):
    """Gaussian white noise at an SNR of 66 dB (rho = 0) down to 2 dB (rho = 100), linear
    in dB; the samples come from a generator seeded by ``params.seed``."""

    name = "white_noise"
    params_type = NoiseParams

    def _sample(self, rng, strength, sources):
        return NoiseParams(snr_db=self.value(strength), seed=draw_seed(rng))

    def noise(self, n, sample_rate, params, sources):
        return white(n, params.seed)


class PinkNoise(AdditiveNoise[NoiseParams]):
    """Pink (1/f power spectrum, 20 Hz to Nyquist) noise at an SNR of 66 dB (rho = 0) down
    to 2 dB (rho = 100), linear in dB; seeded white noise shaped by ``1/sqrt(f)``."""

    name = "pink_noise"
    params_type = NoiseParams

    def _sample(self, rng, strength, sources):
        return NoiseParams(snr_db=self.value(strength), seed=draw_seed(rng))

    def noise(self, n, sample_rate, params, sources):
        return pink(n, params.seed, sample_rate)


class RecordedNoise(AdditiveNoise[CorpusNoiseParams]):
    """A noise recording from ``sources`` (kind "noise", label :attr:`label`; any label
    when ``label`` is None) at an SNR of 66 dB (rho = 0) down to 2 dB (rho = 100), linear in
    dB. The source id and a start offset (uniform over the recording, in seconds) are drawn
    at sample time; the recording loops with a 50 ms crossfade if the clip is longer."""

    params_type = CorpusNoiseParams
    needs_sources = True
    label: ClassVar[str | None] = None

    def _sample(self, rng, strength, sources):
        src = sources
        ids = src.ids("noise", self.label)
        if not ids:
            what = f"labelled {self.label!r}" if self.label else "of any label"
            raise PerturbationError(
                f"{self.name}: the sources hold no noise recording {what} "
                f"(noise labels present: {src.labels('noise') or 'none'})"
            )
        source_id = ids[int(rng.integers(len(ids)))]
        u = float(rng.random())
        duration = src.duration_s(source_id)
        return CorpusNoiseParams(
            snr_db=self.value(strength), source_id=source_id, offset_s=round(u * duration, 6)
        )

    def noise(self, n, sample_rate, params, sources):
        src = sources
        if params.source_id not in src:
            raise PerturbationError(
                f"{self.name}: source id {params.source_id!r} is not in the sources"
            )
        rec = src.load(params.source_id, sample_rate)
        if rec.size == 0:
            raise PerturbationError(f"{self.name}: noise recording {params.source_id!r} is empty")
        start = int(round(params.offset_s * sample_rate))
        return loop_segment(rec, start, n, int(round(LOOP_CROSSFADE_S * sample_rate)))


class ApplauseNoise(RecordedNoise):
    """Recorded applause (noise label "applause"), SNR 66 -> 2 dB, linear in dB."""

    name = "applause_noise"
    label = "applause"


class WaterDropNoise(RecordedNoise):
    """Recorded water drops (noise label "water_drop"), SNR 66 -> 2 dB, linear in dB."""

    name = "water_drop_noise"
    label = "water_drop"


class RoomNoise(RecordedNoise):
    """Recorded room tone (noise label "room"), SNR 66 -> 2 dB, linear in dB."""

    name = "room_noise"
    label = "room"


class BabbleNoise(RecordedNoise):
    """Recorded babble, many talkers at once (noise label "babble"), SNR 66 -> 2 dB,
    linear in dB."""

    name = "babble_noise"
    label = "babble"


class CorpusNoise(RecordedNoise):
    """Any noise recording in the sources (kind "noise", whatever its label), SNR 66 -> 2
    dB, linear in dB."""

    name = "corpus_noise"
    label = None
