"""The NMR recipe (NORESQA section 3.4): pairs of *different* degraded utterances labelled
with the SNR and SI-SDR of each side, which side is cleaner, and binned differences.

A row holds two different clean speech clips (``a_clean``, ``b_clean``) and their degraded
versions (``a``, ``b``). Each pair is, with probability ``additive_probability``, an
*additive* pair, else a *distortion* pair:

- **additive**: both sides get a noise recording of the same noise label (one label drawn
  per pair, each side its own recording and offset) at an SNR drawn uniformly in
  ``snr_db`` (default -15..60 dB). SNR is speech-weighted, as the noise families set it:
  ``pamflow.measures.snr_db(clean, noisy, sample_rate)`` (active frames of the clean).
  The SI-SDR of these sides is measured too (over the whole clip, pauses included: about
  1 dB below the SNR, so -16..59 dB; the paper's -15..25 dB mapping does not hold for clean
  sources). ``a_kind`` is ``"noise:<label>"``.
- **distortion**: each side draws a family of ``distortions`` (clipping, freq_mask, mulaw)
  uniformly, and a seed for its params (freq_mask's band position), measures the SI-SDR
  its strength spans on this clip (ρ = 100 .. ρ = 0), draws a target uniformly where that
  span meets ``sisdr_db`` (default -15..+25 dB; another family and seed are drawn when
  they do not meet), then bisects ρ until the measured SI-SDR is within 0.1 dB of the
  target (the params for every ρ come from the one seed, so freq_mask keeps its band
  position while its width grows). The families stay balanced; the SI-SDR is a mixture of
  uniforms over their reach: clipping about -3..25 dB, freq_mask a window that depends on
  where the band sits, mulaw the whole range. SNR is undefined here (the residual
  is not independent of the speech): ``a_snr``/``b_snr`` are null, as in the paper, where
  these rows train only the SI-SDR head. ``a_kind`` is the family name.

Before degrading, each clean clip is set to an active speech level drawn in
``speech_level_db`` (dBFS, capped so its peak stays below full scale) and, with
probability ``reverb_probability``, convolved with a bank RIR at a DRR drawn in
``reverb_drr_db`` (``reverb_drr`` family) for robustness: the reverberant speech is then
the clean reference of that side (``a_clean``), so labels measure only the degradation.
Finally the clean and degraded audio of a side are scaled *together* so both peak at most
0.99 (SNR and SI-SDR are unchanged by a common gain). Labels are measured on that final
float32 audio, so they match values recomputed from the stored audio (FLAC 24-bit
quantisation moves them by far less than 0.001 dB).

``preference`` is 0 when ``a`` has the higher SI-SDR (a is cleaner), else 1 (paper's
``y = [1, 0]`` iff ``sdr_i > sdr_j``). ``sisdr_delta = |a_sisdr - b_sisdr|`` and, for
additive pairs, ``snr_delta``; ``sisdr_bin``/``snr_bin`` are their classes of
:func:`delta_bins` (``delta_classes`` bins over ``[0, delta_max_db)``, 1 dB each by
default, the last class open-ended). :func:`smoothed_targets` gives the paper's
smoothed labels (eq. 4). Row ``i`` depends only on ``(spec.seed, i)``.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from pydantic import Field, field_validator, model_validator

from pamflow.corpus.sources import Sources
from pamflow.datasets.base import Recipe, clip_at, cut_clip, long_enough
from pamflow.datasets.nmr_render import (
    HEADROOM,
    clean_side,
    render_side,
    search_strength,
)
from pamflow.datasets.spec import BaseSpec, SpecError, SpecModel
from pamflow.measures import active_level_db, si_sdr, snr_db
from pamflow.measures.noresqa import bin_centres, delta_bins, smoothed_targets  # noqa: F401  (re-exported)
from pamflow.seeding import draw_seed

#: the signal distortions of NORESQA section 3.4 (plus mulaw, its unseen test distortion)
DISTORTIONS = ("clipping", "freq_mask", "mulaw")
_MAX_TRIES = 32
#: the quietest speech level a spec may ask for (below it the clips store as silence)
MIN_SPEECH_LEVEL_DB = -100.0


# -- spec ----------------------------------------------------------------------------------
class DbRange(SpecModel):
    """A closed range of decibels, ``low <= high``."""

    low: float = Field(description="lower end (dB)")
    high: float = Field(description="upper end (dB)")

    @model_validator(mode="after")
    def _ordered(self) -> DbRange:
        if not (np.isfinite(self.low) and np.isfinite(self.high)) or self.low > self.high:
            raise ValueError(f"need finite low <= high, got {self.low}..{self.high}")
        return self


def _range(low: float, high: float, description: str) -> Any:
    return Field(default_factory=lambda: DbRange(low=low, high=high), description=description)


class NmrSpec(BaseSpec):
    clip_seconds: float = Field(3.0, gt=0, le=60, description="NORESQA trains on 3 s excerpts")
    additive_probability: float = Field(0.5, ge=0, le=1, description="share of additive pairs")
    snr_db: DbRange = _range(
        -15.0, 60.0, "additive pairs: the SNR of each side, drawn uniformly in this range"
    )
    sisdr_db: DbRange = _range(
        -15.0,
        25.0,
        "distortion pairs: the target SI-SDR of each side, drawn uniformly where this range "
        "meets what the drawn family reaches on the clip",
    )
    noise_labels: list[str] | None = Field(None, description="noise labels; None: all")
    distortions: list[str] = Field(
        default_factory=lambda: list(DISTORTIONS),
        description="the families a distortion side draws from, uniformly: one or more of "
        + ", ".join(DISTORTIONS),
    )
    reverb_probability: float = Field(0.2, ge=0, le=1, description="share of reverberant sides")
    reverb_drr_db: DbRange = _range(
        0.0, 30.0, "direct-to-reverberant ratio of a reverberant side (within -27..65 dB)"
    )
    speech_level_db: DbRange = _range(
        -30.0, -20.0, f"active speech level of each clean clip, dBFS ({MIN_SPEECH_LEVEL_DB:g}..0)"
    )
    delta_classes: int = Field(
        40, ge=2, le=1000, description="classes of the binned differences (sisdr_bin, snr_bin)"
    )
    delta_max_db: float = Field(
        40.0,
        gt=0,
        description="the bins split [0, delta_max_db) evenly; the last class is open-ended",
    )

    @field_validator("distortions")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        bad = [d for d in v if d not in DISTORTIONS]
        if bad or len(set(v)) != len(v):
            raise ValueError(f"unknown or repeated {bad or v}; choose from {list(DISTORTIONS)}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> NmrSpec:
        if self.additive_probability < 1 and not self.distortions:
            raise ValueError("distortions: empty, but additive_probability < 1 needs some")
        if self.distortions == ["clipping"] and self.sisdr_db.high < 0:
            raise ValueError("sisdr_db: clipping alone cannot go below about -3 dB SI-SDR")
        if not (-27 <= self.reverb_drr_db.low and self.reverb_drr_db.high <= 65):
            raise ValueError("reverb_drr_db: must lie within -27..65 dB (reverb_drr's range)")
        if self.speech_level_db.high > 0:
            raise ValueError("speech_level_db: levels are dBFS, at most 0")
        if self.speech_level_db.low < MIN_SPEECH_LEVEL_DB:
            raise ValueError(
                f"speech_level_db: {self.speech_level_db.low} dBFS is below "
                f"{MIN_SPEECH_LEVEL_DB} dBFS, where 24-bit audio holds nothing but rounding"
            )
        return self


class NmrRecipe(Recipe[NmrSpec]):
    name = "nmr"
    Spec = NmrSpec
    needs = {"speech": "manifests"}
    audio_columns = ("a", "b", "a_clean", "b_clean")
    label_columns = ("preference", "a_sisdr", "b_sisdr")
    count_columns = ("preference",)
    histogram_columns = {
        "a_snr": "SNR of A (dB)",
        "b_snr": "SNR of B (dB)",
        "a_sisdr": "SI-SDR of A (dB)",
        "b_sisdr": "SI-SDR of B (dB)",
    }
    split_key = "a_source_id"
    evaluated_on = ("a", "b")
    description = "NORESQA non-matching-reference pairs labelled with SNR, SI-SDR, preference"

    def check(self, spec: NmrSpec, sources: Sources) -> None:
        if len(long_enough(sources, "speech", spec.clip_seconds)) < 2:
            raise SpecError("manifests: NMR pairs need at least two speech recordings")
        if spec.additive_probability > 0:
            for label in self._noise_labels(spec, sources):
                if not sources.ids("noise", label):
                    raise SpecError(
                        f"noise_labels: no noise recording labelled {label!r} "
                        f"(labels present: {sources.labels('noise') or 'none'})"
                    )
        if spec.reverb_probability > 0 and not sources.ids("rir"):
            raise SpecError("reverb_probability: > 0 but the sources hold no RIR (kind 'rir')")

    @staticmethod
    def _noise_labels(spec: NmrSpec, sources: Sources) -> list[str]:
        labels = spec.noise_labels if spec.noise_labels is not None else sources.labels("noise")
        if not labels:
            raise SpecError("noise_labels: no labelled noise recordings for additive pairs")
        return labels

    def columns(self, spec: NmrSpec) -> list[tuple[str, str, bool]]:
        cols: list[tuple[str, str, bool]] = [(c, "audio", False) for c in self.audio_columns]
        for side in "ab":
            cols += [
                (f"{side}_snr", "float64", True),
                (f"{side}_sisdr", "float64", False),
                (f"{side}_kind", "string", False),
                (f"{side}_source_id", "string", False),
                (f"{side}_offset", "float64", False),
            ]
        return cols + [
            ("preference", "int64", False),
            ("sisdr_delta", "float64", False),
            ("snr_delta", "float64", True),
            ("sisdr_bin", "int64", False),
            ("snr_bin", "int64", True),
            ("pair", "string", False),
        ]

    def make_example(
        self, spec: NmrSpec, sources: Sources, index: int, rng: np.random.Generator
    ) -> dict[str, Any]:
        speech = long_enough(sources, "speech", spec.clip_seconds)
        picks = rng.choice(len(speech), size=2, replace=False)
        additive = bool(rng.random() < spec.additive_probability)
        label = None
        if additive:
            labels = self._noise_labels(spec, sources)
            label = labels[int(rng.integers(len(labels)))]
        row: dict[str, Any] = {"pair": "additive" if additive else "distortion"}
        params: dict[str, Any] = {"pair": row["pair"], "noise_label": label}
        for name, pick in zip("ab", picks, strict=True):
            side, clean, degraded = self._side(spec, sources, speech[int(pick)], label, rng)
            params[name] = side
            row[name], row[f"{name}_clean"] = degraded, clean
            row[f"{name}_source_id"], row[f"{name}_offset"] = side["source_id"], side["offset_s"]
            row[f"{name}_kind"] = f"noise:{label}" if additive else side["degradation"]["kind"]
            row[f"{name}_sisdr"] = si_sdr(clean, degraded)
            row[f"{name}_snr"] = snr_db(clean, degraded, spec.sample_rate) if additive else None
        row.update(
            pair_labels(
                row["a_sisdr"],
                row["b_sisdr"],
                row["a_snr"],
                row["b_snr"],
                spec.delta_classes,
                spec.delta_max_db,
            )
        )
        for key in ("a_sisdr", "b_sisdr", "a_snr", "b_snr"):
            if row[key] is not None and not np.isfinite(row[key]):
                raise RuntimeError(f"nmr: example {index}: {key} is {row[key]} (params {params})")
        row["params"] = params
        return row

    def _side(
        self,
        spec: NmrSpec,
        sources: Sources,
        source_id: str,
        noise_label: str | None,
        rng: np.random.Generator,
    ) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
        sr = spec.sample_rate
        for _ in range(_MAX_TRIES):
            clip, offset = cut_clip(sources, source_id, sr, spec.clip_samples, rng)
            level = active_level_db(clip, sr)
            if np.isfinite(level):
                break
        else:
            raise RuntimeError(f"nmr: speech recording {source_id!r} gives only silent clips")
        target = float(rng.uniform(spec.speech_level_db.low, spec.speech_level_db.high))
        gain = min(10.0 ** ((target - level) / 20.0), HEADROOM / float(np.max(np.abs(clip))))
        side: dict[str, Any] = {
            "source_id": source_id,
            "offset_s": offset,
            "level_db": target,
            "gain": float(gain),
            "reverb": None,
        }
        if rng.random() < spec.reverb_probability:
            drr = float(rng.uniform(spec.reverb_drr_db.low, spec.reverb_drr_db.high))
            side["reverb"] = {"drr_db": drr, "rir_id": sources.choose(rng, "rir")}
        if noise_label is not None:
            noise_id = sources.choose(rng, "noise", noise_label)
            start = float(rng.random()) * sources.duration_s(noise_id)
            snr = float(rng.uniform(spec.snr_db.low, spec.snr_db.high))
            side["degradation"] = {
                "kind": "noise",
                "params": {"snr_db": snr, "source_id": noise_id, "offset_s": round(start, 6)},
            }
        else:
            side["degradation"] = self._distortion(spec, sources, clip, side, rng)
        clean, degraded = render_side(clip, sr, side, sources)
        return side, clean, degraded

    def _distortion(
        self,
        spec: NmrSpec,
        sources: Sources,
        clip: np.ndarray,
        side: dict[str, Any],
        rng: np.random.Generator,
    ) -> dict[str, Any]:
        clean = clean_side(clip, spec.sample_rate, side, sources)
        low, high = spec.sisdr_db.low, spec.sisdr_db.high

        def pick(lowest: float, highest: float) -> float | None:
            lo, hi = max(low, lowest), min(high, highest)
            return float(rng.uniform(lo, hi)) if lo <= hi else None

        for _ in range(_MAX_TRIES):
            family = str(spec.distortions[int(rng.integers(len(spec.distortions)))])
            seed = draw_seed(rng)
            found = search_strength(clean, spec.sample_rate, family, seed, pick)
            if found is not None:
                rho, p, _, target = found
                return {
                    "kind": family,
                    "params": p,
                    "strength": rho,
                    "target_sisdr_db": target,
                    "param_seed": seed,
                }
        raise RuntimeError(
            f"nmr: none of {spec.distortions} reaches an SI-SDR in {low}..{high} dB on "
            f"{side['source_id']!r} in {_MAX_TRIES} tries"
        )

    def summary(self, table: Any) -> dict[str, Any]:
        col = {
            n: table.column(n).to_pylist()
            for n in (
                "pair",
                "a_kind",
                "b_kind",
                "preference",
                "a_sisdr",
                "b_sisdr",
                "a_snr",
                "b_snr",
            )
        }
        sisdr = np.asarray(col["a_sisdr"] + col["b_sisdr"], dtype=float)
        snr = np.asarray([v for v in col["a_snr"] + col["b_snr"] if v is not None], dtype=float)
        kinds: dict[str, int] = {}
        for k in col["a_kind"] + col["b_kind"]:
            kinds[k] = kinds.get(k, 0) + 1
        out: dict[str, Any] = {
            "rows": table.num_rows,
            "additive_pairs": col["pair"].count("additive"),
            "distortion_pairs": col["pair"].count("distortion"),
            "share_b_cleaner": float(np.mean(col["preference"])) if table.num_rows else 0.0,
            "kinds": dict(sorted(kinds.items())),
        }
        if sisdr.size:
            out["sisdr_range_db"] = f"{sisdr.min():.1f}..{sisdr.max():.1f}"
        if snr.size:
            out["snr_range_db"] = f"{snr.min():.1f}..{snr.max():.1f}"
        return out

    def rebuild(self, row: dict[str, Any], spec: NmrSpec, sources: Sources) -> Any:
        return replay(row, spec, sources)


def pair_labels(
    a_sisdr: float,
    b_sisdr: float,
    a_snr: float | None,
    b_snr: float | None,
    num_classes: int = 40,
    delta_max: float = 40.0,
) -> dict[str, Any]:
    """``preference``, ``sisdr_delta``/``snr_delta`` (dB, absolute) and their bins."""
    sd = abs(a_sisdr - b_sisdr)
    out: dict[str, Any] = {
        "preference": 0 if a_sisdr > b_sisdr else 1,
        "sisdr_delta": sd,
        "sisdr_bin": int(delta_bins(sd, num_classes, delta_max)),
        "snr_delta": None,
        "snr_bin": None,
    }
    if a_snr is not None and b_snr is not None:
        out["snr_delta"] = abs(a_snr - b_snr)
        out["snr_bin"] = int(delta_bins(out["snr_delta"], num_classes, delta_max))
    return out


def replay(
    row: dict[str, Any], spec: NmrSpec, sources: Sources | None = None
) -> dict[str, np.ndarray]:
    """Rebuild ``{"a", "b", "a_clean", "b_clean"}`` of a row from its params alone."""
    srcs = spec.sources() if sources is None else sources
    p = row["params"] if isinstance(row["params"], dict) else json.loads(row["params"])
    out = {}
    for name in "ab":
        side = p[name]
        clip = clip_at(
            srcs, side["source_id"], spec.sample_rate, spec.clip_samples, side["offset_s"]
        )
        out[f"{name}_clean"], out[name] = render_side(clip, spec.sample_rate, side, srcs)
    return out
