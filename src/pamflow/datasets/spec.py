"""Dataset specs: validated configs shared by every recipe.

A spec says where the recordings come from, the sample rate and clip length, the counts
and the seed. It is checked in two steps, both before any work starts: the fields
themselves (pydantic), then against the sources (:meth:`BaseSpec.check_sources`: the
manifests exist, hold recordings of the kinds the recipe needs, and clips of the asked
length can be cut from them). Errors name the field.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from pamflow.corpus.sources import Sources, SourcesError, default_sources
from pamflow.perturbations import default_axis_families

#: the most rows one build may ask for (DPAM's whole dataset has 55,000): more is a typo
MAX_EXAMPLES = 10_000_000
#: the most shards one build may have (each is a task and a file)
MAX_SHARDS = 100_000


class SpecError(ValueError):
    """A spec that cannot be built; the message names the field and the reason."""


class SpecModel(BaseModel):
    """A spec or a part of one: unknown fields refused, frozen, and a boolean never taken
    for a number (pydantic would read ``num_examples: true`` as 1)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _no_booleans_for_numbers(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name, field in cls.model_fields.items():
                value = data.get(name)
                if isinstance(value, bool) and _numeric(field.annotation):
                    raise ValueError(f"{name}: {value} is a boolean, not a number")
        return data


def _numeric(annotation: Any) -> bool:
    """Whether a field's type is a number (or a number or None)."""
    if annotation in (int, float):
        return True
    args = getattr(annotation, "__args__", ())
    return bool(args) and all(a in (int, float, type(None)) for a in args)


class BaseSpec(SpecModel):
    """Fields every recipe has."""

    seed: int = Field(
        0, ge=0, description="dataset seed; example i uses a seed derived from (seed, i)"
    )
    num_examples: int = Field(
        400, ge=1, le=MAX_EXAMPLES, description=f"rows to generate (at most {MAX_EXAMPLES:,})"
    )
    shard_size: int = Field(100, ge=1, description="rows per Parquet shard")
    sample_rate: int = Field(16000, ge=8000, le=96000, description="Hz, for every audio column")
    clip_seconds: float = Field(2.5, gt=0, le=60, description="length of each clip")
    audio_format: Literal["flac", "wav"] = Field(
        "flac", description="flac: FLAC 24-bit; wav: float32 WAV (faster to decode, bigger)"
    )
    manifests: list[str] = Field(
        default_factory=list,
        description=(
            "corpus manifests (from `pamflow index`; a relative path is taken from the "
            "current folder and stored absolute); empty: the embedded demo corpus"
        ),
    )

    @model_validator(mode="after")
    def _shard_count(self) -> BaseSpec:
        shards = -(-self.num_examples // self.shard_size)
        if shards > MAX_SHARDS:
            raise ValueError(
                f"shard_size: {self.num_examples} rows in shards of {self.shard_size} make "
                f"{shards} shards, more than {MAX_SHARDS:,}; raise shard_size"
            )
        return self

    @field_validator("manifests")
    @classmethod
    def _manifests_exist(cls, v: list[str]) -> list[str]:
        # a relative path is taken from the current folder and kept absolute, so that Dask
        # workers (another folder, another machine) read the same file
        for m in v:
            if "://" not in m and not Path(m).exists():
                raise ValueError(f"manifest {m!r} does not exist")
        return [m if "://" in m else os.path.abspath(m) for m in v]

    @property
    def clip_samples(self) -> int:
        return int(round(self.clip_seconds * self.sample_rate))

    def sources(self) -> Sources:
        return Sources.from_tables(*self.manifests) if self.manifests else default_sources()

    def check_sources(self, sources: Sources, kinds: dict[str, str]) -> None:
        """Fail unless ``sources`` hold recordings of each kind in ``kinds`` (kind -> the
        field that needs it) long enough for ``clip_seconds`` where the kind is cut into clips."""
        for kind, field in kinds.items():
            rows = sources.rows(kind)
            if not rows:
                where = ", ".join(self.manifests) or "the demo corpus"
                raise SpecError(f"{field}: no {kind} recordings in {where}")
        for kind in ("speech", "music", "instrument"):
            if kind in kinds:
                longest = max(float(r["duration_s"]) for r in sources.rows(kind))
                if longest < self.clip_seconds:
                    raise SpecError(
                        f"clip_seconds: {self.clip_seconds} s is longer than the longest "
                        f"{kind} recording ({longest:.2f} s)"
                    )


class StrengthRange(SpecModel):
    low: float = Field(
        0.0, ge=0, le=100, description="lowest strength ρ (0: each family's mildest setting)"
    )
    high: float = Field(
        100.0, ge=0, le=100, description="highest strength ρ (100: the strongest); low <= high"
    )

    @model_validator(mode="after")
    def _ordered(self) -> StrengthRange:
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) is above high ({self.high})")
        return self


class PerturbedSpec(BaseSpec):
    """Specs whose examples are perturbed along axes: the families and the strength range."""

    families: list[str] = Field(
        default_factory=default_axis_families,
        description="families the axes draw from (at most one per category on an axis)",
    )
    strength: StrengthRange = Field(
        default_factory=StrengthRange, description="range of the strengths asked about"
    )
    griffin_lim_engine: Literal["auto", "numpy", "torch-cpu", "torch-cuda"] = Field(
        "auto",
        description="how griffin_lim rows are made: auto (a shard's rows batched on the GPU "
        "where the worker has CUDA, engine torch-cuda; numpy elsewhere), numpy (one at a "
        "time, any worker), torch-cuda or torch-cpu (batched there); rows record the engine",
    )

    @model_serializer(mode="wrap")
    def _leave_out_auto(self, handler: Any) -> Any:
        # "auto" is left out of the dump: specs written before the field keep their digest
        data = handler(self)
        if isinstance(data, dict) and data.get("griffin_lim_engine") == "auto":
            del data["griffin_lim_engine"]
        return data

    @property
    def batched_griffin_lim(self) -> str | None:
        """The torch engine a build batches this spec's Griffin-Lim rows with on this
        worker, or None (numpy, one row at a time; or no griffin_lim in ``families``)."""
        if "griffin_lim" not in self.families:
            return None
        from pamflow.perturbations.griffin_lim import resolve_engine

        engine = resolve_engine(self.griffin_lim_engine)
        return None if engine == "numpy" else engine

    @field_validator("families")
    @classmethod
    def _known_families(cls, v: list[str]) -> list[str]:
        return check_families(v)

    def check_sources(self, sources: Sources, kinds: dict[str, str]) -> None:
        """As :meth:`BaseSpec.check_sources`, and each family that draws recordings (noise,
        RIRs) finds some: drawing its params once, before any work, finds a corpus that
        lacks them instead of row 0 of the build."""
        super().check_sources(sources, kinds)
        from pamflow import perturbations

        rng = np.random.default_rng(0)
        for name in self.families:
            fam = perturbations.get(name)
            if fam.needs_sources:
                try:
                    fam.sample(rng, 50.0, sources)
                except perturbations.PerturbationError as e:
                    where = ", ".join(self.manifests) or "the demo corpus"
                    raise SpecError(f"families: {e} (sources: {where})") from None


class ListenerSpec(PerturbedSpec):
    """Specs labelled by a simulated listener panel, on a mildly degraded reference."""

    reference_strength: float = Field(
        15.0,
        ge=0,
        le=100,
        description="the reference is degraded along a random axis at U(0, this)",
    )
    labels: Literal["simulated", "none"] = Field(
        "simulated",
        description="simulated: answered by the simulated listener panel; none: labels left "
        "null, for a human listening test",
    )
    listeners: int = Field(50, ge=1, description="size of the simulated listener panel")
    listener_threshold: float = Field(
        1.0, gt=0, description="median JND of the panel, in perceptual-distance dB"
    )
    listener_pool_power: float = Field(
        1.0, ge=1, description="how a listener pools per-frame distances (1: mean, 2: RMS)"
    )

    def panel(self, key: int) -> tuple[Any, ...]:
        """The simulated panel of this dataset (fixed by seed, size, threshold and ``key``)."""
        from pamflow.datasets.listener import panel_for

        return panel_for(self.seed, key, self.listeners, self.listener_threshold)


def check_families(names: list[str]) -> list[str]:
    from pamflow import perturbations

    known = set(perturbations.names())
    bad = [n for n in names if n not in known]
    if bad:
        raise ValueError(
            f"unknown famil{'y' if len(bad) == 1 else 'ies'} {bad}; known: {sorted(known)}"
        )
    if not names:
        raise ValueError("at least one family is needed")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"{repeated} listed more than once (each family is drawn equally)")
    return names


