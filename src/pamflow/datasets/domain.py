"""The domain recipe (Verma & Berger): level-matched clips labelled with their domain,
e.g. a high-end ("good") against a cheap ("cheap") instrument, to train a quality scorer.

Each row is one clip of ``clip_seconds`` (3 s by default, as the paper's scorer reads)
cut at a random offset from a recording of kind ``kind`` (default "instrument") whose label
is one of the domains, ``labels`` (default: every label of that kind in the sources, at
least two). Row ``i`` belongs to domain ``labels[i % len(labels)]`` (labels sorted as
given), so the domains alternate and stay balanced in any range of rows; the recording and
offset come from the row's own generator.

**Level matching.** A scorer must not learn "louder is better": every clip is normalised to
``target_lufs`` integrated loudness (ITU-R BS.1770 via :func:`pamflow.audio.loudness`;
clips shorter than 0.4 s fall back to their RMS level). The gain is computed, applied, and
corrected once more from the loudness of the result (the absolute gate of BS.1770 can move
with the gain), so ``loudness_lufs``, measured on the stored float32 clip, is within 0.01
LU of the target. Clips are redrawn (another recording and offset, up to
:data:`MAX_TRIES` times) when:

- the clip is too quiet to be a fair example of its domain (loudness below
  ``min_source_lufs`` before the gain, e.g. a pause or the decay of a note), or
- the gain would push its peak above ``max_peak_db`` dBFS.

If every try fails on the peak, the try with the lowest peak is kept with its gain cut so
it peaks at ``max_peak_db`` (``params.level_matched`` is then false and
``loudness_lufs`` tells its actual level); if every try is too quiet, the build stops with
an error naming the domain.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
from pydantic import Field, field_validator

from pamflow.audio import loudness
from pamflow.corpus.sources import Sources
from pamflow.datasets.base import Recipe, clip_at, cut_clip
from pamflow.datasets.spec import BaseSpec, SpecError

#: clips drawn for one row at most before giving up on the level constraints
MAX_TRIES = 16
#: the level correction stops within this distance of the target (LU)
LEVEL_TOL_LU = 0.01


class DomainSpec(BaseSpec):
    clip_seconds: float = Field(3.0, gt=0, le=60, description="Verma & Berger score 3 s clips")
    kind: str = Field("instrument", min_length=1, description="recording kind the clips come from")
    labels: list[str] | None = Field(None, description="the domains; None: every label of kind")
    target_lufs: float = Field(-23.0, ge=-60, le=-5, description="loudness of every clip")
    min_source_lufs: float = Field(
        -50.0, ge=-90, le=0, description="clips quieter than this are redrawn"
    )
    max_peak_db: float = Field(-1.0, ge=-20, le=0, description="peak limit after the gain, dBFS")

    @field_validator("labels")
    @classmethod
    def _distinct(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and (len(v) < 2 or len(set(v)) != len(v)):
            raise ValueError(f"need two or more distinct domain labels, got {v}")
        return v


def domain_labels(spec: DomainSpec, sources: Sources) -> list[str]:
    """The domains in row order: ``spec.labels`` as given, else the kind's labels sorted."""
    return list(spec.labels) if spec.labels is not None else sources.labels(spec.kind)


def domain_ids(spec: DomainSpec, sources: Sources, label: str) -> list[str]:
    """Recordings of the domain long enough for a clip (all of them if none is)."""
    ids = sources.ids(spec.kind, label)
    ok = [i for i in ids if float(sources.entry(i).get("duration_s") or 0) >= spec.clip_seconds]
    return ok or ids


def normalise(clip: np.ndarray, sample_rate: int, target_lufs: float) -> tuple[np.ndarray, float]:
    """``(clip * gain, gain)`` with the loudness of the result at ``target_lufs``
    (within :data:`LEVEL_TOL_LU` when reachable); the clip must not be silent."""
    x = np.asarray(clip, dtype=np.float64)
    gain = 10.0 ** ((target_lufs - loudness(x, sample_rate)) / 20.0)
    for _ in range(3):
        level = loudness(x * gain, sample_rate)
        if abs(level - target_lufs) <= LEVEL_TOL_LU:
            break
        gain *= 10.0 ** ((target_lufs - level) / 20.0)
    return (x * gain).astype(np.float32), float(gain)


