"""The codec recipe (codec-approximation paper, section 4): lossless clips and their codec
round trips, sample-aligned, for training a network to emulate the codec.

Each row is one clip of a music (or speech) recording, ``lossless``, and the same clip
coded and decoded back, ``coded``: mono, at ``sample_rate`` (16 kHz as in the paper), equal
length and aligned sample for sample. By default the codec is MP3 at 16 kb/s, as in the
paper, coded in process by LAME (the ``mp3`` family's ``lame`` engine). ``codecs`` lists
what rows draw from, each row one entry and one of its ``values`` (in the family's unit:
kb/s for mp3, aac, opus and amr_nb, quality for vorbis, tandem passes for gsm, bits for
alaw and mulaw; see docs/perturbations.md); an entry may name its ``engine`` (mp3:
``lame`` or ``ffmpeg``, FFmpeg's libmp3lame as the paper used). Rows record the codec
(``codec``), its setting (``setting``), the bitrate where the codec has one
(``bitrate_kbps``), and in params the family's params, the engine and the encoder version.
``bitrates`` stays the MP3 entry's values when it gives none.

**Context.** The codec does not see the clip alone: it codes the clip with up to
``context_seconds`` of the recording on each side (less at the recording's edges), and the
clip is cut from the result. So ``coded`` is what the codec does inside a track, as in the
paper (whole tracks coded, then cut), not a cold start after silence.

**Level.** Where the coded region would peak above -1 dBFS it is scaled down first
(``params.gain``); should the decoded clip still exceed full scale, both columns are
scaled by one factor (``params.scale``), so the stored pair stays a clip and its coding.

**Patches.** ``patch: null`` gives clips of ``clip_seconds``. ``patch: "stft"`` gives the
paper's 66,048-sample patches of the STFT-domain network, ``patch: "time"`` its
16,384-sample patches of the time-domain network; ``clip_seconds`` is then derived from the
patch (samples / sample_rate; giving another value is an error). Each row is one patch of a
random recording: with ``patch_offsets: "random"`` (default) at a random sample offset;
with ``"grid"`` at a random position of the paper's tiling (hop = the patch length for
"stft", no overlap; half of it for "time", 50 % overlap). ``offset`` is in seconds.

**Batching.** :meth:`CodecRecipe.generate` cuts every clip of the rows it is asked for
(in chunks of :data:`CHUNK_ROWS`) before coding them. MP3 through ffmpeg codes each chunk's
clips of one bitrate with one encoder/decoder pair (``mp3_roundtrip_many``: bit-identical
to coding each clip alone, 3 to 8 times cheaper than a process pair per clip); the in-process
engines code clip by clip, with no process to start. ``benchmarks/codecs.py`` measures the
pairs per second of both MP3 engines.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from functools import partial
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from pamflow import perturbations
from pamflow.audio import ffmpeg
from pamflow.corpus.sources import Sources
from pamflow.datasets import codec_choice
from pamflow.datasets.base import Recipe, long_enough
from pamflow.datasets.codec_choice import CodecChoice
from pamflow.datasets.spec import BaseSpec, SpecError
from pamflow.seeding import example_seed

#: samples per patch (codec paper, section 4.1 and 4.2) and the hop of the paper's tiling
PATCH_SAMPLES = {"stft": 66048, "time": 16384}
PATCH_HOP = {"stft": 66048, "time": 8192}
#: rows cut and coded together by generate() (bounds memory; batching is bit-exact)
CHUNK_ROWS = 64
#: coded regions are scaled down to peak at most here (-1 dBFS) before coding
PRE_PEAK = 10.0 ** (-1.0 / 20.0)


def _music_only() -> list[Literal["music", "speech"]]:
    return ["music"]


class CodecSpec(BaseSpec):
    source_kinds: list[Literal["music", "speech"]] = Field(
        default_factory=_music_only, description="recording kinds; each row draws one"
    )
    codecs: list[CodecChoice] = Field(
        default_factory=lambda: [CodecChoice(family="mp3")],
        description="codecs each row draws one of: a family name (mp3, aac, opus, vorbis, "
        "gsm, amr_nb, alaw, mulaw) or {family, values, engine}",
    )
    bitrates: list[int] = Field(
        default_factory=lambda: [16],
        description="MP3 bitrates (kb/s) of an mp3 entry without values; each row draws one",
    )
    patch: Literal["stft", "time"] | None = Field(
        None, description="null: clips of clip_seconds; stft: 66,048 samples; time: 16,384"
    )
    patch_offsets: Literal["random", "grid"] = Field(
        "random",
        description="where a patch starts: random: at a random sample; grid: at a random "
        "position of the paper's tiling (hop: the patch for stft, half of it for time)",
    )
    context_seconds: float = Field(
        0.25, ge=0, le=10, description="recording coded on each side of the clip"
    )

    @model_validator(mode="before")
    @classmethod
    def _patch_sets_length(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("patch") not in PATCH_SAMPLES:
            return data
        samples = PATCH_SAMPLES[data["patch"]]
        sr = int(data.get("sample_rate", 16000))
        given = data.get("clip_seconds")
        if given is not None and int(round(float(given) * sr)) != samples:
            raise ValueError(
                f"clip_seconds: patch {data['patch']!r} sets the length to "
                f"{samples} samples ({samples / sr} s); leave clip_seconds out"
            )
        return {**data, "clip_seconds": samples / sr}

    @field_validator("source_kinds")
    @classmethod
    def _kinds(cls, v: list[str]) -> list[str]:
        if not v or len(set(v)) != len(v):
            raise ValueError(f"need one or more distinct kinds, got {v}")
        return v

    @field_validator("bitrates")
    @classmethod
    def _ladder(cls, v: list[int]) -> list[int]:
        bad = [b for b in v if b not in ffmpeg.MP3_KBPS]
        if not v or bad or len(set(v)) != len(v):
            raise ValueError(f"need distinct MP3 bitrates of {list(ffmpeg.MP3_KBPS)} kb/s, got {v}")
        return v

    @field_validator("codecs")
    @classmethod
    def _distinct(cls, v: list[CodecChoice]) -> list[CodecChoice]:
        if not v or len({(c.family, c.engine) for c in v}) != len(v):
            raise ValueError("need one or more entries, each family and engine once")
        return v

    @property
    def row_samples(self) -> int:
        return PATCH_SAMPLES[self.patch] if self.patch else self.clip_samples


def region_for(audio: np.ndarray, start: int, n: int, context: int) -> tuple[np.ndarray, int]:
    """The part of ``audio`` coded for the clip ``[start, start + n)``: up to ``context``
    samples on each side (zero-padded past the end); returns ``(region, lead)`` where the
    clip starts at ``lead`` in the region."""
    lo = max(0, start - context)
    region = np.asarray(audio[lo : start + n + context], dtype=np.float32)
    want = (start - lo) + n + context
    if region.size < want:
        region = np.pad(region, (0, want - region.size))
    return region, start - lo


class CodecRecipe(Recipe[CodecSpec]):
    name = "codec"
    Spec = CodecSpec
    needs = {"music": "source_kinds"}
    audio_columns = ("lossless", "coded")
    label_columns = ("codec",)
    count_columns = ("codec",)
    histogram_columns = {
        "setting": "codec setting (kb/s, quality, passes or bits)",
    }
    split_key = "source_id"
    evaluated_on = ("lossless", "coded")
    description = (
        "lossless / coded pairs (MP3 by default), sample-aligned (codec-approximation loss)"
    )

    def validate(self, spec: CodecSpec) -> Sources:
        sources = spec.sources()
        spec.check_sources(sources, {k: "source_kinds" for k in spec.source_kinds})
        ffmpeg.ffmpeg_exe()  # fails early with a clear message when there is no binary
        return sources

    def columns(self, spec: CodecSpec) -> list[tuple[str, str, bool]]:
        return [
            ("lossless", "audio", False),
            ("coded", "audio", False),
            ("codec", "string", False),
            ("setting", "float64", False),
            ("bitrate_kbps", "float64", True),
            ("source_id", "string", False),
            ("source_kind", "string", False),
            ("offset", "float64", False),
        ]

    def draw(self, spec: CodecSpec, sources: Sources, index: int) -> dict[str, Any]:
        """Everything of row ``index`` but its coding: source, offset, bitrate, region."""
        seed = example_seed(spec.seed, index)
        rng = np.random.default_rng(seed)
        sr, n = spec.sample_rate, spec.row_samples
        kind = spec.source_kinds[int(rng.integers(len(spec.source_kinds)))]
        ids = long_enough(sources, kind, n / sr)
        source_id = ids[int(rng.integers(len(ids)))]
        choice = (
            spec.codecs[int(rng.integers(len(spec.codecs)))]
            if len(spec.codecs) > 1
            else spec.codecs[0]
        )
        options = choice.options(spec.bitrates)
        value = options[int(rng.integers(len(options)))]
        audio = sources.load(source_id, sr)
        span = max(0, audio.size - n)
        if spec.patch and spec.patch_offsets == "grid":
            hop = PATCH_HOP[spec.patch]
            start = int(rng.integers(span // hop + 1)) * hop
        else:
            start = int(rng.integers(span + 1))
        region, lead = region_for(audio, start, n, int(round(spec.context_seconds * sr)))
        peak = float(np.max(np.abs(region))) if region.size else 0.0
        gain = PRE_PEAK / peak if peak > PRE_PEAK else 1.0
        return {
            "seed": seed,
            "kind": kind,
            "source_id": source_id,
            "family": choice.family,
            "codec": codec_choice.codec_params(choice.family, value, choice.engine),
            "start": start,
            "lead": lead,
            "gain": gain,
            "region": (region * np.float32(gain)) if gain != 1.0 else region,
        }

    def finish_pair(
        self, spec: CodecSpec, d: dict[str, Any], coded_region: np.ndarray, index: int
    ) -> dict[str, Any]:
        sr, n, lead = spec.sample_rate, spec.row_samples, d["lead"]
        lossless, coded = d["region"][lead : lead + n], coded_region[lead : lead + n]
        peak = max(float(np.max(np.abs(lossless))), float(np.max(np.abs(coded))))
        scale = 0.999 / peak if peak > 0.999 else 1.0
        if scale != 1.0:
            lossless, coded = lossless * np.float32(scale), coded * np.float32(scale)
        family, params = d["family"], d["codec"]
        engine = codec_choice.engine_of(family, params)
        row = {
            "lossless": np.ascontiguousarray(lossless, dtype=np.float32),
            "coded": np.ascontiguousarray(coded, dtype=np.float32),
            "codec": family,
            "setting": codec_choice.setting_of(family, params),
            "bitrate_kbps": codec_choice.bitrate_of(family, params),
            "source_id": d["source_id"],
            "source_kind": d["kind"],
            "offset": d["start"] / sr,
            "seed": d["seed"],
            "params": {
                "source_id": d["source_id"],
                "offset_s": d["start"] / sr,
                "context_before_s": lead / sr,
                "region_samples": int(d["region"].size),
                "gain": d["gain"],
                "scale": scale,
                "patch": spec.patch,
                "codec": family,
                "codec_params": params.to_dict(),
                "engine": engine,
                "encoder": codec_choice.encoder_version(engine),
            },
        }
        if family == "mp3":
            encode_rate, kbps = ffmpeg.plan_mp3(sr, codec_choice.setting_of(family, params))
            row["params"].update(bitrate_kbps=int(kbps), encode_rate=encode_rate)
        return self.finish(spec, index, row)

    def generate(
        self, spec: CodecSpec, sources: Sources, start: int, stop: int
    ) -> Iterator[dict[str, Any]]:
        stop = min(stop, spec.num_examples)
        for lo in range(start, stop, CHUNK_ROWS):
            idx = list(range(lo, min(stop, lo + CHUNK_ROWS)))
            drawn = [self.redrawn(spec, sources, partial(self.draw, spec, index=i)) for i in idx]
            coded: dict[int, np.ndarray] = {}
            batched: dict[int, list[int]] = {}  # MP3 through ffmpeg: one encoder per bitrate
            for k, d in enumerate(drawn):
                if d["family"] == "mp3" and codec_choice.engine_of("mp3", d["codec"]) == "ffmpeg":
                    batched.setdefault(d["codec"].legal_kbps, []).append(k)
                else:
                    coded[k] = codec_choice.code(
                        d["region"], spec.sample_rate, d["family"], d["codec"]
                    )
            for kbps, group in sorted(batched.items()):
                outs = ffmpeg.mp3_roundtrip_many(
                    [drawn[k]["region"] for k in group], spec.sample_rate, kbps
                )
                coded.update(zip(group, outs, strict=True))
            for k, i in enumerate(idx):
                yield self.finish_pair(spec, drawn[k], coded[k], i)

    def summary(self, table: Any) -> dict[str, Any]:
        pairs = zip(
            table.column("codec").to_pylist(), table.column("setting").to_pylist(), strict=True
        )
        settings = Counter(f"{c} {v:g}" for c, v in pairs)
        rates = Counter(f"{b:g}" for b in table.column("bitrate_kbps").to_pylist() if b is not None)
        kinds = Counter(table.column("source_kind").to_pylist())
        return {
            "rows": table.num_rows,
            "codecs": dict(sorted(settings.items())),
            "bitrates_kbps": {k: v for k, v in sorted(rates.items(), key=lambda kv: float(kv[0]))},
            "source_kinds": dict(sorted(kinds.items())),
            "sources": len(set(table.column("source_id").to_pylist())),
        }

    def rebuild(self, row: dict[str, Any], spec: CodecSpec, sources: Sources) -> Any:
        return replay(row, spec, sources)


def replay(
    row: dict[str, Any], spec: CodecSpec, sources: Sources | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Rebuild ``(lossless, coded)`` of a row from its params, coding its clip alone."""
    srcs = spec.sources() if sources is None else sources
    p = row["params"] if isinstance(row["params"], dict) else json.loads(row["params"])
    sr, n = spec.sample_rate, spec.row_samples
    start = int(round(p["offset_s"] * sr))
    lead = int(round(p["context_before_s"] * sr))
    audio = srcs.load(p["source_id"], sr)
    region, got = region_for(audio, start, n, int(round(spec.context_seconds * sr)))
    if got != lead or region.size != p["region_samples"]:
        raise SpecError(
            f"codec replay: the region of {p['source_id']!r} differs from the "
            "recorded one (another spec or recording?)"
        )
    if p["gain"] != 1.0:
        region = region * np.float32(p["gain"])
    if "codec" in p:
        family = p["codec"]
        params = perturbations.get(family).params_from_dict(p["codec_params"])
        coded = codec_choice.code(region, sr, family, params)
    else:  # a row built before the codec suite: MP3 through ffmpeg
        coded = ffmpeg.mp3_roundtrip(region, sr, p["bitrate_kbps"])
    lossless, coded = region[lead : lead + n], coded[lead : lead + n]
    if p["scale"] != 1.0:
        lossless, coded = lossless * np.float32(p["scale"]), coded * np.float32(p["scale"])
    return lossless.astype(np.float32), coded.astype(np.float32)
