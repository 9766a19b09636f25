"""What a codec dataset's rows are coded with: the ``codecs`` entries of a codec spec, the
family params each (family, value, engine) stands for, the encoder that ran it, and the
coding of one clip (shared by the build and replay).

An entry names a codec family of :mod:`pamflow.perturbations` and, optionally, the values
rows draw from (in the family's unit) and an engine. A plain name (``codecs: [mp3, opus]``)
is an entry with the defaults of :data:`DEFAULT_VALUES`.
"""

from __future__ import annotations

import math
import subprocess
from functools import lru_cache
from typing import Any, Literal, get_args

import numpy as np
from pydantic import Field, model_validator

from pamflow import perturbations
from pamflow.audio import ffmpeg
from pamflow.datasets.spec import SpecModel
from pamflow.perturbations.codecs import AMR_MODES

CodecFamily = Literal["mp3", "aac", "opus", "vorbis", "gsm", "amr_nb", "alaw", "mulaw"]
CODEC_FAMILIES: tuple[str, ...] = get_args(CodecFamily)
#: each family's params field that holds its setting, and that setting's type
SETTING: dict[str, tuple[str, type]] = {
    "mp3": ("legal_kbps", int),
    "aac": ("bitrate_kbps", int),
    "opus": ("bitrate_kbps", float),
    "vorbis": ("quality", float),
    "gsm": ("passes", int),
    "amr_nb": ("mode_kbps", float),
    "alaw": ("bits", float),
    "mulaw": ("bits", float),
}
#: the values of an entry that gives none (mp3: the spec's ``bitrates``)
DEFAULT_VALUES: dict[str, list[float]] = {
    "aac": [32.0],
    "opus": [12.0],
    "vorbis": [0.0],
    "gsm": [1.0],
    "amr_nb": [12.2],
    "alaw": [8.0],
    "mulaw": [8.0],
}
#: engines each family runs on, its default first (alaw and mulaw are plain NumPy)
ENGINES: dict[str, tuple[str, ...]] = {
    "mp3": ("lame", "ffmpeg"),
    "aac": ("ffmpeg",),
    "opus": ("libsndfile",),
    "vorbis": ("libsndfile",),
    "gsm": ("libsndfile",),
    "amr_nb": ("ffmpeg",),
    "alaw": ("numpy",),
    "mulaw": ("numpy",),
}
#: GSM 06.10 full rate's one bitrate
GSM_KBPS = 13.0


class CodecChoice(SpecModel):
    family: CodecFamily = Field(description="codec family (docs/perturbations.md)")
    values: list[float] | None = Field(
        None,
        description="settings in the family's unit, each row draws one; null: mp3 uses "
        "bitrates, the others a default (aac 32, opus 12, vorbis 0, gsm 1, amr_nb 12.2, "
        "alaw and mulaw 8)",
    )
    engine: str | None = Field(None, description="mp3: lame (default) or ffmpeg")

    @model_validator(mode="before")
    @classmethod
    def _name_alone(cls, data: Any) -> Any:
        return {"family": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _values_and_engine(self) -> CodecChoice:
        engines = ENGINES[self.family]
        if self.engine is not None and self.engine not in engines:
            raise ValueError(
                f"{self.family}: engine must be one of {list(engines)}, got {self.engine!r}"
            )
        if self.values is None:
            return self
        if not self.values or len(set(self.values)) != len(self.values):
            raise ValueError(f"{self.family}: values must be distinct, one or more")
        fam = perturbations.get(self.family)
        lo, hi = sorted((fam.mild, fam.strong))
        for v in self.values:
            if not (math.isfinite(v) and lo <= v <= hi):
                raise ValueError(f"{self.family}: value {v:g} is outside {lo:g}..{hi:g} {fam.unit}")
            if self.family == "mp3" and v not in ffmpeg.MP3_KBPS:
                raise ValueError(f"mp3: value {v:g} is not an MP3 bitrate {list(ffmpeg.MP3_KBPS)}")
            if self.family == "amr_nb" and v not in AMR_MODES:
                raise ValueError(f"amr_nb: value {v:g} is not an AMR-NB mode {list(AMR_MODES)}")
            if SETTING[self.family][1] is int and v != int(v):
                raise ValueError(f"{self.family}: value {v:g} must be a whole number")
        return self

    def options(self, bitrates: list[int]) -> list[float]:
        """The values rows draw from (mp3 without values: ``bitrates``)."""
        if self.values is not None:
            return list(self.values)
        return [float(b) for b in bitrates] if self.family == "mp3" else DEFAULT_VALUES[self.family]


def codec_params(family: str, value: float, engine: str | None) -> perturbations.Params:
    """The family's params that code at ``value`` on ``engine`` (None: the default)."""
    field, cast = SETTING[family]
    data: dict[str, Any] = {field: cast(value)}
    if family == "mp3":
        data["bitrate_kbps"] = float(value)
    if (
        engine is not None
        and "engine" in perturbations.get(family).params_type.__dataclass_fields__
    ):
        data["engine"] = engine
    return perturbations.get(family).params_from_dict(data)


def engine_of(family: str, params: perturbations.Params) -> str:
    return str(getattr(params, "engine", ENGINES[family][0]))


def setting_of(family: str, params: perturbations.Params) -> float:
    return float(getattr(params, SETTING[family][0]))


def bitrate_of(family: str, params: perturbations.Params) -> float | None:
    """The bitrate (kb/s) where the codec has one; None for vorbis (VBR quality) and the
    companding laws."""
    if family == "gsm":
        return GSM_KBPS
    return setting_of(family, params) if family in ("mp3", "aac", "opus", "amr_nb") else None


@lru_cache(maxsize=8)
def encoder_version(engine: str) -> str:
    """What made the coding, with its version (recorded in params)."""
    if engine == "ffmpeg":
        exe = ffmpeg.ffmpeg_exe()
        try:
            out = subprocess.run([exe, "-version"], capture_output=True, text=True, check=False)
            return (out.stdout.splitlines() or ["unknown"])[0].strip()
        except OSError:
            return "unknown"
    if engine == "lame":
        from importlib.metadata import version

        return f"LAME (fast-mp3-augment {version('fast-mp3-augment')})"
    if engine == "libsndfile":
        import soundfile

        return f"libsndfile {soundfile.__libsndfile_version__}"
    return f"numpy {np.__version__}"


def code(
    region: np.ndarray, sample_rate: int, family: str, params: perturbations.Params
) -> np.ndarray:
    """``region`` coded and decoded back at its own level (the recipe scales the pair)."""
    if family == "mp3" and engine_of(family, params) == "ffmpeg":
        return ffmpeg.mp3_roundtrip(region, sample_rate, setting_of(family, params))
    fam = perturbations.get(family)
    return fam.apply(region, sample_rate, params, full_scale=False)
