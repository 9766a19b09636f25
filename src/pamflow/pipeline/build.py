"""Building a dataset: plan shards, write each one, finish with ``dataset.json``.

This is the library under the Prefect build flow (:mod:`pamflow.flows.build`), which maps
:func:`build_shard` over a Dask cluster; :func:`build_local` runs the same steps in one
plain process (no Prefect, no Dask), for small builds, debugging and as the baseline of
the build benchmark. Tasks pass a recipe name, the spec as a dict and paths: never audio.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import fsspec
from threadpoolctl import threadpool_limits

from pamflow import storage
from pamflow.corpus.sources import Sources, default_sources
from pamflow.datasets.base import get_recipe
from pamflow.datasets.spec import BaseSpec, SpecError
from pamflow.storage.files import create_exclusive, foreign_entries

BUILD_FILE = "build.json"
log = logging.getLogger(__name__)
_warned: set[tuple[Any, str]] = set()
#: spec audio_format -> storage format (FLAC is 24-bit; WAV is float32)
AUDIO_FORMATS = {"flac": "FLAC", "wav": "WAV"}


@dataclass(frozen=True)
class ShardPlan:
    index: int
    start: int
    stop: int


def plan_shards(spec: BaseSpec) -> list[ShardPlan]:
    n, size = spec.num_examples, spec.shard_size
    return [ShardPlan(i, s, min(s + size, n)) for i, s in enumerate(range(0, n, size))]


@dataclass(frozen=True)
class Piece:
    """A work unit: rows ``start .. stop-1`` of shard ``shard``, piece ``part`` of
    ``parts`` (a whole shard when ``parts`` is 1)."""

    shard: int
    part: int
    parts: int
    start: int
    stop: int
    cost: float = 0.0  # estimated, in plain rows (0: not estimated)


def plan_pieces(
    recipe_name: str, spec: BaseSpec, units: int = 0, costs: list[float] | None = None
) -> list[Piece]:
    """The work units of a build of about ``units`` units: shards of more rows than
    ``num_examples / units`` are split into pieces of about that many rows, cut between
    the recipe's groups (a JND sequence is made whole), so that workers share the rows of a
    shard that costs more than the others. With ``costs`` (each group's, from
    :func:`group_costs`) shards are cut by cost instead: a piece holds about ``1 / units``
    of the build's cost, a shard that costs less stays whole. ``units`` 0: one unit per
    shard. Rows and shard files are the same however a build is cut
    (:mod:`pamflow.storage.pieces`)."""
    shards = plan_shards(spec)
    group = max(1, get_recipe(recipe_name).group_rows(spec))
    if costs and units > 0:
        return _cut_by_cost(shards, group, costs, sum(costs) / units)
    if units <= len(shards):
        return [Piece(s.index, 0, 1, s.start, s.stop) for s in shards]
    size = -(-max(group, -(-spec.num_examples // units)) // group) * group  # whole groups
    out = []
    for s in shards:
        cuts = [s.start, *range((s.start // size + 1) * size, s.stop, size), s.stop]
        spans = list(zip(cuts, cuts[1:], strict=False))
        out += [Piece(s.index, k, len(spans), a, b) for k, (a, b) in enumerate(spans)]
    return out


def _cut_by_cost(
    shards: list[ShardPlan], group: int, costs: list[float], target: float
) -> list[Piece]:
    """Each shard cut between groups into pieces of about ``target`` cost (a group's cost
    shared by the rows of it a shard holds); a group costing more is a piece of its own."""
    out = []
    for s in shards:
        cuts, acc = [s.start], 0.0
        for g in range(s.start // group, -(-s.stop // group)):
            a, b = max(s.start, g * group), min(s.stop, (g + 1) * group)
            c = _span_cost(a, b, group, costs)
            if acc > 0 and acc + c > target:
                cuts.append(a)
                acc = 0.0
            acc += c
        spans = list(zip(cuts, [*cuts[1:], s.stop], strict=True))
        out += [
            Piece(s.index, k, len(spans), a, b, _span_cost(a, b, group, costs))
            for k, (a, b) in enumerate(spans)
        ]
    return out


def _span_cost(start: int, stop: int, group: int, costs: list[float]) -> float:
    return sum(
        costs[g] * (min(stop, (g + 1) * group) - max(start, g * group)) / group
        for g in range(start // group, -(-stop // group))
    )


def group_costs(recipe_name: str, spec: BaseSpec, out: str) -> list[float] | None:
    """The recipe's estimate of what each of its groups costs (:meth:`Recipe.group_costs`),
    from the spec's sources as the build at ``out`` sees them; None where it has none or
    the sources cannot be read here (the units are then cut by rows)."""
    try:
        return get_recipe(recipe_name).group_costs(spec, _build_sources(spec, out)[0])
    except Exception as e:  # an estimate only: the build itself reports real errors
        log.info("no cost estimate for %s (%s): work units cut by rows", recipe_name, e)
        return None


def spec_digest(recipe: str, spec: BaseSpec) -> str:
    text = json.dumps({"recipe": recipe, "spec": spec.model_dump(mode="json")}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


@lru_cache(maxsize=4)
def _sources(manifests: tuple[str, ...], claim: str) -> Sources:
    return Sources.from_tables(*manifests) if manifests else default_sources()


def sources_for(spec: BaseSpec, quarantined: tuple[str, ...] = (), claim: str = "") -> Sources:
    """The spec's sources less the ``quarantined`` recordings, loaded once per process for
    the build ``claim`` (a build's shards share them and their loaded audio; another build,
    even of the same manifests, reads and checks the recordings again)."""
    return _usable(tuple(spec.manifests), tuple(sorted(quarantined)), claim)


@lru_cache(maxsize=4)
def _usable(manifests: tuple[str, ...], quarantined: tuple[str, ...], claim: str) -> Sources:
    base = _sources(manifests, claim)
    return base.without(quarantined) if quarantined else base


def _read_marker(out: str) -> dict[str, Any]:
    fs, _, marker = _marker(out)
    if not fs.exists(marker):
        return {}
    with fs.open(marker, "r") as f:
        return dict(json.load(f))


def quarantine_of(out: str) -> list[dict[str, str]]:
    """The recordings :func:`prepare` set aside for the build at ``out`` (``{id, path,
    reason}``; none when it has no build marker)."""
    return list(_read_marker(out).get("quarantine", []))


def _marker(out: str) -> tuple[fsspec.AbstractFileSystem, str, str]:
    """``(filesystem, folder, build marker path)`` of the output ``out``."""
    fs, root = fsspec.core.url_to_fs(out)
    return fs, root, f"{root.rstrip('/')}/{BUILD_FILE}"


def is_prepared(out: str) -> bool:
    """Whether :func:`prepare` has claimed ``out`` (as seen from this process)."""
    fs, _, marker = _marker(out)
    return bool(fs.exists(marker))


def prepare(recipe_name: str, spec: BaseSpec | dict[str, Any], out: str) -> BaseSpec:
    """Validate everything before any work starts, and claim ``out`` for this spec.

    The claim is the build marker (``build.json``), created exclusively: of two builds
    started together into one folder exactly one writes it (on local disks; see
    :func:`pamflow.storage.files.create_exclusive`). A folder claimed for the same spec is
    resumed (complete shards are skipped; two builds of one spec write identical shards);
    one claimed for *another* spec is refused, so two datasets never mix. A folder that is
    not empty and that pamflow did not claim (the user's own files) is refused too:
    pamflow writes and deletes only in folders it owns.
    """
    recipe = get_recipe(recipe_name)
    spec = recipe.parse(spec) if isinstance(spec, dict) else spec
    sources = recipe.validate(spec)
    fs, root, marker = _marker(out)
    digest = spec_digest(recipe_name, spec)
    dumped = spec.model_dump(mode="json")
    if not fs.exists(marker):
        if fs.exists(root) and foreign_entries(fs, root):
            raise SpecError(
                f"{out} is not empty and holds no pamflow build ({BUILD_FILE}): pamflow writes "
                "only into new or empty folders; use a new output folder"
            )
        # recordings whose file is gone or changed size since indexing are set aside for
        # the whole build (every worker reads the list from the marker, so rows stay the
        # same whatever the worker count); the rest must still serve the spec
        quarantine = sources.check_files()
        if quarantine:
            usable = sources.without(q["id"] for q in quarantine)
            recipe.check_served(spec, usable)
        text = json.dumps(
            {
                "recipe": recipe_name,
                "digest": digest,
                "spec": dumped,
                "quarantine": quarantine,
                "claim": uuid.uuid4().hex,  # this build, as opposed to another of one spec
            },
            indent=2,
            sort_keys=True,
        )
        fs.makedirs(root, exist_ok=True)
        if create_exclusive(fs, marker, text.encode()):
            for q in quarantine:
                log.info("quarantined %s (%s): %s", q["id"], q["path"], q["reason"])
            return spec
    with fs.open(marker, "r") as f:  # claimed, by an earlier build or one racing this one
        old = json.load(f)
    if old.get("digest") != digest:
        old_spec = old.get("spec", {})
        changed = sorted(k for k in set(old_spec) | set(dumped) if old_spec.get(k) != dumped.get(k))
        raise SpecError(
            f"{out} holds a build of another spec (recipe {old.get('recipe')!r}; fields that "
            f"differ: {', '.join(changed) or 'recipe'}); use a new output folder"
        )
    return spec


def warm(recipe_name: str, spec_data: dict[str, Any], out: str) -> float:
    """Load in this process what :func:`build_shard` needs first (the recipe's code, the
    spec's sources as the build at ``out`` sees them): a Dask worker calls it before its
    first shard. Returns the seconds it took."""
    t0 = time.perf_counter()
    _build_sources(get_recipe(recipe_name).parse(spec_data), out)
    return time.perf_counter() - t0


def _build_sources(spec: BaseSpec, out: str) -> tuple[Sources, dict[str, Any]]:
    """The spec's sources as the build at ``out`` sees them (less what it quarantined, cached
    per build claim), and the build's marker."""
    marker = _read_marker(out)
    quarantine = tuple(q["id"] for q in marker.get("quarantine", []))
    return sources_for(spec, quarantine, str(marker.get("claim", ""))), marker


def build_shard(
    recipe_name: str, spec_data: dict[str, Any], out: str, shard_index: int
) -> dict[str, Any]:
    """Write shard ``shard_index`` (skipped when it is already complete); return its info."""
    plan = plan_shards(get_recipe(recipe_name).parse(spec_data))[shard_index]
    return build_piece(recipe_name, spec_data, out, Piece(plan.index, 0, 1, plan.start, plan.stop))


def build_piece(
    recipe_name: str, spec_data: dict[str, Any], out: str, piece: Piece
) -> dict[str, Any]:
    """Write one work unit of :func:`plan_pieces`: the whole shard when it has one piece,
    else its piece file (:func:`join_shard` makes the shard of them). Skipped when already
    there; returns its info (rows, seconds, skipped, and when it started and ended)."""
    recipe = get_recipe(recipe_name)
    spec = recipe.parse(spec_data)
    plan = plan_shards(spec)[piece.shard]
    if not plan.start <= piece.start <= piece.stop <= plan.stop:
        raise ValueError(f"piece {piece} lies outside shard {plan}")
    started = time.time()
    head = {"index": piece.shard, "part": piece.part, "parts": piece.parts, "started": started}
    whole = piece.parts == 1
    if storage.shard_done(out, piece.shard) or (
        not whole and storage.piece_done(out, piece.shard, piece.start, piece.stop)
    ):
        done = piece.stop - piece.start
        return {**head, "rows": done, "skipped": True, "seconds": 0.0, "ended": time.time()}
    t0 = time.perf_counter()
    sources, marker = _build_sources(spec, out)

    # a recording found unusable when a row loads it (changed, unreadable, too short,
    # silent) is set aside and that row drawn again from the others (Recipe.redrawn); the
    # shard's footer lists what this build's rows met, for dataset.json
    def notes() -> dict[str, Any]:
        return {"quarantine": sources.bad} if sources.bad else {}

    def rows() -> Iterator[dict[str, Any]]:  # streamed: one row group in memory at a time
        for row in recipe.generate(spec, sources, piece.start, piece.stop):
            row["params"] = json.dumps(row.get("params", {}), sort_keys=True)
            yield row

    options = _write_options(recipe_name, spec)
    # one BLAS/OpenMP thread, wherever the shard is built: a threaded BLAS sums in another
    # order, so the same rows would differ in their last bits between a plain process and a
    # Dask worker (NMR's SI-SDR labels did, by 2e-13)
    with threadpool_limits(limits=1):
        if whole:
            info = storage.write_shard(out, piece.shard, rows(), notes=notes, **options)
        else:
            info = storage.write_piece(
                out, piece.shard, piece.start, piece.stop, rows(), notes=notes, **options
            )
    for q in sources.bad:
        if (marker.get("claim"), q["id"]) not in _warned:  # once a process
            _warned.add((marker.get("claim"), q["id"]))
            log.info("quarantined %s (%s): %s", q["id"], q["path"], q["reason"])
    return {
        **head,
        "rows": info.rows,
        "skipped": info.skipped,
        "seconds": time.perf_counter() - t0,
        "ended": time.time(),
        "sha256": info.sha256,
        "bytes": info.bytes,
    }


def join_shard(
    recipe_name: str,
    spec_data: dict[str, Any],
    out: str,
    shard_index: int,
    spans: list[tuple[int, int]],
) -> dict[str, Any]:
    """Shard ``shard_index`` from its pieces (their row ranges ``spans``), once every piece
    is written."""
    spec = get_recipe(recipe_name).parse(spec_data)
    plan = plan_shards(spec)[shard_index]
    spans = [(int(a), int(b)) for a, b in spans]
    if not spans or spans[0][0] != plan.start or spans[-1][1] != plan.stop:
        raise ValueError(
            f"shard {shard_index}: pieces {spans} do not cover rows {plan.start}..{plan.stop}"
        )
    t0 = time.perf_counter()
    info = storage.join_pieces(out, shard_index, spans, **_write_options(recipe_name, spec))
    if info is None:
        raise RuntimeError(f"shard {shard_index}: a piece of it is missing; build again to make it")
    return {
        "index": shard_index,
        "rows": info.rows,
        "skipped": info.skipped,
        "seconds": time.perf_counter() - t0,
        "sha256": info.sha256,
        "bytes": info.bytes,
    }


def _write_options(recipe_name: str, spec: BaseSpec) -> dict[str, Any]:
    return {
        "schema": get_recipe(recipe_name).schema(spec),
        "sample_rate": spec.sample_rate,
        "audio_format": AUDIO_FORMATS[spec.audio_format],
    }


def quarantined(out: str, num_shards: int) -> list[dict[str, str]]:
    """Every recording set aside for the build at ``out``: those :func:`prepare` found gone
    or resized, then those shards found unusable when loading them (from each shard's
    footer), one entry per id."""
    found = {q["id"]: q for q in quarantine_of(out)}
    for i in range(num_shards):
        for q in storage.shard_notes(out, i).get("quarantine", []):
            found.setdefault(q["id"], q)
    return [found[i] for i in sorted(found)]


def finalize(
    recipe_name: str, spec: BaseSpec, out: str, written: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """Write ``dataset.json`` (last) and return the dataset summary. ``written``: the infos
    of shards this build wrote (:func:`build_piece`, :func:`join_shard`), whose sha256 the
    writer took of the bytes it wrote; every other shard is hashed by reading it."""
    num_shards = len(plan_shards(spec))
    storage.remove_empty_pieces_dir(out)
    infos = [
        storage.ShardInfo(
            w["index"], storage.shard_name(w["index"]), w["rows"], w["sha256"], w["bytes"]
        )  # fmt: skip
        for w in written or []
        if w.get("parts", 1) == 1
        and not w.get("skipped")
        and w.get("sha256")
        and w.get("bytes") is not None
    ]
    storage.finalize_dataset(
        out,
        recipe=recipe_name,
        spec=spec.model_dump(mode="json"),
        seed=spec.seed,
        num_shards=num_shards,
        shard_infos=infos,
        extra={"quarantine": quarantined(out, num_shards)},
    )
    # the shards were hashed a moment ago, by their writers or by finalize_dataset
    return summarize(out, verify=False)


def summarize(out: str, verify: bool = True) -> dict[str, Any]:
    """Counts and label balance of a finished dataset (from its metadata columns);
    ``verify``: check each shard's sha256 against ``dataset.json`` as it is read."""
    ds = storage.Dataset.open(out, verify=verify)
    recipe = get_recipe(ds.recipe)
    summary = {"recipe": ds.recipe, "path": out, "rows": ds.num_rows, "shards": len(ds.shards)}
    if ds.info.get("quarantine"):
        summary["quarantined_sources"] = len(ds.info["quarantine"])
    summary.update(recipe.summary(ds.to_table()))  # every column but the audio
    return summary


ProgressFn = Callable[[dict[str, Any]], None]


def build_local(
    recipe_name: str, spec: BaseSpec | dict[str, Any], out: str, progress: ProgressFn | None = None
) -> dict[str, Any]:
    """The whole build in this process, shard after shard (no Prefect, no Dask)."""
    spec = prepare(recipe_name, spec, out)
    data = spec.model_dump(mode="json")
    for plan in plan_shards(spec):
        info = build_shard(recipe_name, data, out, plan.index)
        if progress is not None:
            progress(info)
    return finalize(recipe_name, spec, out)


__all__ = [
    "ShardPlan",
    "is_prepared",
    "build_local",
    "build_shard",
    "finalize",
    "plan_shards",
    "prepare",
    "quarantine_of",
    "quarantined",
    "sources_for",
    "spec_digest",
    "summarize",
]
