"""MP3 (DPAM Table 1, compression): a constant-bitrate MP3 round trip, 320 to 8 kb/s.

Models lossy perceptual coding: the clip is encoded as CBR MP3 by LAME (libmp3lame, through
ffmpeg ``-b:a {k}k``, as DPAM made its data) and decoded back with ffmpeg's decoder. As the
bitrate falls, LAME low-passes harder (about 7.3 kHz at 16 kHz sampling for 32..160 kb/s,
5.5 kHz at 16 kb/s, 3 kHz at 8 kb/s), quantisation noise rises and pre-echo smears attacks.

Strength maps exponentially onto the bitrate: ``bitrate = 320 * (8 / 320) ** (rho / 100)``
kb/s, 320 kb/s at rho = 0 and 8 kb/s at rho = 100 (80 kb/s at rho = 37.6, 16 kb/s at
rho = 81.2). The asked bitrate is then snapped to the nearest step of the MP3 ladder
8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320 kb/s (nearest on a
log scale), and the clip is coded at a sample rate that allows that step: its own rate when
MP3 allows it, else twice or half of it (320 kb/s at 16 kHz is coded at 32 kHz, 8 kb/s at
44.1 kHz at 22.05 kHz; see :func:`pamflow.audio.ffmpeg.plan_mp3`). Params record the asked
bitrate, the snapped one, and optionally the encoding rate (``None``: chosen at apply time
from the clip's rate, deterministically).

Two engines code the clip, recorded in params as ``engine``: ``"lame"`` (the default) runs
LAME inside the process through ``fast-mp3-augment`` (no process start-up: about 4x faster
than ffmpeg for a 2.5 s clip), ``"ffmpeg"`` pipes it through the ffmpeg binary
(:func:`pamflow.audio.ffmpeg.mp3_roundtrip`, as the codec recipe does). Both are CBR LAME at the
same planned rate and bitrate; their outputs differ slightly (LAME's quality setting and
framing context), so a replay uses the recorded engine.

The output is sample-aligned with the input (the codec delay is measured and removed) and
has its length. LAME is deterministic, so a replay is bit-identical. Two properties of
LAME come with it: at 160 kb/s and below it scales its input by 0.95 (0.97 at 192 kb/s,
0.98 at 224 kb/s; -0.45 dB) to leave headroom for decoding, and at rho = 0 (320 kb/s) the
round trip is close to transparent but not exact (about 37 dB SNR on speech at 16 kHz).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pamflow.audio import fix_length, resample
from pamflow.audio.ffmpeg import MP3_KBPS, legal_bitrates, mp3_roundtrip, plan_mp3, snap_bitrate
from pamflow.perturbations.base import Family, Params, PerturbationError

ENGINES = ("lame", "ffmpeg")
#: LAME's algorithm quality for the in-process engine (0 best .. 9 fastest; 7 is the
#: fast-mp3-augment and audiomentations default)
LAME_QUALITY = 7


@dataclass(frozen=True)
class Mp3Params(Params):
    bitrate_kbps: float  # asked for by the strength mapping, kb/s
    legal_kbps: int  # the MP3 bitrate used (bitrate_kbps snapped to the ladder), kb/s
    encode_rate: int | None = None  # Hz; None: chosen by plan_mp3 from the clip's rate
    engine: str = "lame"  # "lame" (in-process LAME) or "ffmpeg" (the ffmpeg binary)


class Mp3(Family[Mp3Params]):
    """CBR MP3 round trip (LAME via ffmpeg); rho -> 320..8 kb/s, exponential."""

    name = "mp3"
    category = "compression"
    params_type = Mp3Params
    parameter = "bitrate"
    unit = "kb/s"
    mild = 320.0
    strong = 8.0
    mapping = "exponential"

    def _sample(self, rng, strength, sources):
        kbps = self.value(strength)
        return Mp3Params(bitrate_kbps=kbps, legal_kbps=snap_bitrate(kbps))

    def with_rate(self, params: Mp3Params, sample_rate: int) -> Mp3Params:
        """``params`` with the encoding rate a clip at ``sample_rate`` is coded at filled
        in, for recipes that record it (the output is the same either way)."""
        rate, kbps = plan_mp3(sample_rate, params.legal_kbps)
        return Mp3Params(params.bitrate_kbps, kbps, rate, params.engine)

    def _apply(self, audio, sample_rate, params, sources):
        kbps, rate = params.legal_kbps, params.encode_rate
        if rate is None:
            if kbps not in MP3_KBPS:
                raise PerturbationError(f"mp3: legal_kbps {kbps!r} is not one of {MP3_KBPS}")
        else:
            try:
                allowed = legal_bitrates(int(rate))
            except ValueError as e:
                raise PerturbationError(f"mp3: encode_rate: {e}") from None
            if kbps not in allowed:
                raise PerturbationError(f"mp3: legal_kbps {kbps!r} is not allowed at {rate} Hz")
        if params.engine not in ENGINES:
            raise PerturbationError(f"mp3: engine must be one of {ENGINES}, got {params.engine!r}")
        if params.engine == "lame":
            coded = _lame_roundtrip(audio, sample_rate, kbps, rate)
            if coded is not None:
                return coded
        return mp3_roundtrip(audio, sample_rate, kbps, encode_rate=rate)


def _lame_roundtrip(
    audio: np.ndarray, sample_rate: int, kbps: int, rate: int | None
) -> np.ndarray | None:
    """In-process LAME round trip at the planned rate; None for clips too short for it
    (the caller then uses ffmpeg, deterministically for that clip length)."""
    from fast_mp3_augment import TooShortAudio, compress_roundtrip

    if rate is None:
        rate, kbps = plan_mp3(sample_rate, kbps)
    x = np.ascontiguousarray(resample(audio, sample_rate, rate), dtype=np.float32)
    try:
        y = compress_roundtrip(x, rate, int(kbps), preserve_delay=False, quality=LAME_QUALITY)
    except TooShortAudio:
        return None
    return fix_length(resample(np.asarray(y, dtype=np.float32), rate, sample_rate), audio.shape[0])
