"""The levels recipe: recordings at discrete perturbation levels, for quality-based
retrieval (NORESQA section 4.1, "1000 recordings at 10 discrete quality levels, 100 per
level"; CDPAM section 5, "10 acoustic perturbation groups of 100 files, same perturbation,
different content").

A row is one speech clip (a random recording and offset) perturbed by its level's chain.
Row ``i`` is at level ``i % levels``, so any run of rows is balanced across levels (the
paper's 100 per level is ``num_examples: 1000`` with ``levels: 10``). Level ``k`` has
strength ``ρ_k``: ``levels`` strengths evenly spaced over the spec's strength range, the
mildest first. Its axis (families and weights) is

- ``axis: shared`` (default): one axis for all levels, drawn once from the spec's seed
  and ``families``: ordered quality levels along one direction (NORESQA's retrieval: e.g.
  ``families: [white_noise]`` gives 10 noise levels);
- ``axis: per_level``: an axis of its own per level: 10 acoustic perturbation groups
  (CDPAM's clustering).

``params: shared`` (default) applies each level's chain with the SAME params to every row
of the level (the noise recording and offset, the impulse response...: same acoustic
perturbation, different content, as CDPAM's groups and its contrastive acoustic pairs);
``params: per_row`` draws the params at the level's strength from each row's own seed
(same level, its own noise excerpt).

Columns: ``audio``, ``level`` (0 .. levels-1, the retrieval class), ``strength``,
``source_id`` (the split key: a recording stays on one side of a held-out split),
``offset``, ``chain`` (the applied chain, replayable). Row ``i`` depends only on
``(spec, i)``.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import numpy as np
from pydantic import Field

from pamflow.corpus.sources import Sources
from pamflow.datasets.base import Recipe, clip_at, cut_clip, long_enough
from pamflow.datasets.spec import PerturbedSpec
from pamflow.perturbations import Axis, Chain, sample_axis
from pamflow.seeding import derive_seed

#: keeps the level axes' generators apart from the per-example seeds
_LEVEL_KEY = 0x1E7E1


class LevelsSpec(PerturbedSpec):
    clip_seconds: float = Field(
        2.0, gt=0, le=60, description="length of each clip (the demo utterances last ~2.5 s)"
    )
    levels: int = Field(
        10, ge=2, le=1000, description="discrete perturbation levels; row i is at level i % levels"
    )
    axis: Literal["shared", "per_level"] = Field(
        "shared",
        description="shared: one axis for every level (ordered quality levels); per_level: "
        "an axis of its own per level (acoustic perturbation groups)",
    )
    params: Literal["shared", "per_row"] = Field(
        "shared",
        description="shared: a level's chain has the same params in every row; per_row: "
        "each row draws them at the level's strength from its own seed",
    )


def level_strengths(spec: LevelsSpec) -> np.ndarray:
    """The strength of each level: evenly spaced over the spec's range, mildest first."""
    return np.linspace(spec.strength.low, spec.strength.high, spec.levels)


def level_axis(spec: LevelsSpec, level: int) -> Axis:
    """The axis of ``level`` (one for all levels when ``axis`` is shared)."""
    key = 0 if spec.axis == "shared" else level + 1
    rng = np.random.default_rng(derive_seed(spec.seed, _LEVEL_KEY, key))
    return sample_axis(rng, spec.families)


class LevelsRecipe(Recipe[LevelsSpec]):
    name = "levels"
    Spec = LevelsSpec
    needs = {"speech": "manifests"}
    audio_columns = ("audio",)
    label_columns = ("level",)
    count_columns = ("level",)
    histogram_columns = {"strength": "strength ρ (0 mildest … 100 strongest)"}
    split_key = "source_id"
    evaluated_on = ("audio",)
    tiny_spec = {"families": ["white_noise"], "levels": 4}
    description = "speech at discrete perturbation levels (quality-based retrieval)"

    def columns(self, spec: LevelsSpec | None) -> list[tuple[str, str, bool]]:
        return [
            ("audio", "audio", False),
            ("level", "int64", False),
            ("strength", "float64", False),
            ("source_id", "string", False),
            ("offset", "float64", False),
            ("chain", "json", False),
        ]

    def make_example(
        self, spec: LevelsSpec, sources: Sources, index: int, rng: np.random.Generator
    ) -> dict[str, Any]:
        sr, n = spec.sample_rate, spec.clip_samples
        level = index % spec.levels
        rho = float(level_strengths(spec)[level])
        pool = long_enough(sources, "speech", spec.clip_seconds)
        source_id = pool[int(rng.integers(len(pool)))]
        clean, offset = cut_clip(sources, source_id, sr, n, rng)
        axis = level_axis(spec, level)
        if spec.params == "per_row":
            axis = Axis(axis.families, axis.weights, int(rng.integers(1 << 62)))
        chain = axis.chain(rho, sources)
        return {
            "audio": chain.apply(clean, sr, sources),
            "level": level,
            "strength": rho,
            "source_id": source_id,
            "offset": offset,
            "chain": chain.to_json(),
            "params": {
                "clip": {"source_id": source_id, "offset_s": offset},
                "chain": chain.to_list(),
                "axis": axis.to_dict(),
            },
        }

    def summary(self, table: Any) -> dict[str, Any]:
        levels = table.column("level").to_pylist()
        return {
            "rows": table.num_rows,
            "per_level": {str(k): levels.count(k) for k in sorted(set(levels))},
            "recordings": len(set(table.column("source_id").to_pylist())),
        }

    def rebuild(self, row: dict[str, Any], spec: LevelsSpec, sources: Sources) -> Any:
        return replay(row, spec, sources)


def replay(row: dict[str, Any], spec: LevelsSpec, sources: Sources | None = None) -> np.ndarray:
    """Rebuild a built row's ``audio`` from its params alone."""
    srcs = spec.sources() if sources is None else sources
    p = row["params"] if isinstance(row["params"], dict) else json.loads(row["params"])
    clip = p["clip"]
    clean = clip_at(srcs, clip["source_id"], spec.sample_rate, spec.clip_samples, clip["offset_s"])
    return Chain.from_list(p["chain"]).apply(clean, spec.sample_rate, srcs)
