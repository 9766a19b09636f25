"""Signals for the embedded demo corpus, made in code: noises, music, instrument notes, RIRs.

Every generator takes an explicit ``numpy.random.Generator`` and returns mono float32 at
the given sample rate; none touches global random state. Levels: noises come out at an RMS
of :data:`NOISE_RMS_DB` dBFS (peaks kept below 0.95), music and instrument clips at
:data:`MUSIC_LUFS` LUFS (so loudness is no cue between a good and a cheap instrument),
RIRs peak at 1.0 at their direct sound. :mod:`pamflow.corpus` writes them to disk.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

from pamflow.audio import loudness, resample

#: RMS level of every demo noise in dBFS
NOISE_RMS_DB = -30.0
#: integrated loudness of the demo music and instrument clips
MUSIC_LUFS = -20.0

NOISE_TYPES = ("white", "pink", "brown", "babble", "applause", "water_drop", "hum", "room")


def _butter(kind: str, cutoff: float | list[float], sr: int, order: int = 4) -> np.ndarray:
    return signal.butter(order, cutoff, btype=kind, fs=sr, output="sos")


def _set_rms(x: np.ndarray, rms_db: float = NOISE_RMS_DB, max_peak: float = 0.95) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    x = x * (10 ** (rms_db / 20) / max(float(np.sqrt(np.mean(x * x))), 1e-12))
    peak = float(np.max(np.abs(x)))
    if peak > max_peak:
        x *= max_peak / peak
    return x.astype(np.float32)


def _to_lufs(x: np.ndarray, sr: int, target: float | None = None) -> np.ndarray:
    """Scale to ``target`` LUFS (default :data:`MUSIC_LUFS`), then lower if the peak
    would pass 0.95."""
    x = np.asarray(x, dtype=np.float64)
    x = x * 10 ** (((MUSIC_LUFS if target is None else target) - loudness(x, sr)) / 20)
    return _set_rms(x, 20 * np.log10(float(np.sqrt(np.mean(x * x)))))


def colored_noise(
    rng: np.random.Generator, n: int, sr: int, exponent: float, f_low: float = 20.0
) -> np.ndarray:
    """Gaussian noise with power spectrum ∝ 1/f^exponent (0 white, 1 pink, 2 brown); below
    ``f_low`` Hz the spectrum is flat at its ``f_low`` value, DC removed. Unit RMS."""
    spec = rng.standard_normal(n // 2 + 1) + 1j * rng.standard_normal(n // 2 + 1)
    f = np.fft.rfftfreq(n, 1.0 / sr)
    spec *= np.maximum(f, f_low) ** (-exponent / 2.0)
    spec[0] = 0.0
    x = np.fft.irfft(spec, n)
    return x / max(float(np.std(x)), 1e-12)


def _slow(rng: np.random.Generator, n: int, sr: int, cutoff_hz: float) -> np.ndarray:
    """Smooth random modulation: white noise low-passed at ``cutoff_hz``, unit std."""
    x = signal.sosfiltfilt(_butter("lowpass", cutoff_hz, sr, 2), rng.standard_normal(n))
    return x / max(float(np.std(x)), 1e-12)


def applause(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """A crowd clapping: a Poisson train (25..60 claps/s) of band-pass noise bursts
    (centre 0.7..3 kHz), each with a 0.5 ms attack and a 3..12 ms exponential decay."""
    out = np.zeros(n + sr // 10)
    rate = rng.uniform(25, 60)
    t = rng.exponential(1.0 / rate)
    length = int(0.06 * sr)
    tt = np.arange(length) / sr
    while t * sr < n:
        fc = rng.uniform(700, 3000)
        sos = _butter("bandpass", [fc / 1.6, min(fc * 1.6, 0.45 * sr)], sr, 2)
        env = np.minimum(tt / 5e-4, 1.0) * np.exp(-tt / rng.uniform(0.003, 0.012))
        burst = signal.sosfilt(sos, rng.standard_normal(length)) * env
        i = int(t * sr)
        out[i : i + length] += burst * rng.lognormal(0.0, 0.5)
        t += rng.exponential(1.0 / rate)
    out = out[:n] * (1.0 + 0.25 * np.tanh(_slow(rng, n, sr, 0.5)))
    return _set_rms(out)


def water_drops(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Drops into water: upward sinusoidal chirps (start 0.5..1.2 kHz, ending 1.8..3x
    higher, at most 3 kHz, over 10..40 ms) with a 8..30 ms exponential decay, at Poisson
    times (3..8 per second), over faint pink noise 45 dB below the drops' peak."""
    out = np.zeros(n + sr // 4)
    rate = rng.uniform(3, 8)
    t = rng.uniform(0.0, min(0.5 * n / sr, 1.0 / rate))  # the first drop is in the clip
    while t * sr < n:
        f0 = rng.uniform(500, 1200)
        f1 = min(f0 * rng.uniform(1.8, 3.0), 3000.0)
        sweep, tau = rng.uniform(0.01, 0.04), rng.uniform(0.008, 0.03)
        tt = np.arange(int(6 * tau * sr)) / sr
        freq = f0 * (f1 / f0) ** np.minimum(tt / sweep, 1.0)
        drop = np.sin(2 * np.pi * np.cumsum(freq) / sr) * np.exp(-tt / tau)
        drop *= np.minimum(tt / 1e-3, 1.0)
        i = int(t * sr)
        out[i : i + tt.size] += drop * rng.lognormal(0.0, 0.4)
        t += rng.exponential(1.0 / rate)
    out = out[:n]
    out += colored_noise(rng, n, sr, 1.0) * np.max(np.abs(out)) * 10 ** (-45 / 20)
    return _set_rms(out)


def hum(
    rng: np.random.Generator, n: int, sr: int, mains_hz: float = 50.0, noise_db: float = -60.0
) -> np.ndarray:
    """Mains hum: ``mains_hz`` and 11 harmonics (odd ones stronger, random phases) with a
    slow frequency jitter (std 0.05 Hz) and 2 % amplitude wobble, over white noise
    ``noise_db`` below it."""
    f_inst = mains_hz + 0.05 * _slow(rng, n, sr, 1.0)
    phase = 2 * np.pi * np.cumsum(f_inst) / sr
    out = np.zeros(n)
    for k in range(1, 13):
        if k * mains_hz >= 0.45 * sr:
            break
        amp = k**-1.2 * (1.5 if k % 2 else 1.0) * rng.uniform(0.7, 1.3)
        out += amp * np.sin(k * phase + rng.uniform(0, 2 * np.pi))
    out *= 1.0 + 0.02 * _slow(rng, n, sr, 2.0)
    out += rng.standard_normal(n) * np.std(out) * 10 ** (noise_db / 20)
    return _set_rms(out)


def room_tone(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Room tone: brown noise low-passed at 150..400 Hz, plus faint HVAC band noise
    (about 200..900 Hz, -14 dB) and a faint 50/60 Hz hum (-28 dB)."""
    base = signal.sosfilt(
        _butter("lowpass", rng.uniform(150, 400), sr), colored_noise(rng, n, sr, 2.0)
    )
    base /= np.std(base)
    lo = rng.uniform(150, 250)
    hvac = signal.sosfilt(
        _butter("bandpass", [lo, lo * rng.uniform(3.5, 4.5)], sr, 2), rng.standard_normal(n)
    )
    hvac *= (1.0 + 0.1 * _slow(rng, n, sr, 0.3)) / np.std(hvac)
    mains = hum(rng, n, sr, float(rng.choice([50.0, 60.0])))
    mains = mains / np.std(mains)
    return _set_rms(base + 10 ** (-14 / 20) * hvac + 10 ** (-28 / 20) * mains)


def babble(rng: np.random.Generator, n: int, sr: int, talkers: int, utterance) -> np.ndarray:
    """``talkers`` overlapping voices: each a stream of sentences with 0.1..0.4 s pauses,
    started at a random point and given a random gain within ±3 dB.

    ``utterance(talker, k)`` returns ``(audio, sample_rate)`` for sentence ``k`` of a talker.
    """
    out = np.zeros(n)
    for j in range(talkers):
        parts: list[np.ndarray] = []
        total, k = 0, 0
        offset = int(rng.uniform(0, 1.5) * sr)
        while total < n + offset:
            audio, rate = utterance(j, k)
            audio = resample(audio, rate, sr)
            parts += [audio, np.zeros(int(rng.uniform(0.1, 0.4) * sr))]
            total += audio.size + parts[-1].size
            k += 1
        stream = np.concatenate(parts)[offset : offset + n]
        out += stream / max(float(np.std(stream)), 1e-12) * 10 ** (rng.uniform(-3, 3) / 20)
    return _set_rms(out)


def noise(
    kind: str, rng: np.random.Generator, n: int, sr: int, *, variant: int = 0, utterance=None
) -> np.ndarray:
    """One demo noise of ``kind`` (see :data:`NOISE_TYPES`), ``n`` samples at ``sr`` Hz.

    ``variant`` picks the mains frequency of ``hum`` (even: 50 Hz, odd: 60 Hz);
    ``utterance(talker, k)`` feeds ``babble``.
    """
    if kind in ("white", "pink", "brown"):
        return _set_rms(colored_noise(rng, n, sr, {"white": 0.0, "pink": 1.0, "brown": 2.0}[kind]))
    if kind == "babble":
        if utterance is None:
            raise ValueError("noise('babble') needs an utterance(talker, k) function")
        return babble(rng, n, sr, int(rng.integers(4, 7)), utterance)
    if kind == "applause":
        return applause(rng, n, sr)
    if kind == "water_drop":
        return water_drops(rng, n, sr)
    if kind == "hum":
        return hum(rng, n, sr, 60.0 if variant % 2 else 50.0)
    if kind == "room":
        return room_tone(rng, n, sr)
    raise ValueError(f"unknown noise type {kind!r}; known: {', '.join(NOISE_TYPES)}")


# ---------------------------------------------------------------- music and instruments

#: additive timbres: (partial frequency ratios, partial amplitudes, decay s, attack s,
#: how much faster higher partials decay)
_TIMBRES = {
    "piano": (np.arange(1, 11), np.arange(1, 11) ** -1.5, 1.2, 0.003, 0.4),
    "organ": (
        np.array([0.5, 1, 2, 3, 4, 6, 8]),
        np.array([0.5, 1, 0.7, 0.4, 0.3, 0.2, 0.15]),
        30.0,
        0.03,
        0.0,
    ),
    "pluck": (np.arange(1, 13), np.arange(1, 13) ** -1.0, 0.35, 0.002, 0.6),
    "saw": (np.arange(1, 21), np.arange(1, 21) ** -1.0, 2.0, 0.01, 0.1),
    "bell": (
        np.array([1, 2.76, 5.40, 8.93, 13.34]),
        np.array([1, 0.6, 0.4, 0.25, 0.15]),
        2.5,
        0.002,
        0.3,
    ),
    "brass": (np.arange(1, 13), np.arange(1, 13) ** -0.8, 3.0, 0.04, 0.05),
    "bass": (np.arange(1, 4), np.array([1.0, 0.3, 0.1]), 0.6, 0.005, 0.2),
}
#: style -> (tempo range bpm, minor key, chord timbre, melody timbre, beats per chord,
#: melody notes per beat, drums)
MUSIC_STYLES = {
    "piano_ballad": ((66, 80), True, "piano", "piano", 4, 1, False),
    "pluck_pop": ((100, 120), False, "pluck", "pluck", 1, 2, True),
    "organ_chorale": ((56, 70), False, "organ", "organ", 4, 1, False),
    "synth_groove": ((118, 128), True, "saw", "saw", 2, 2, True),
    "bell_ambient": ((70, 90), False, "bell", "bell", 4, 1, False),
    "brass_march": ((100, 112), False, "brass", "brass", 2, 2, True),
}
_MAJOR, _MINOR = (0, 2, 4, 5, 7, 9, 11), (0, 2, 3, 5, 7, 8, 10)


def _hz(midi: float) -> float:
    return 440.0 * 2.0 ** ((midi - 69) / 12.0)


def _tone(
    rng: np.random.Generator, freq: float, dur: float, sr: int, timbre: str, release: float = 0.05
) -> np.ndarray:
    ratios, amps, decay, attack, spread = _TIMBRES[timbre]
    t = np.arange(int((dur + release) * sr)) / sr
    out = np.zeros(t.size)
    for r, a in zip(ratios, amps, strict=True):
        if freq * r < 0.45 * sr:
            tau = decay / (1.0 + spread * (r - 1.0))
            out += (
                a * np.sin(2 * np.pi * freq * r * t + rng.uniform(0, 2 * np.pi)) * np.exp(-t / tau)
            )
    gate = np.clip((dur + release - t) / release, 0.0, 1.0)
    return out * np.minimum(t / attack, 1.0) * gate


def _add(out: np.ndarray, x: np.ndarray, at_s: float, sr: int, gain: float = 1.0) -> None:
    i = int(at_s * sr)
    if i < out.size:
        m = min(x.size, out.size - i)
        out[i : i + m] += gain * x[:m]


def _drums(rng: np.random.Generator, out: np.ndarray, beat: float, sr: int) -> None:
    """Kick on beats 1 and 3, snare on 2 and 4, closed hi-hat on every eighth."""
    t = np.arange(int(0.3 * sr)) / sr
    kick = np.sin(2 * np.pi * np.cumsum(50 + 100 * np.exp(-t / 0.03)) / sr) * np.exp(-t / 0.12)
    hp = _butter("highpass", 6000.0, sr, 2)
    bp = _butter("bandpass", [1000.0, min(5000.0, 0.45 * sr)], sr, 2)
    for i in range(int(out.size / sr / (beat / 2)) + 1):
        at = i * beat / 2
        hat = signal.sosfilt(hp, rng.standard_normal(t.size)) * np.exp(-t / 0.025)
        _add(out, hat, at, sr, 0.15 * rng.uniform(0.7, 1.0))
        if i % 2 == 0:
            if (i // 2) % 2 == 0:
                _add(out, kick, at, sr, 0.8)
            else:
                snare = signal.sosfilt(bp, rng.standard_normal(t.size)) * np.exp(-t / 0.1)
                snare += 0.5 * np.sin(2 * np.pi * 180 * t) * np.exp(-t / 0.05)
                _add(out, snare, at, sr, 0.4)


def _melody(
    rng: np.random.Generator,
    seconds: float,
    step: float,
    scale: tuple[int, ...],
    root: int,
    rest_p: float = 0.15,
) -> list[tuple[float, float, int]]:
    """(onset s, duration s, midi note) of a random walk over two octaves of ``scale``."""
    notes, degree, at = [], int(rng.integers(3, 8)), 0.0
    while at < seconds:
        degree = int(np.clip(degree + rng.choice([-2, -1, -1, 0, 1, 1, 2]), 0, 13))
        length = step * (2 if rng.random() < 0.2 else 1)
        if rng.random() >= rest_p:
            notes.append((at, 0.9 * length, root + 12 * (degree // 7) + scale[degree % 7]))
        at += length
    return notes


def music_clip(style: str, rng: np.random.Generator, seconds: float, sr: int) -> np.ndarray:
    """A short piece in ``style`` (see :data:`MUSIC_STYLES`): a four-chord progression, a
    random-walk melody, a bass line and drums where the style has them. At :data:`MUSIC_LUFS`."""
    if style not in MUSIC_STYLES:
        raise ValueError(f"unknown music style {style!r}; known: {', '.join(MUSIC_STYLES)}")
    tempo, minor, chord_timbre, lead, per_chord, per_beat, drums = MUSIC_STYLES[style]
    beat = 60.0 / rng.uniform(*tempo)
    scale = _MINOR if minor else _MAJOR
    root = int(rng.integers(45, 57))
    out = np.zeros(int(seconds * sr))
    progression = [0, *rng.permutation([3, 4, 5]).tolist()]
    for c, at in enumerate(np.arange(0.0, seconds, beat * per_chord)):
        d = progression[(c * per_chord // 4) % 4]
        for k in (d, d + 2, d + 4):
            midi = root + 12 + 12 * (k // 7) + scale[k % 7]
            _add(
                out, _tone(rng, _hz(midi), 0.95 * beat * per_chord, sr, chord_timbre), at, sr, 0.35
            )
        if drums:
            _add(
                out, _tone(rng, _hz(root - 12 + scale[d % 7]), 0.9 * beat, sr, "bass"), at, sr, 0.8
            )
    for at, dur, midi in _melody(rng, seconds, beat / per_beat, scale, root + 24):
        _add(out, _tone(rng, _hz(midi), dur, sr, lead), at, sr, 0.6)
    if drums:
        _drums(rng, out, beat, sr)
    return _to_lufs(out, sr)


INSTRUMENTS = ("good", "cheap")


def instrument_clip(
    label: str, melody_rng: np.random.Generator, rng: np.random.Generator, seconds: float, sr: int
) -> np.ndarray:
    """A melody (drawn with ``melody_rng``) played by a ``"good"`` or ``"cheap"`` instrument.

    good: 16 slightly stretched partials (inharmonicity B = 1e-4..4e-4), each from two
    strings detuned by 0.3..1.2 cents (shimmer), higher partials decaying faster, a soft
    hammer noise. cheap: a buzzy sawtooth detuned by up to ±15 cents per note, flat organ
    envelope with abrupt release, overdriven, then band-limited to 300..3000 Hz, with white
    noise 35 dB below it. Both at :data:`MUSIC_LUFS`.
    """
    tempo = melody_rng.uniform(90, 140)
    notes = _melody(melody_rng, seconds, 60.0 / tempo / 2, _MAJOR, int(melody_rng.integers(55, 67)))
    out = np.zeros(int(seconds * sr))
    if label == "good":
        b, cents = rng.uniform(1e-4, 4e-4), rng.uniform(0.3, 1.2)
        k = np.arange(1, 17)
        for at, dur, midi in notes:
            f0 = _hz(midi)
            t = np.arange(int((dur + 0.6) * sr)) / sr
            tau = 1.2 * (f0 / 262.0) ** -0.3 / (1.0 + 0.15 * (k - 1))
            x = np.zeros(t.size)
            for kk, tk in zip(k, tau, strict=True):
                fk = kk * f0 * np.sqrt(1 + b * kk * kk)
                if fk < 0.45 * sr:
                    beats = np.cos(np.pi * fk * (2 ** (cents / 1200) - 1) * t)
                    x += (
                        kk**-1.1
                        * np.sin(2 * np.pi * fk * t + rng.uniform(0, 6.3))
                        * beats
                        * np.exp(-t / tk)
                    )
            x[: int(0.004 * sr)] += 0.03 * rng.standard_normal(int(0.004 * sr))
            x *= np.minimum(t / 0.002, 1.0) * np.clip((dur + 0.6 - t) / 0.6, 0, 1) ** 2
            _add(out, x, at, sr)
    elif label == "cheap":
        for at, dur, midi in notes:
            f0 = _hz(midi + rng.uniform(-0.15, 0.15))
            t = np.arange(int(dur * sr)) / sr
            k = np.arange(1, int(0.45 * sr / f0) + 1)[:, None]
            x = (np.sin(2 * np.pi * f0 * k * t) / k).sum(axis=0) * np.exp(-t / 3.0)
            x *= np.minimum(t / 0.001, 1.0) * np.clip((dur - t) / 0.005, 0, 1)
            _add(out, x, at, sr)
        out = signal.sosfilt(_butter("bandpass", [300.0, 3000.0], sr), np.tanh(2.5 * out))
        out += rng.standard_normal(out.size) * np.std(out) * 10 ** (-35 / 20)
    else:
        raise ValueError(f"unknown instrument {label!r}; known: {', '.join(INSTRUMENTS)}")
    return _to_lufs(out, sr)


# ---------------------------------------------------------------- room impulse responses


def room_impulse_response(
    rng: np.random.Generator,
    rt60_target: float,
    sr: int,
    *,
    distance_q: float | None = None,
    max_order: int = 50,
) -> tuple[np.ndarray, dict[str, float]]:
    """A shoebox-room RIR by the image-source method (pyroomacoustics), aiming at
    ``rt60_target`` seconds (Sabine; what comes out differs: measure it).

    Rooms grow with the target (3..5 m long for 0.1 s, up to ~17 m for 2 s); absorption
    from Sabine's formula; the image order is capped at ``max_order`` to bound the cost.
    The microphone sits 1..1.8 m high near one end; the source faces it along the room at
    0.3 m .. half the room's length, log-scale position ``distance_q`` in [0, 1] (drawn if
    None), so the DRR spreads from about +15 dB to below -5 dB. The RIR starts 2 ms before
    its direct peak, is scaled so that peak is +1.0, and is cut where it last exceeds
    -80 dB. Returns ``(rir, info)`` with the room dimensions and source distance.
    """
    import pyroomacoustics as pra

    u = float(np.clip(np.log(rt60_target / 0.1) / np.log(20.0), 0.0, 1.0))
    length = rng.uniform(3.0, 5.0) + u * rng.uniform(6.0, 12.0)
    dims = np.array([length, length * rng.uniform(0.6, 0.9), rng.uniform(2.4, 3.2) + 3.0 * u])
    try:
        absorption, order = pra.inverse_sabine(rt60_target, dims)
    except ValueError:  # the room is too large for so short a decay: absorb all we can
        absorption, order = 0.99, 3
    room = pra.ShoeBox(
        dims,
        fs=sr,
        materials=pra.Material(float(min(absorption, 0.99))),
        max_order=int(min(order, max_order)),
        air_absorption=True,
    )
    mic = dims * np.array([rng.uniform(0.15, 0.3), rng.uniform(0.3, 0.7), 0.0])
    mic[2] = rng.uniform(1.0, 1.8)
    q = rng.uniform() if distance_q is None else float(np.clip(distance_q, 0.0, 1.0))
    far = max(0.5, 0.5 * float(dims[0]))
    distance = float(np.exp(np.log(0.3) + q * (np.log(far) - np.log(0.3))))
    azimuth, elevation = rng.uniform(-0.4, 0.4), rng.uniform(-0.2, 0.2)
    direction = np.array(
        [
            np.cos(azimuth) * np.cos(elevation),
            np.sin(azimuth) * np.cos(elevation),
            np.sin(elevation),
        ]
    )
    source = np.clip(mic + distance * direction, 0.25, dims - 0.25)
    room.add_source(source)
    room.add_microphone(mic)
    room.compute_rir()
    h = np.asarray(room.rir[0][0], dtype=np.float64)
    peak = int(np.argmax(np.abs(h)))
    h = h[max(0, peak - int(0.002 * sr)) :] / h[peak]
    h = h[: int(np.nonzero(np.abs(h) > 1e-4)[0][-1]) + 1]
    info = {
        "length_m": float(dims[0]),
        "width_m": float(dims[1]),
        "height_m": float(dims[2]),
        "distance_m": float(np.linalg.norm(source - mic)),
        "absorption": float(absorption),
    }
    return h.astype(np.float32), info
