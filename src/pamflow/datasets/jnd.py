"""The JND recipe (DPAM section 2.1 and 3.1): reference / perturbed pairs with
same/different labels.

Rows come in *sequences* of ``queries_per_sequence`` questions, as in DPAM's listening
test (10 questions per reference and direction): one speech clip, mildly degraded at
random, is the reference; one random axis (at most one family per category, random order)
is the direction; each question perturbs the reference along the axis at a strength ρ.

Labels (``labels`` in the spec):

- ``simulated``: a simulated listener drawn from a panel answers from the audio pair
  itself (:mod:`pamflow.datasets.listener`), and the active-learning sampler
  (:mod:`pamflow.datasets.psychometric`) picks each next ρ at the maximum-likelihood JND of
  the answers so far, so the pairs concentrate around the JND and the labels balance.
- ``none``: ρ drawn uniformly in the strength range; ``label`` is null, for a human test.

``strength_sampling`` picks the strengths: ``staircase`` (the default with simulated labels;
needs them) or ``uniform`` (ρ uniform in the strength range; the default without labels).
Uniform strengths with simulated labels make a test set that covers the whole axis rather
than its JND region: most of its pairs are clearly the same or clearly different, so its
labels are far more predictable than those of a staircase set, whose pairs sit where the
listener hesitates by design.

Row ``i`` belongs to sequence ``i // queries_per_sequence``, whose generator is seeded by
``(spec.seed, sequence)`` only: the rows do not depend on workers or shard size.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from pamflow.corpus.sources import Sources
from pamflow.datasets.base import Recipe, clip_at, cut_clip, long_enough, made_together
from pamflow.datasets.listener import perceptual_distance
from pamflow.datasets.psychometric import Prior, Staircase
from pamflow.datasets.spec import ListenerSpec
from pamflow.perturbations import Axis, Chain, axis_cost, sample_axis
from pamflow.seeding import derive_seed, example_seed

#: keys that keep the sequence and panel generators apart from the per-example seeds
_SEQUENCE_KEY = 0x5E0
_PANEL_KEY = 0xA7E1


class JndSpec(ListenerSpec):
    queries_per_sequence: int = Field(
        10,
        ge=1,
        le=1000,
        description="questions per sequence: one reference, one axis, this many strengths "
        "(DPAM's test asked 10)",
    )
    start_strength: float | None = Field(
        None, ge=0, le=100, description="first question of a sequence; default: random in the range"
    )
    prior_sigma: float = Field(
        15.0,
        gt=0,
        le=100,
        description="prior spread of the psychometric function (strength units): "
        "the step size of the first questions",
    )
    strength_sampling: Literal["staircase", "uniform"] | None = Field(
        None,
        description="how questions pick their strength: 'staircase' (active learning, the "
        "default with simulated labels) or 'uniform' (the default without labels)",
    )

    @model_validator(mode="after")
    def _check_sampling(self) -> JndSpec:
        if self.strength_sampling == "staircase" and self.labels != "simulated":
            raise ValueError(
                "strength_sampling 'staircase' needs labels: simulated (it picks each "
                "strength from the answers so far)"
            )
        return self

    @property
    def staircase(self) -> bool:
        """Whether the strengths come from the active-learning staircase."""
        default = "staircase" if self.labels == "simulated" else "uniform"
        return (self.strength_sampling or default) == "staircase"


class JndRecipe(Recipe[JndSpec]):
    name = "jnd"
    Spec = JndSpec
    needs = {"speech": "manifests"}
    audio_columns = ("reference", "perturbed")
    label_columns = ("label",)
    count_columns = ("label", "label_source")
    histogram_columns = {
        "strength": "strength ρ (0 mildest … 100 strongest)",
        "distance": "perceptual distance (dB)",
    }
    split_key = "source_id"
    tiny_spec = {"families": ["white_noise", "eq"], "queries_per_sequence": 2}
    evaluated_on = ("reference", "perturbed")
    description = "DPAM just-noticeable-difference pairs: reference, perturbed, same/different"

    def columns(self, spec: JndSpec) -> list[tuple[str, str, bool]]:
        return [
            ("reference", "audio", False),
            ("perturbed", "audio", False),
            ("strength", "float64", True),  # null for imported pairs of unknown strength
            ("axis", "list<string>", False),
            ("label", "int64", True),
            ("label_source", "string", True),
            ("listener", "string", True),
            ("distance", "float64", True),
            ("source_id", "string", False),
            ("sequence", "int64", False),
            ("query", "int64", False),
        ]

    def group_rows(self, spec: JndSpec) -> int:
        return spec.queries_per_sequence

    def generate(
        self, spec: JndSpec, sources: Sources, start: int, stop: int
    ) -> Iterator[dict[str, Any]]:
        q = spec.queries_per_sequence
        stop = min(stop, spec.num_examples)
        if stop <= start:
            return
        seqs = range(start // q, (stop - 1) // q + 1)
        # each sequence's questions follow its answers: batched, sequences run in lockstep
        tasks = [
            partial(
                self.redrawn,
                spec,
                sources,
                partial(self.sequence, spec, seq=seq, count=min(q, spec.num_examples - seq * q)),
            )
            for seq in seqs
        ]
        for seq, made in zip(seqs, made_together(spec, tasks), strict=True):
            for k, row in enumerate(made):
                i = seq * q + k
                if start <= i < stop:
                    yield self.finish(spec, i, row)

    def _head(
        self, spec: JndSpec, sources: Sources, seq: int, cut: bool = True
    ) -> tuple[np.random.Generator, str, np.ndarray | None, float, Axis, float, Axis]:
        """Sequence ``seq``'s first draws: ``(rng, source_id, clean clip, offset, reference
        axis, reference strength, axis)``. ``cut=False`` (cost estimates) loads no audio:
        it makes the one draw that cutting the clip makes, from another range, which
        leaves the generator where cutting does (but once in ~1e4 draws)."""
        rng = np.random.default_rng(derive_seed(spec.seed, _SEQUENCE_KEY, seq))
        speech = long_enough(sources, "speech", spec.clip_seconds)
        source_id = speech[int(rng.integers(len(speech)))]
        clean, offset = None, 0.0
        if cut:
            clean, offset = cut_clip(sources, source_id, spec.sample_rate, spec.clip_samples, rng)
        else:
            rng.integers(0, 2)
        ref_axis = sample_axis(rng, spec.families)
        ref_rho = float(rng.uniform(0.0, spec.reference_strength))
        return rng, source_id, clean, offset, ref_axis, ref_rho, sample_axis(rng, spec.families)

    def group_costs(self, spec: JndSpec, sources: Sources) -> list[float]:
        """Each sequence's estimated cost, in plain rows: its questions, each weighted by
        what its axis costs on average over the strength range (Griffin-Lim's iterations
        dominate), and its reference's chain."""
        q = spec.queries_per_sequence
        lo, hi = spec.strength.low, spec.strength.high
        out = []
        for seq in range(-(-spec.num_examples // q)):
            _, _, _, _, ref_axis, ref_rho, axis = self._head(spec, sources, seq, cut=False)
            count = min(q, spec.num_examples - seq * q)
            per_row = np.mean([axis_cost(axis, r) for r in np.linspace(lo, hi, 5)])
            out.append(float(count * (1.0 + per_row) + axis_cost(ref_axis, ref_rho)))
        return out

    def sequence(
        self, spec: JndSpec, sources: Sources, seq: int, count: int
    ) -> list[dict[str, Any]]:
        """The ``count`` questions of sequence ``seq``."""
        rng, source_id, clean, offset, ref_axis, ref_rho, axis = self._head(spec, sources, seq)
        assert clean is not None
        sr = spec.sample_rate
        ref_chain = ref_axis.chain(ref_rho, sources)
        reference = ref_chain.apply(clean, sr, sources)
        lo, hi = spec.strength.low, spec.strength.high
        start = (
            spec.start_strength if spec.start_strength is not None else float(rng.uniform(lo, hi))
        )
        simulated = spec.labels == "simulated"
        staircase = spec.staircase
        listener_idx = int(rng.integers(spec.listeners))
        listener = spec.panel(_PANEL_KEY)[listener_idx] if simulated else None
        start = float(np.clip(start, lo, hi))
        stairs = Staircase(
            start=start, rng=rng, prior=Prior(mu=start, mu_sd=50.0, sigma=spec.prior_sigma)
        )
        base = {
            "clip": {"source_id": source_id, "offset_s": offset},
            "reference_chain": ref_chain.to_list(),
            "axis": axis.to_dict(),
        }
        rows = []
        for k in range(count):
            rho = float(np.clip(stairs.next(), lo, hi)) if staircase else float(rng.uniform(lo, hi))
            chain = axis.chain(rho, sources)
            perturbed = chain.apply(reference, sr, sources)
            label = distance = None
            if listener is not None:
                distance = perceptual_distance(
                    reference, perturbed, sr, pool_power=spec.listener_pool_power
                )
                label = int(rng.random() < listener.p_different(distance))
                if staircase:
                    stairs.record(rho, label)
            rows.append(
                {
                    "reference": reference,
                    "perturbed": perturbed,
                    "strength": rho,
                    "axis": list(axis.families),
                    "label": label,
                    "label_source": "simulated" if simulated else None,
                    "listener": f"sim-{listener_idx:03d}" if simulated else None,
                    "distance": distance,
                    "source_id": source_id,
                    "sequence": seq,
                    "query": k,
                    "seed": example_seed(spec.seed, seq * spec.queries_per_sequence + k),
                    "params": {
                        **base,
                        "chain": chain.to_list(),
                        **({"listener": listener.to_dict()} if listener is not None else {}),
                    },
                }
            )
        return rows

    def summary(self, table: Any) -> dict[str, Any]:
        labels = [v for v in table.column("label").to_pylist() if v is not None]
        strengths = np.asarray(
            [v for v in table.column("strength").to_pylist() if v is not None], dtype=float
        )
        hist, edges = np.histogram(strengths, bins=10, range=(0, 100))
        out: dict[str, Any] = {
            "rows": table.num_rows,
            "labelled": len(labels),
            "different": int(sum(labels)),
            "same": len(labels) - int(sum(labels)),
            "strength_histogram": {
                f"{edges[i]:.0f}-{edges[i + 1]:.0f}": int(h) for i, h in enumerate(hist)
            },
        }
        if labels:
            out["share_different"] = float(np.mean(labels))
        return out

    def rebuild(self, row: dict[str, Any], spec: JndSpec, sources: Sources) -> Any:
        return replay(row, spec, sources)


def replay(
    row: dict[str, Any], spec: JndSpec, sources: Sources | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Rebuild ``(reference, perturbed)`` of a row from its params alone."""
    import json

    srcs = spec.sources() if sources is None else sources
    p = row["params"] if isinstance(row["params"], dict) else json.loads(row["params"])
    clean = clip_at(
        srcs, p["clip"]["source_id"], spec.sample_rate, spec.clip_samples, p["clip"]["offset_s"]
    )
    reference = Chain.from_list(p["reference_chain"]).apply(clean, spec.sample_rate, srcs)
    perturbed = Chain.from_list(p["chain"]).apply(reference, spec.sample_rate, srcs)
    Axis.from_dict(p["axis"])  # validates the recorded axis
    return reference, perturbed
