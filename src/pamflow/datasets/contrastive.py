"""The contrastive recipe (CDPAM section 3.1): positive pairs for the two embeddings.

CDPAM's encoder splits its output into an *acoustic* and a *content* embedding and learns
each with SimCLR's NT-Xent loss on pairs of views (positives) against the other rows of
the batch (negatives). A row holds one pair, ``anchor`` and ``positive``, of one kind:

- ``acoustic``: the SAME perturbation chain, with the SAME params (noise recording and
  offset, impulse response, pop positions, strengths...), applied to two DIFFERENT
  utterances: same acoustic conditions, different content. The second utterance comes
  from another speaker where the sources label speakers (the demo corpus does), else
  from any other recording. ``anchor_chain == positive_chain``.
- ``content``: the SAME clip (same recording, same offset) under two DIFFERENT chains:
  two random axes (:func:`pamflow.perturbations.sample_axis`), each at its own strength
  drawn uniformly in the range. Same content, different acoustic conditions.

Which rows are acoustic is set by ``acoustic_share``: row ``i`` is acoustic when
``frac(u + i * g) < acoustic_share`` with ``g`` the golden ratio's fractional part and
``u`` fixed by the seed, a low-discrepancy sequence, so any run of rows holds the asked
share to within a few rows (not just on average) and row ``i`` still depends on
``(spec, i)`` alone. ``group`` is the id of the row's acoustic condition (acoustic rows)
or content (content rows): every row draws its own, so ``group`` equals ``index`` here;
it is kept so that merged datasets can mark rows that share one.

Avoiding false negatives. NT-Xent treats every other row of a batch as a negative. Two
rows cut from the same recording share content (and often speaker), so a content row and
another row of the same recording would push apart embeddings that should agree. A loader
avoids this with :class:`pamflow.storage.sampler.DisjointBatchSampler`, which builds
batches in which no two rows share a key; with the keys ``{anchor_source_id,
positive_source_id}`` no recording appears in two rows of a batch::

    sampler = DisjointBatchSampler.from_dataset(
        path, key_columns=["anchor_source_id", "positive_source_id"], batch_size=16, seed=0)
    loader = DataLoader(ShardMapDataset(path), batch_sampler=sampler, collate_fn=collate)
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        ...

Acoustic conditions are never shared across rows (each row draws a fresh chain), so no
acoustic negative is a false one. A full batch of ``B`` rows holds about ``1.5 B`` distinct
recordings (an acoustic row names two, a content row one), so the corpus needs several
times that many clips long enough for ``clip_seconds``; with fewer, the sampler makes
shorter batches rather than break the rule. The demo corpus has 20 speech recordings of
2.5 s or more: full batches of 8 at the default clip length, not of 16.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from pydantic import Field

from pamflow.corpus.sources import Sources
from pamflow.datasets.base import Recipe, clip_at, cut_clip, long_enough
from pamflow.datasets.spec import PerturbedSpec, SpecError
from pamflow.perturbations import Chain, sample_axis
from pamflow.seeding import derive_seed

#: fractional part of the golden ratio: the step of the acoustic/content sequence
_GOLDEN = (5**0.5 - 1) / 2
_KIND_KEY = 0xC0DE
#: tries at drawing a second chain that differs from the first (content pairs)
_CHAIN_TRIES = 8


class ContrastiveSpec(PerturbedSpec):
    clip_seconds: float = Field(
        2.0,
        gt=0,
        le=60,
        description=(
            "length of each clip; 2 s by default (not 2.5): a batch of CDPAM's contrastive "
            "stage holds no recording twice, and the demo corpus has 48 utterances of 2 s "
            "or more, only 20 of 2.5 s"
        ),
    )
    acoustic_share: float = Field(
        0.5, ge=0, le=1, description="share of acoustic pairs; the rest are content pairs"
    )
    different_speakers: bool = Field(
        True,
        description="acoustic pairs: take the second utterance from another speaker where "
        "the sources label speakers",
    )


def pair_kind(spec: ContrastiveSpec, index: int) -> str:
    """``"acoustic"`` or ``"content"`` for row ``index`` (see the module docstring)."""
    u = derive_seed(spec.seed, _KIND_KEY) / float(1 << 63)
    return "acoustic" if (u + index * _GOLDEN) % 1.0 < spec.acoustic_share else "content"


def _other_utterance(
    sources: Sources,
    pool: list[str],
    anchor: str,
    rng: np.random.Generator,
    different_speakers: bool,
) -> str:
    others = [s for s in pool if s != anchor]
    speaker = sources.entry(anchor).get("label")
    if different_speakers and speaker is not None:
        elsewhere = [s for s in others if sources.entry(s).get("label") != speaker]
        others = elsewhere or others
    return others[int(rng.integers(len(others)))]


class ContrastiveRecipe(Recipe[ContrastiveSpec]):
    name = "contrastive"
    Spec = ContrastiveSpec
    needs = {"speech": "manifests"}
    audio_columns = ("anchor", "positive")
    label_columns = ("pair_kind",)
    count_columns = ("pair_kind",)
    split_key = "anchor_source_id"
    tiny_spec = {"families": ["white_noise", "eq"]}
    description = "CDPAM contrastive pairs: same acoustics / different content, or the reverse"

    def columns(self, spec: ContrastiveSpec | None) -> list[tuple[str, str, bool]]:
        return [
            ("anchor", "audio", False),
            ("positive", "audio", False),
            ("pair_kind", "string", False),
            ("anchor_source_id", "string", False),
            ("positive_source_id", "string", False),
            ("anchor_chain", "json", False),
            ("positive_chain", "json", False),
            ("group", "int64", False),
        ]

    def check(self, spec: ContrastiveSpec, sources: Sources) -> None:
        if spec.acoustic_share > 0 and len(long_enough(sources, "speech", spec.clip_seconds)) < 2:
            raise SpecError(
                "acoustic_share: acoustic pairs need two different speech recordings; "
                "the sources hold one"
            )

    def make_example(
        self, spec: ContrastiveSpec, sources: Sources, index: int, rng: np.random.Generator
    ) -> dict[str, Any]:
        sr, n = spec.sample_rate, spec.clip_samples
        lo, hi = spec.strength.low, spec.strength.high
        pool = long_enough(sources, "speech", spec.clip_seconds)
        anchor_id = pool[int(rng.integers(len(pool)))]
        clean, offset = cut_clip(sources, anchor_id, sr, n, rng)
        kind = pair_kind(spec, index)
        if kind == "acoustic":
            positive_id = _other_utterance(sources, pool, anchor_id, rng, spec.different_speakers)
            other, other_offset = cut_clip(sources, positive_id, sr, n, rng)
            axis = sample_axis(rng, spec.families)
            chain = other_chain = axis.chain(float(rng.uniform(lo, hi)), sources)
            axes = [axis.to_dict(), axis.to_dict()]
        else:
            positive_id, other, other_offset = anchor_id, clean, offset
            axis = sample_axis(rng, spec.families)
            chain = axis.chain(float(rng.uniform(lo, hi)), sources)
            for _ in range(_CHAIN_TRIES):  # a second, different acoustic condition
                other_axis = sample_axis(rng, spec.families)
                other_chain = other_axis.chain(float(rng.uniform(lo, hi)), sources)
                if other_chain.to_list() != chain.to_list():
                    break
            axes = [axis.to_dict(), other_axis.to_dict()]
        anchor = chain.apply(clean, sr, sources)
        positive = other_chain.apply(other, sr, sources)
        return {
            "anchor": anchor,
            "positive": positive,
            "pair_kind": kind,
            "anchor_source_id": anchor_id,
            "positive_source_id": positive_id,
            "anchor_chain": chain.to_json(),
            "positive_chain": other_chain.to_json(),
            "group": index,
            "params": {
                "anchor_clip": {"source_id": anchor_id, "offset_s": offset},
                "positive_clip": {"source_id": positive_id, "offset_s": other_offset},
                "anchor_chain": chain.to_list(),
                "positive_chain": other_chain.to_list(),
                "axes": axes,
            },
        }

    def summary(self, table: Any) -> dict[str, Any]:
        kinds = table.column("pair_kind").to_pylist()
        ids = (
            table.column("anchor_source_id").to_pylist()
            + table.column("positive_source_id").to_pylist()
        )
        out: dict[str, Any] = {
            "rows": table.num_rows,
            "acoustic": kinds.count("acoustic"),
            "content": kinds.count("content"),
            "recordings": len(set(ids)),
        }
        if kinds:
            out["share_acoustic"] = kinds.count("acoustic") / len(kinds)
        return out

    def rebuild(self, row: dict[str, Any], spec: ContrastiveSpec, sources: Sources) -> Any:
        return replay(row, spec, sources)


def replay(
    row: dict[str, Any], spec: ContrastiveSpec, sources: Sources | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Rebuild ``(anchor, positive)`` of a built row from its params alone."""
    srcs = spec.sources() if sources is None else sources
    p = row["params"] if isinstance(row["params"], dict) else json.loads(row["params"])
    sr, n = spec.sample_rate, spec.clip_samples
    out = []
    for clip, chain in (("anchor_clip", "anchor_chain"), ("positive_clip", "positive_chain")):
        clean = clip_at(srcs, p[clip]["source_id"], sr, n, p[clip]["offset_s"])
        out.append(Chain.from_list(p[chain]).apply(clean, sr, srcs))
    return out[0], out[1]