class DomainRecipe(Recipe[DomainSpec]):
    name = "domain"
    Spec = DomainSpec
    needs = {"instrument": "kind"}
    audio_columns = ("audio",)
    label_columns = ("domain",)
    count_columns = ("domain",)
    split_key = "source_id"
    evaluated_on = ("audio",)  # by the models that declare an evaluator for domain (scorer)
    description = "level-matched clips labelled with their domain (e.g. good vs cheap instrument)"

    def check_served(self, spec: DomainSpec, sources: Sources) -> None:
        spec.check_sources(sources, {spec.kind: "kind"})
        labels = domain_labels(spec, sources)
        if len(labels) < 2:
            raise SpecError(
                f"labels: {spec.kind} recordings carry {len(labels)} label(s) "
                f"({labels}); a domain dataset needs two or more"
            )
        for label in labels:
            if not sources.ids(spec.kind, label):
                raise SpecError(
                    f"labels: no {spec.kind} recording labelled {label!r} "
                    f"(labels present: {sources.labels(spec.kind) or 'none'})"
                )

    def columns(self, spec: DomainSpec) -> list[tuple[str, str, bool]]:
        return [
            ("audio", "audio", False),
            ("domain", "string", False),
            ("source_id", "string", False),
            ("offset", "float64", False),
            ("loudness_lufs", "float64", False),
        ]

    def make_example(
        self, spec: DomainSpec, sources: Sources, index: int, rng: np.random.Generator
    ) -> dict[str, Any]:
        sr = spec.sample_rate
        labels = domain_labels(spec, sources)
        domain = labels[index % len(labels)]
        ids = domain_ids(spec, sources, domain)
        peak_max = 10.0 ** (spec.max_peak_db / 20.0)
        best: tuple[float, str, float, np.ndarray, float, float] | None = None  # lowest peak
        for tries in range(1, MAX_TRIES + 1):
            source_id = ids[int(rng.integers(len(ids)))]
            clip, offset = cut_clip(sources, source_id, sr, spec.clip_samples, rng)
            before = loudness(clip, sr)
            if not np.isfinite(before) or before < spec.min_source_lufs:
                continue
            audio, gain = normalise(clip, sr, spec.target_lufs)
            peak = float(np.max(np.abs(audio)))
            if peak <= peak_max:
                return self._row(spec, domain, source_id, offset, audio, gain, before, tries, True)
            if best is None or peak < best[0]:
                best = (peak, source_id, offset, clip, gain, before)
        if best is None:
            raise RuntimeError(
                f"domain: {MAX_TRIES} clips of domain {domain!r} ({spec.kind}) were all quieter "
                f"than min_source_lufs={spec.min_source_lufs} (example {index})"
            )
        peak, source_id, offset, clip, gain, before = best
        gain *= peak_max / peak
        audio = (clip.astype(np.float64) * gain).astype(np.float32)
        return self._row(spec, domain, source_id, offset, audio, gain, before, MAX_TRIES, False)

    @staticmethod
    def _row(
        spec: DomainSpec,
        domain: str,
        source_id: str,
        offset: float,
        audio: np.ndarray,
        gain: float,
        before: float,
        tries: int,
        matched: bool,
    ) -> dict[str, Any]:
        return {
            "audio": audio,
            "domain": domain,
            "source_id": source_id,
            "offset": offset,
            "loudness_lufs": loudness(audio, spec.sample_rate),
            "params": {
                "source_id": source_id,
                "offset_s": offset,
                "gain": gain,
                "gain_db": 20.0 * float(np.log10(gain)),
                "source_lufs": before,
                "tries": tries,
                "level_matched": matched,
            },
        }

    def summary(self, table: Any) -> dict[str, Any]:
        domains = Counter(table.column("domain").to_pylist())
        level = np.asarray(table.column("loudness_lufs").to_pylist(), dtype=float)
        out: dict[str, Any] = {"rows": table.num_rows, "domains": dict(sorted(domains.items()))}
        if level.size:
            out["loudness_lufs"] = f"{level.min():.2f}..{level.max():.2f}"
        return out

    def rebuild(self, row: dict[str, Any], spec: DomainSpec, sources: Sources) -> Any:
        return replay(row, spec, sources)


def replay(row: dict[str, Any], spec: DomainSpec, sources: Sources | None = None) -> np.ndarray:
    """Rebuild a row's clip from its params (source, offset, gain)."""
    import json

    srcs = spec.sources() if sources is None else sources
    p = row["params"] if isinstance(row["params"], dict) else json.loads(row["params"])
    clip = clip_at(srcs, p["source_id"], spec.sample_rate, spec.clip_samples, p["offset_s"])
    return (clip.astype(np.float64) * p["gain"]).astype(np.float32)
