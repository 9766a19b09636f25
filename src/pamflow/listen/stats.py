"""Figures of a campaign's answers, shared by the admin page and the export.

- JND: per listener and sequence, the psychometric fit of the sequence's answers
  (:func:`pamflow.datasets.psychometric.fit`: the JND ``mu`` and spread ``sigma``) and the
  listener's *consistency* with it (DPAM 3.2: the share of answers on the side of the
  fitted JND they should be on, "different" above it, "same" below).
- 2AFC: per pool triplet, the votes of the listeners kept (0: A closer, 1: B closer), the
  majority and its share (agreement); per listener, the share of their answers that agree
  with the majority of the *other* listeners on the same triplet.

Only answered questions count; sentinels and teaching examples never do. Excluded
listeners are left out unless ``include_excluded``.
"""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import numpy as np

from pamflow.datasets import psychometric
from pamflow.listen.plan import QUESTION


@dataclasses.dataclass(frozen=True)
class SequenceFit:
    listener: int
    sequence: int
    families: list[str]
    strengths: list[float]
    answers: list[int]
    fit: psychometric.Fit

    @property
    def consistency(self) -> float:
        """Share of answers on their side of the fitted JND."""
        mu = self.fit.mu
        agree = [int(s > mu) == a for s, a in zip(self.strengths, self.answers, strict=True)]
        return float(np.mean(agree)) if agree else float("nan")


def kept(listeners: Iterable[Any], include_excluded: bool) -> set[int]:
    return {int(r.id) for r in listeners if include_excluded or not r.excluded}


def answered_questions(items: Iterable[Any], ids: set[int]) -> list[Any]:
    """Answered, non-sentinel questions of the listeners ``ids``, in order."""
    return [
        r
        for r in items
        if r.phase == QUESTION
        and r.sentinel is None
        and r.answer is not None
        and r.listener_id in ids
    ]


def jnd_fits(items: Iterable[Any], ids: set[int]) -> dict[tuple[int, int], SequenceFit]:
    """``(listener, sequence) -> SequenceFit`` for every sequence with an answer."""
    by: dict[tuple[int, int], list[Any]] = defaultdict(list)
    for r in answered_questions(items, ids):
        by[(int(r.listener_id), int(r.sequence))].append(r)
    out = {}
    for key, rows in sorted(by.items()):
        pairs = [(float(r.strength), int(r.answer)) for r in rows]
        families = json.loads(rows[0].params)["axis"]["families"]
        out[key] = SequenceFit(
            key[0],
            key[1],
            list(families),
            [p[0] for p in pairs],
            [p[1] for p in pairs],
            psychometric.fit(pairs),
        )
    return out


@dataclasses.dataclass(frozen=True)
class Triplet:
    """The votes on one pool triplet: ``(listener, vote)`` pairs, and the first item that
    asked it (its params are the triplet's)."""

    pool_index: int
    votes: list[tuple[int, int]]
    item: Any

    @property
    def b_votes(self) -> int:
        return sum(v for _, v in self.votes)

    def majority(self) -> tuple[int | None, float]:
        """``(label, agreement)``: 0 A closer, 1 B closer, None on a tie."""
        n, b = len(self.votes), self.b_votes
        if 2 * b == n:
            return None, 0.5
        label = int(2 * b > n)
        return label, (b if label else n - b) / n


def triplets(items: Iterable[Any], ids: set[int]) -> dict[int, Triplet]:
    """``pool_index -> Triplet`` of the answered 2AFC questions of listeners ``ids``."""
    votes: dict[int, list[tuple[int, int]]] = defaultdict(list)
    first: dict[int, Any] = {}
    for r in answered_questions(items, ids):
        k = int(json.loads(r.params)["pool_index"])
        votes[k].append((int(r.listener_id), int(r.answer)))
        first.setdefault(k, r)
    return {k: Triplet(k, votes[k], first[k]) for k in sorted(votes)}


def listener_agreement(found: dict[int, Triplet]) -> dict[int, tuple[int, int]]:
    """``listener -> (agreeing, compared)``: their answers against the majority of the
    other listeners on each triplet (ties and triplets only they answered left out)."""
    out: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for t in found.values():
        for lst, vote in t.votes:
            others = [v for who, v in t.votes if who != lst]
            b = sum(others)
            if not others or 2 * b == len(others):
                continue
            out[lst][0] += int(vote == int(2 * b > len(others)))
            out[lst][1] += 1
    return {k: (v[0], v[1]) for k, v in out.items()}


__all__ = [
    "SequenceFit",
    "Triplet",
    "answered_questions",
    "jnd_fits",
    "kept",
    "listener_agreement",
    "triplets",
]