SpecT = TypeVar("SpecT", bound=SpecModel)


def parse_spec(
    spec_cls: type[SpecT], data: dict[str, Any] | None = None, **overrides: Any
) -> SpecT:
    """Build and validate a spec; pydantic errors become a :class:`SpecError` naming fields."""
    merged = {**(data or {}), **{k: v for k, v in overrides.items() if v is not None}}
    try:
        return spec_cls.model_validate(merged)
    except ValidationError as e:
        lines = []
        for err in e.errors():
            loc = ".".join(str(p) for p in err["loc"])
            msg = str(err["msg"]).removeprefix("Value error, ")  # pydantic's, not the user's
            lines.append(f"{loc}: {msg}" if loc else msg)
        raise SpecError("invalid spec: " + "; ".join(lines)) from None


def read_fields(
    path: str | Path,
    what: str,
    *,
    noun: str,
    defaults: str,
    shape: str = "",
    error: type[ValueError] = SpecError,
) -> dict[str, Any]:
    """The fields of the YAML file ``path`` (a ``what``: "spec file", "training config");
    anything else is one ``error`` naming the file: unreadable, not UTF-8, not YAML, empty
    (leave out --config to ``defaults``), or not a mapping (a ``noun`` must be a mapping of
    fields ``shape``)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except OSError as e:
        raise error(f"{path}: cannot read the {what}: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise error(f"{path}: not a text (UTF-8) {what}: byte {e.start}: {e.reason}") from None
    except yaml.YAMLError as e:
        raise error(f"{path}: the {what} is not valid YAML: {' '.join(str(e).split())}") from None
    if data is None:
        raise error(f"{path}: the {what} is empty (no fields); leave out --config to {defaults}")
    if not isinstance(data, dict):
        raise error(
            f"{path}: a {noun} must be a mapping of fields{shape}, got {type(data).__name__}"
        )
    return data


def load_spec_file(path: str | Path) -> dict[str, Any]:
    """The fields of a YAML spec file; one line naming the file for anything else."""
    return read_fields(path, "spec file", noun="spec", defaults="build with the recipe's defaults")


__all__ = [
    "BaseSpec",
    "ListenerSpec",
    "PerturbedSpec",
    "SourcesError",
    "SpecError",
    "StrengthRange",
    "check_families",
    "load_spec_file",
    "parse_spec",
    "read_fields",
]
