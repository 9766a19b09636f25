"""The codec suite beyond MP3 and the companding laws: AAC, Opus, Vorbis, GSM full rate and
AMR-NB round trips, each sample-aligned with its input and equal in length.

Every family codes the clip and decodes it back (:mod:`pamflow.audio.codecs`); its params
record the setting and the ``engine`` that ran it, so a row replays bit for bit on the same
engine version:

========  =================  ==================================  ==========================
family    engine             strength onto                       codec rate
========  =================  ==================================  ==========================
aac       ffmpeg (native     bitrate 128 -> 8 kb/s, exponential, the clip's own where AAC
          AAC-LC, ADTS)      whole kb/s                          allows it, else the next
                                                                 one up
opus      libsndfile         bitrate 128 -> 6 kb/s, exponential  8/12/16/24/48 kHz (next up)
          (libopus, Ogg)
vorbis    libsndfile         VBR quality 1.0 -> 0.0, linear      the clip's own
          (libvorbis, Ogg)
gsm       libsndfile         tandem codings 1 -> 8, linear,      8 kHz
          (GSM 06.10 FR)     rounded
amr_nb    ffmpeg (OpenCORE   mode 12.2 -> 4.75 kb/s, exponential 8 kHz
          AMR-NB)            snapped to the 8 AMR modes
========  =================  ==================================  ==========================

Why these engines: libsndfile codes Vorbis, Opus and GSM in process with soxr resampling
(at least as fast as pedalboard's GSM coder and without its resampler's aliasing;
``benchmarks/codecs.py``); AAC and AMR-NB have no in-process coder in the stack, so they go
through the bundled ffmpeg, whose stream delay is measured and trimmed. GSM 06.10 has one
bitrate (13 kb/s), so its strength is the number of times the clip is coded in tandem, as
on a mobile-to-mobile call transcoded at each end; each pass adds coding noise.

Narrowband codecs (GSM, AMR-NB) band-limit the clip to 4 kHz by design. Alignment: the
transform coders (AAC, Vorbis, Opus above ~30 kb/s where it runs CELP alone) keep lag 0 at
every rate; the speech coders (GSM, AMR-NB, and Opus's SILK layer at lower bitrates, which
codes the speech band at 8..16 kHz) keep the phase to within one sample at 8 kHz (at most
1, 2 and 3 samples at 22.05, 44.1 and 48 kHz), a fraction no whole-sample shift can
remove; ``tests/perturbations/test_codecs.py`` measures both at 16, 22.05, 44.1 and 48 kHz.
Opus's float encoder may differ in its last bits between CPU instruction sets: a row replays
bit for bit on the same engine build and CPU family.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pamflow.audio import codecs, fix_length, resample
from pamflow.perturbations.base import Family, Params, PerturbationError

#: AMR-NB's eight modes, kb/s
AMR_MODES = (4.75, 5.15, 5.9, 6.7, 7.4, 7.95, 10.2, 12.2)


def _engine(family: str, engine: str, engines: tuple[str, ...]) -> None:
    if engine not in engines:
        raise PerturbationError(f"{family}: engine must be one of {engines}, got {engine!r}")


def _in_range(family: str, field: str, value: float, lo: float, hi: float) -> float:
    v = float(value)
    if not (math.isfinite(v) and lo <= v <= hi):
        raise PerturbationError(f"{family}: {field} must be in [{lo:g}, {hi:g}], got {value!r}")
    return v


@dataclass(frozen=True)
class AacParams(Params):
    bitrate_kbps: int  # constant bitrate asked of the encoder, kb/s
    engine: str = "ffmpeg"


class Aac(Family[AacParams]):
    """AAC-LC round trip (FFmpeg's native encoder); rho -> 128..8 kb/s, exponential."""

    name = "aac"
    category = "compression"
    params_type = AacParams
    parameter = "bitrate (AAC-LC, FFmpeg's encoder, ADTS; delay measured and trimmed)"
    unit = "kb/s"
    mild = 128.0
    strong = 8.0
    mapping = "exponential"

    def _sample(self, rng, strength, sources):
        return AacParams(bitrate_kbps=int(round(self.value(strength))))

    def _apply(self, audio, sample_rate, params, sources):
        _engine(self.name, params.engine, ("ffmpeg",))
        kbps = _in_range(self.name, "bitrate_kbps", params.bitrate_kbps, 6, 320)
        return codecs.ffmpeg_roundtrip(audio, sample_rate, codecs.aac(int(kbps)))


@dataclass(frozen=True)
class OpusParams(Params):
    bitrate_kbps: float  # target bitrate, kb/s (libsndfile's compression level records it)
    engine: str = "libsndfile"


class Opus(Family[OpusParams]):
    """Opus round trip (libopus through libsndfile); rho -> 128..6 kb/s, exponential."""

    name = "opus"
    category = "compression"
    params_type = OpusParams
    parameter = "target bitrate (Opus, VBR, libsndfile's compression level 1 - (b - 6) / 250)"
    unit = "kb/s"
    mild = 128.0
    strong = 6.0
    mapping = "exponential"

    def _sample(self, rng, strength, sources):
        return OpusParams(bitrate_kbps=self.value(strength))

    def _apply(self, audio, sample_rate, params, sources):
        _engine(self.name, params.engine, ("libsndfile",))
        kbps = _in_range(self.name, "bitrate_kbps", params.bitrate_kbps, 6, 256)
        level = codecs.opus_level(kbps)
        return codecs.sndfile_roundtrip(audio, sample_rate, codecs.OPUS, level)


@dataclass(frozen=True)
class VorbisParams(Params):
    quality: float  # libvorbis VBR quality, 0 (lowest) .. 1 (highest)
    engine: str = "libsndfile"


class Vorbis(Family[VorbisParams]):
    """Ogg Vorbis round trip (libvorbis through libsndfile); rho -> quality 1..0, linear."""

    name = "vorbis"
    category = "compression"
    params_type = VorbisParams
    parameter = "VBR quality (libvorbis, 0..1; libsndfile's compression level 1 - quality)"
    unit = ""
    mild = 1.0
    strong = 0.0
    mapping = "linear"

    def _sample(self, rng, strength, sources):
        return VorbisParams(quality=self.value(strength))

    def _apply(self, audio, sample_rate, params, sources):
        _engine(self.name, params.engine, ("libsndfile",))
        q = _in_range(self.name, "quality", params.quality, 0.0, 1.0)
        return codecs.sndfile_roundtrip(audio, sample_rate, codecs.VORBIS, 1.0 - q)


@dataclass(frozen=True)
class GsmParams(Params):
    passes: int  # times the clip is coded in tandem (GSM 06.10 full rate, 13 kb/s)
    engine: str = "libsndfile"


class Gsm(Family[GsmParams]):
    """GSM 06.10 full-rate round trips at 8 kHz; rho -> 1..8 tandem codings, linear."""

    name = "gsm"
    category = "compression"
    params_type = GsmParams
    parameter = "tandem codings (GSM 06.10 full rate at 8 kHz, 13 kb/s each)"
    unit = "passes"
    mild = 1.0
    strong = 8.0
    mapping = "linear"

    def _sample(self, rng, strength, sources):
        return GsmParams(passes=int(round(self.value(strength))))

    def _apply(self, audio, sample_rate, params, sources):
        _engine(self.name, params.engine, ("libsndfile",))
        passes = int(_in_range(self.name, "passes", params.passes, 1, 64))
        if passes != params.passes:
            raise PerturbationError(f"gsm: passes must be a whole number, got {params.passes!r}")
        # code at 8 kHz once resampled, then tandem: each pass is a whole GSM call leg
        y = resample(audio, sample_rate, 8000)
        for _ in range(passes):
            y = codecs.sndfile_roundtrip(y, 8000, codecs.GSM610)
        return fix_length(resample(y, 8000, sample_rate), audio.shape[0])


@dataclass(frozen=True)
class AmrNbParams(Params):
    mode_kbps: float  # one of the eight AMR-NB modes, kb/s
    engine: str = "ffmpeg"


class AmrNb(Family[AmrNbParams]):
    """AMR-NB round trip at 8 kHz (OpenCORE through ffmpeg); rho -> mode 12.2..4.75 kb/s."""

    name = "amr_nb"
    category = "compression"
    params_type = AmrNbParams
    parameter = "mode (AMR-NB, 8 kHz; the asked bitrate snapped to the nearest mode, log scale)"
    unit = "kb/s"
    mild = 12.2
    strong = 4.75
    mapping = "exponential"

    def _sample(self, rng, strength, sources):
        b = self.value(strength)
        return AmrNbParams(mode_kbps=min(AMR_MODES, key=lambda m: (abs(math.log(m / b)), m)))

    def _apply(self, audio, sample_rate, params, sources):
        _engine(self.name, params.engine, ("ffmpeg",))
        if params.mode_kbps not in AMR_MODES:
            raise PerturbationError(
                f"amr_nb: mode_kbps must be one of {AMR_MODES}, got {params.mode_kbps!r}"
            )
        return codecs.ffmpeg_roundtrip(audio, sample_rate, codecs.amr_nb(params.mode_kbps))
