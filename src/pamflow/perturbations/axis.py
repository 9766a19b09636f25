"""Axes and chains: combined perturbations, as in DPAM section 3.1.

An :class:`Axis` is a direction in perturbation space: at most one family per category,
in a random order, each with a weight in (0, 1] (the largest is 1). At strength ``rho``
the family ``k`` runs at ``rho * weight_k``. Its params are drawn from a generator seeded
by ``(axis.seed, k)`` alone, so moving along the axis changes only the strengths: the
noise recording, its offset, the pop positions... stay put, as they do when a listener
is asked about the same reference and direction at several strengths.

A :class:`Chain` is the concrete result: a tuple of :class:`Step` (family, strength,
params) that replays exactly, and serialises to JSON for the ``params`` column.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from pamflow.perturbations.base import (
    AXIS_CATEGORIES,
    PerturbationError,
    check_strength,
    get,
)
from pamflow.seeding import draw_seed

if TYPE_CHECKING:  # pragma: no cover
    from pamflow.corpus.sources import Sources

#: the DPAM Table 1 families, by category: what an axis draws from unless told otherwise
DEFAULT_AXIS_FAMILIES: dict[str, tuple[str, ...]] = {
    "additive": ("white_noise", "pink_noise", "applause_noise", "water_drop_noise", "room_noise"),
    "reverb": ("reverb_drr", "reverb_rt60"),
    "compression": ("mp3", "mulaw"),
    "eq": ("eq",),
    "misc": ("pops", "griffin_lim", "dropouts"),
}


def default_axis_families() -> list[str]:
    return [f for fams in DEFAULT_AXIS_FAMILIES.values() for f in fams]


@dataclass(frozen=True)
class Step:
    family: str
    strength: float
    params: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, "strength": self.strength, "params": dict(self.params)}


@dataclass(frozen=True)
class Chain:
    """Perturbations applied one after another; replayable from its JSON."""

    steps: tuple[Step, ...]

    @property
    def families(self) -> list[str]:
        return [s.family for s in self.steps]

    def apply(
        self, audio: np.ndarray, sample_rate: int, sources: Sources | None = None
    ) -> np.ndarray:
        y = np.asarray(audio, dtype=np.float32)
        for step in self.steps:
            fam = get(step.family)
            y = fam.apply(y, sample_rate, fam.params_from_dict(step.params), sources)
        return y

    def to_list(self) -> list[dict[str, Any]]:
        return [s.to_dict() for s in self.steps]

    def to_json(self) -> str:
        return json.dumps(self.to_list(), sort_keys=True)

    @classmethod
    def from_list(cls, steps: list[dict[str, Any]]) -> Chain:
        out = []
        for s in steps:
            fam = get(s["family"])
            fam.params_from_dict(s["params"])  # validates the fields now, not at apply time
            out.append(Step(s["family"], float(s["strength"]), dict(s["params"])))
        return cls(tuple(out))

    @classmethod
    def from_json(cls, text: str) -> Chain:
        return cls.from_list(json.loads(text))


@dataclass(frozen=True)
class Axis:
    """A direction: ``families`` in application order, their ``weights``, and a ``seed``."""

    families: tuple[str, ...]
    weights: tuple[float, ...]
    seed: int

    def __post_init__(self) -> None:
        if len(self.families) != len(self.weights) or not self.families:
            raise PerturbationError("an axis needs one weight per family and at least one family")
        cats = [get(f).category for f in self.families]
        if len(set(cats)) != len(cats):
            raise PerturbationError(f"an axis holds at most one family per category, got {cats}")
        if any(not (0.0 < w <= 1.0) for w in self.weights):
            raise PerturbationError(f"axis weights must lie in (0, 1], got {self.weights}")

    def strengths(self, rho: float) -> tuple[float, ...]:
        r = check_strength(rho)
        return tuple(float(r * w) for w in self.weights)

    def chain(self, rho: float, sources: Sources | None = None) -> Chain:
        steps = []
        for k, (name, s) in enumerate(zip(self.families, self.strengths(rho), strict=True)):
            rng = np.random.default_rng([self.seed, k])
            params = get(name).sample(rng, s, sources)
            steps.append(Step(name, s, params.to_dict()))
        return Chain(tuple(steps))

    def apply(
        self, audio: np.ndarray, sample_rate: int, rho: float, sources: Sources | None = None
    ) -> np.ndarray:
        return self.chain(rho, sources).apply(audio, sample_rate, sources)

    def to_dict(self) -> dict[str, Any]:
        return {"families": list(self.families), "weights": list(self.weights), "seed": self.seed}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Axis:
        return cls(tuple(d["families"]), tuple(float(w) for w in d["weights"]), int(d["seed"]))


def axis_cost(axis: Axis, rho: float) -> float:
    """What applying ``axis`` at ``rho`` costs, in plain rows (:meth:`Family.cost`)."""
    return sum(get(f).cost(s) for f, s in zip(axis.families, axis.strengths(rho), strict=True))


def sample_axis(
    rng: np.random.Generator,
    families: list[str] | None = None,
    *,
    p_category: float = 0.5,
    min_weight: float = 0.25,
) -> Axis:
    """Draw an axis as DPAM does: each category present among ``families`` is switched on
    with probability ``p_category`` (at least one), one family is drawn per category, the
    order is shuffled, and each gets a weight in [min_weight, 1] (the largest set to 1)."""
    pool = default_axis_families() if families is None else list(families)
    if not pool:
        raise PerturbationError("sample_axis: no families to draw from")
    by_cat: dict[str, list[str]] = {}
    for name in pool:
        by_cat.setdefault(get(name).category, []).append(name)
    cats = [c for c in (*AXIS_CATEGORIES, "augment") if c in by_cat]
    on = [c for c in cats if rng.random() < p_category]
    if not on:
        on = [cats[int(rng.integers(len(cats)))]]
    chosen = [by_cat[c][int(rng.integers(len(by_cat[c])))] for c in on]
    order = rng.permutation(len(chosen))
    chosen = [chosen[i] for i in order]
    w = rng.uniform(min_weight, 1.0, size=len(chosen))
    w = w / w.max()
    return Axis(tuple(chosen), tuple(float(v) for v in w), draw_seed(rng))
