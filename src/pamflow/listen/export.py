"""Answers become data: a campaign's answers as a ``jnd`` or ``triplet`` dataset.

``export_campaign(campaign, out)`` reads the database and writes ``out`` through the
storage contract, with :func:`pamflow.datasets.importers.write_rows` (the writer of every
imported dataset): shards, then ``dataset.json`` whose spec records the campaign's plan.
Rows hold the audio each listener heard, rendered again from the item's params (the same
bits, level matching included), ``label_source = "human"`` and pseudonymous listener ids.

- ``jnd``: one row per answered question (sentinels and teaching examples left out):
  ``label`` the answer (1 different), ``listener``, ``strength``, ``axis``, ``sequence``
  (numbered across the export), ``query`` (its place in the sequence); ``votes`` (1) and
  ``agreement`` (the listener's consistency with their own fitted JND on that sequence,
  DPAM 3.2); ``excluded`` (true only with ``include_excluded``).
- ``triplet``: one row per pool triplet with a vote: ``label`` the majority (0 A, 1 B;
  null on a tie), ``agreement`` its share, ``votes``, ``votes_b`` and ``listeners``.

``params`` holds the item's params (the recipe's keys: its ``replay`` rebuilds the audio),
the level-matching gains (dB) and the answer's details; ``seed`` is the item's. Listeners
flagged by an attention check or a sentinel are left out unless ``include_excluded``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pamflow import storage
from pamflow.corpus.sources import Sources
from pamflow.datasets.importers import write_rows
from pamflow.listen import stats
from pamflow.listen.campaign import Campaign
from pamflow.listen.db import Database, run_async, shown_url
from pamflow.listen.plan import Planner
from pamflow.listen.render import Renderer
from pamflow.listen.session import all_rows, pseudonym
from pamflow.seeding import example_seed

JND_EXTRA = (
    storage.Column("votes", "int64", True),
    storage.Column("agreement", "float64", True),
    storage.Column("excluded", "bool", True),
)
TRIPLET_EXTRA = (
    storage.Column("votes_b", "int64", True),
    storage.Column("listeners", "list<string>", True),
)


class ExportError(ValueError):
    """An export that cannot be written (the output folder is not new or empty)."""


async def _read(campaign: Campaign) -> tuple[list[Any], list[Any]]:
    db = Database(str(campaign.database))
    try:
        return await all_rows(db, campaign.name)
    finally:
        await db.dispose()


def export_campaign(
    campaign: Campaign,
    out: str,
    *,
    include_excluded: bool = False,
    sources: Sources | None = None,
    shard_size: int = 500,
) -> dict[str, Any]:
    """Write ``out`` (see the module docstring); returns a summary (recipe, path, rows,
    listeners, excluded listeners, answers)."""
    path = Path(out)
    if "://" not in out and path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise ExportError(f"{out}: not a new or empty folder; export into a new one")
    listeners, items = run_async(lambda: _read(campaign))
    srcs = sources if sources is not None else campaign.recipe_spec().sources()
    renderer = Renderer(campaign, srcs)
    ids = stats.kept(listeners, include_excluded)
    excluded = {int(r.id) for r in listeners if r.excluded}
    extra: tuple[storage.Column, ...]
    if campaign.kind == "jnd":
        rows = _jnd_rows(campaign, renderer, items, ids, excluded)
        extra = JND_EXTRA
    else:
        rows = _triplet_rows(campaign, renderer, Planner(campaign, srcs), items, ids)
        extra = TRIPLET_EXTRA
    spec = {
        "listening_campaign": campaign.name,
        "database": shown_url(str(campaign.database)),
        "plan_digest": campaign.plan_digest(),
        "include_excluded": include_excluded,
        **campaign.plan(),
    }
    write_rows(
        out,
        campaign.recipe,
        rows,
        sample_rate=campaign.sample_rate,
        spec=spec,
        shard_size=shard_size,
        extra_columns=extra,
    )
    answers = stats.answered_questions(items, ids)
    return {
        "recipe": campaign.recipe,
        "path": out,
        "rows": len(rows),
        "listeners": len(listeners),
        "excluded_listeners": len(excluded),
        "listeners_exported": len({int(r.listener_id) for r in answers}),
        "answers": len(answers),
    }


def _jnd_rows(
    c: Campaign, renderer: Renderer, items: list[Any], ids: set[int], excluded: set[int]
) -> list[dict[str, Any]]:
    fits = stats.jnd_fits(items, ids)
    numbers: dict[tuple[int, int], int] = {}
    rows: list[dict[str, Any]] = []
    for r in stats.answered_questions(items, ids):
        params = json.loads(r.params)
        audio, gains = renderer.render(params)
        key = (int(r.listener_id), int(r.sequence))
        seq = numbers.setdefault(key, len(numbers))
        name = pseudonym(int(r.listener_id))
        rows.append(
            {
                "index": len(rows),
                "example_id": f"{c.name}-{name}-{int(r.position):03d}",
                "seed": int(r.seed),
                "params": json.dumps({**params, **_details(c, r, gains)}, sort_keys=True),
                "reference": audio["reference"],
                "perturbed": audio["test"],
                "strength": float(r.strength),
                "axis": list(params["axis"]["families"]),
                "label": int(r.answer),
                "label_source": "human",
                "listener": name,
                "distance": None,
                "source_id": params["clip"]["source_id"],
                "sequence": seq,
                "query": int(r.query),
                "votes": 1,
                "agreement": fits[key].consistency,
                "excluded": int(r.listener_id) in excluded,
            }
        )
    return rows


def _details(c: Campaign, r: Any, gains: dict[str, float]) -> dict[str, Any]:
    return {
        "campaign": c.name,
        "level": {"target_lufs": c.loudness_lufs, "gain_db": gains},
        "response": {
            "answered_at": r.answered_at.isoformat() if r.answered_at else None,
            "response_ms": r.response_ms,
            "plays": r.plays,
        },
    }


def _triplet_rows(
    c: Campaign, renderer: Renderer, planner: Planner, items: list[Any], ids: set[int]
) -> list[dict[str, Any]]:
    found = stats.triplets(items, ids)
    described = _dataset_columns(c, found) if c.afc.dataset else {}
    rows: list[dict[str, Any]] = []
    for k, t in found.items():
        params = json.loads(t.item.params)
        audio, gains = renderer.render(params)
        if c.afc.dataset:
            eid = str(params["example_id"])
            base, seed, example = described[eid], 0, eid
        else:
            base = planner.live_row(k)
            seed, example = example_seed(c.seed, k), f"{c.name}-t{k:05d}"
        label, agreement = t.majority()
        names = [pseudonym(who) for who, _ in t.votes]
        details = {
            "campaign": c.name,
            "pool_index": k,
            "level": {"target_lufs": c.loudness_lufs, "gain_db": gains},
            "votes": [{"listener": n, "vote": v} for n, (_, v) in zip(names, t.votes, strict=True)],
        }
        rows.append(
            {
                "index": len(rows),
                "example_id": example,
                "seed": seed,
                "params": json.dumps({**params, **details}, sort_keys=True),
                "reference": audio["reference"],
                "a": audio["a"],
                "b": audio["b"],
                "strength_a": base.get("strength_a"),
                "strength_b": base.get("strength_b"),
                "axis_a": list(base.get("axis_a") or []),
                "axis_b": list(base.get("axis_b") or []),
                "label": label,
                "label_source": "human",
                "agreement": agreement,
                "votes": len(t.votes),
                "distance_a": None,
                "distance_b": None,
                "source_id": base.get("source_id") or example,
                "mode": base.get("mode"),
                "votes_b": t.b_votes,
                "listeners": names,
            }
        )
    return rows


def _dataset_columns(c: Campaign, found: dict[int, stats.Triplet]) -> dict[str, dict[str, Any]]:
    """The served dataset's descriptive columns of the triplets that got votes."""
    wanted = {str(json.loads(t.item.params)["example_id"]) for t in found.values()}
    cols = ["example_id", "strength_a", "strength_b", "axis_a", "axis_b", "source_id", "mode"]
    table = storage.Dataset.open(str(c.afc.dataset)).to_table(cols)
    return {r["example_id"]: r for r in table.to_pylist() if r["example_id"] in wanted}


__all__ = ["ExportError", "export_campaign"]
