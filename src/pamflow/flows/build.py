"""The build flow: one Prefect task per shard, mapped over a Dask task runner.

``build_dataset(recipe, spec, out)`` validates the spec (before any work), skips shards that
are already complete, maps :func:`build_shard_task` over the rest on a ``LocalCluster`` of
``workers`` processes (or an existing scheduler at ``cluster``), writes ``dataset.json``
last, and publishes a Prefect artifact summarising the dataset. Task bodies are single calls
into :mod:`pamflow.pipeline.build`; tasks pass the spec as a dict and paths, never audio.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import Any, ParamSpec, TypeVar

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.events import emit_event
from prefect.futures import as_completed

from pamflow import interrupts
from pamflow.flows import progress, settings
from pamflow.flows.cluster import (
    cluster_size,
    configured_api_url,
    lean_prefect_clients,
    on_runner,
    start_cluster,
    task_runner,
    worker_name,
)
from pamflow.flows.server import temporary
from pamflow.pipeline import build as lib

ProgressFn = Callable[[dict[str, Any]], None]
P = ParamSpec("P")
R = TypeVar("R")
#: work units a build is cut into per worker (shards split into pieces where there are
#: fewer): enough that a unit costing ten times the others does not leave workers idle
UNITS_PER_WORKER = 8
#: the event a finished build emits; its resource is ``pamflow.dataset.<recipe>``
BUILT_EVENT = "pamflow.dataset.built"


@task(
    name="build-shard",
    retries=2,
    retry_delay_seconds=2,
    task_run_name="{recipe}-shard-{shard_index:05d}",
)
def build_shard_task(
    recipe: str, spec: dict[str, Any], out: str, shard_index: int
) -> dict[str, Any]:
    return {**lib.build_shard(recipe, spec, out, shard_index), "worker": worker_name()}


@task(
    name="build-piece",
    retries=2,
    retry_delay_seconds=2,
    task_run_name="{recipe}-shard-{shard_index:05d}-piece-{part:04d}",
)
def build_piece_task(
    recipe: str,
    spec: dict[str, Any],
    out: str,
    shard_index: int,
    part: int,
    parts: int,
    start: int,
    stop: int,
) -> dict[str, Any]:
    piece = lib.Piece(shard_index, part, parts, start, stop)
    return {**lib.build_piece(recipe, spec, out, piece), "worker": worker_name()}


@task(
    name="join-shard",
    retries=2,
    retry_delay_seconds=2,
    task_run_name="{recipe}-join-{shard_index:05d}",
)
def join_shard_task(
    recipe: str, spec: dict[str, Any], out: str, shard_index: int, spans: list[tuple[int, int]]
) -> dict[str, Any]:
    return {**lib.join_shard(recipe, spec, out, shard_index, spans), "worker": worker_name()}


@task(name="check-output-visible")
def output_visible_task(out: str) -> bool:
    """Whether the build marker ``prepare`` wrote in ``out`` is visible from a worker."""
    return lib.is_prepared(out)


@task(name="finalize-dataset")
def finalize_task(
    recipe: str, spec: dict[str, Any], out: str, written: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    from pamflow.datasets.base import get_recipe

    return lib.finalize(recipe, get_recipe(recipe).parse(spec), out, written)


def summary_markdown(summary: dict[str, Any], throughput: float | None = None) -> str:
    lines = [
        f"# {summary['recipe']} dataset",
        "",
        f"`{summary['path']}`",
        "",
        "| field | value |",
        "|---|---|",
    ]
    for k, v in summary.items():
        if k in ("path", "strength_histogram") or isinstance(v, dict):
            continue
        lines.append(f"| {k} | {v:.3f} |" if isinstance(v, float) else f"| {k} | {v} |")
    if throughput is not None:
        lines.append(f"| examples/s | {throughput:.2f} |")
    for name, hist in summary.items():
        if isinstance(hist, dict) and hist:
            lines += ["", f"## {name.replace('_', ' ')}", "", "| bin | rows |", "|---|---|"]
            lines += [f"| {b} | {n} |" for b, n in hist.items()]
    return "\n".join(lines)


def placement_markdown(shards: list[dict[str, Any]]) -> str:
    """Which worker wrote which shard (a section of the build artifact)."""
    lines = [
        "",
        "",
        "## shards",
        "",
        "| shard | worker | rows | seconds | skipped |",
        "|---|---|---|---|---|",
    ]
    for s in sorted(shards, key=lambda s: s["index"]):
        lines.append(
            f"| {s['index']} | {s.get('worker', '')} | {s['rows']} | "
            f"{s['seconds']:.2f} | {s['skipped']} |"
        )
    return "\n".join(lines)


@flow(name="build-dataset", log_prints=True)
def build_dataset_flow(
    recipe: str,
    spec: dict[str, Any],
    out: str,
    retrain: bool = False,
    check_workers: bool = False,
    units: int = 0,
) -> dict[str, Any]:
    """Build into ``out`` (absolute, or a URL); ``retrain`` labels the event it emits so the
    training deployments fire; ``check_workers`` first makes sure a worker of the cluster sees
    ``out`` (a path only this machine has would build every shard elsewhere). ``units``:
    about how many work units to cut the build into (shards split into pieces where there
    are fewer shards, :func:`pamflow.pipeline.build.plan_pieces`; 0: one per shard)."""
    interrupts.rearm()  # under the pamflow command, one SIGTERM stops at once
    logger = get_run_logger()
    parsed = lib.prepare(recipe, spec, out)
    if check_workers and not output_visible_task.submit(out).result():
        raise ValueError(
            f"{out}: the cluster's workers cannot see the output folder (it is not on storage "
            "they share with this machine); use a shared path or an fsspec URL"
        )
    data = parsed.model_dump(mode="json")
    costs = lib.group_costs(recipe, parsed, out) if units else None
    pieces = lib.plan_pieces(recipe, parsed, units, costs)
    parts: dict[int, list[lib.Piece]] = {}
    for piece in pieces:
        parts.setdefault(piece.shard, []).append(piece)
    logger.info(
        "building %s: %d rows in %d shards (%d work units) -> %s",
        recipe, parsed.num_examples, len(parts), len(pieces), out,
    )  # fmt: skip
    t0 = time.perf_counter()
    futures: list[Any] = []
    made: dict[int, list[Any]] = {}
    # the costliest units first (longest processing time first): the last ones to finish
    # are then short, and no worker waits on a long one started late
    for p in sorted(pieces, key=lambda p: -p.cost):
        if p.parts == 1:
            futures.append(build_shard_task.submit(recipe, data, out, p.shard))
            continue
        fut = build_piece_task.submit(recipe, data, out, p.shard, p.part, p.parts, p.start, p.stop)
        made.setdefault(p.shard, []).append(fut)
        futures.append(fut)
    for shard, futs in made.items():
        futures.append(
            join_shard_task.submit(
                recipe,
                data,
                out,
                shard,
                [(p.start, p.stop) for p in parts[shard]],
                wait_for=futs,
                return_state=False,
            )
        )
    units_done = []
    written = []  # whole shards (of one piece, or joined): finalize need not hash them again
    for fut in as_completed(futures):
        info = fut.result()
        joined = "part" not in info  # a join: the shard is done, its rows counted already
        if not joined:
            units_done.append(info)
        shard_done = joined or info.get("parts", 1) == 1
        if shard_done:
            written.append(info)
        progress.report({**info, "rows": 0 if joined else info["rows"], "shard_done": shard_done})
    elapsed = time.perf_counter() - t0
    summary = finalize_task(recipe, data, out, written)
    rate = parsed.num_examples / elapsed if elapsed > 0 else None
    summary["seconds"] = elapsed
    create_markdown_artifact(
        key=f"dataset-{recipe}",
        markdown=summary_markdown(summary, rate) + placement_markdown(units_done),
        description=f"{recipe} dataset at {out}",
    )
    emit_built(recipe, out, summary["rows"], retrain)
    return summary


def emit_built(recipe: str, out: str, rows: int, retrain: bool) -> None:
    """Emit :data:`BUILT_EVENT` for the dataset at ``out``: what the training deployments
    of prefect.yaml are triggered by (``retrain`` labels it ``pamflow.retrain: "true"``).
    Every flow that finishes a dataset emits it (builds, listening-test exports)."""
    emit_event(
        event=BUILT_EVENT,
        resource={
            "prefect.resource.id": f"pamflow.dataset.{recipe}",
            "pamflow.recipe": recipe,
            "pamflow.path": out,
            "pamflow.retrain": "true" if retrain else "false",
        },
        payload={"path": out, "recipe": recipe, "rows": rows, "retrain": retrain},
    )


@contextlib.contextmanager
def prefect_api(meanwhile: Callable[[], R] | None = None) -> Iterator[R | None]:
    """Make sure a Prefect API is configured before any worker starts.

    With ``PREFECT_API_URL`` unset, Prefect would give every process its own temporary
    server: the flow's, and one per Dask worker (each ~20 s to start, and runs recorded
    nowhere useful). Instead one temporary server on loopback
    (:class:`pamflow.flows.server.TemporaryServer`) is started here, or taken already
    starting from the command (:func:`pamflow.flows.server.early`), and its URL put in the
    environment, which LocalCluster workers inherit. Workers of a remote cluster
    need a Prefect server they can reach: set ``PREFECT_API_URL`` on both sides.

    ``meanwhile`` (starting a cluster) runs in a thread while the server starts, with the
    server's URL already in the environment; its result is what the context yields.

    Flow runs against the temporary server send no heartbeats: they let a lasting server
    mark a run whose process died as crashed, and this one dies with the process. Prefect's
    flow engine joins its heartbeat thread, which sleeps in whole seconds, at the end of
    every flow run: up to a second of each (a trivial flow's end: 1.004 s median with
    heartbeats, 0.034 s without).
    """
    if configured_api_url():
        yield meanwhile() if meanwhile else None
        return
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        temporary_settings,
    )

    server = temporary()  # the one the command started early, else one starting now
    os.environ["PREFECT_API_URL"] = server.api_url  # known before the server is up
    pool = ThreadPoolExecutor(1) if meanwhile else None
    pending = pool.submit(meanwhile) if pool and meanwhile else None
    try:
        server.wait(timeout=120)
        result = pending.result() if pending else None
    except BaseException:
        os.environ.pop("PREFECT_API_URL", None)
        _close_when_done(pending)
        server.stop()
        raise
    finally:
        if pool:
            pool.shutdown(wait=False)
    if pending and os.environ.get("PREFECT_API_URL") != server.api_url:  # pragma: no cover
        # the port was taken meanwhile and the server moved: the workers have a stale URL
        _close_when_done(pending)
        result = None
    os.environ["PREFECT_API_URL"] = server.api_url
    try:
        ours = {PREFECT_API_URL: server.api_url, PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
        with temporary_settings(ours):
            try:
                yield result
            finally:  # send what is queued while the server is still up
                from prefect.events.worker import EventsWorker
                from prefect.logging.handlers import APILogWorker

                APILogWorker.drain_all(timeout=10)
                EventsWorker.drain_all(timeout=10)
    finally:
        os.environ.pop("PREFECT_API_URL", None)
        server.stop()


def build_dataset(
    recipe: str,
    spec: dict[str, Any],
    out: str,
    *,
    workers: int | None = None,
    cluster: str | None = None,
    on_shard: ProgressFn | None = None,
    retrain: bool = False,
) -> dict[str, Any]:
    """Run the build flow on a Dask task runner (see :func:`task_runner`); ``on_shard`` is
    called with each finished shard's info (rows, seconds, skipped, worker) in this process.
    ``out`` is made absolute first (workers and triggered flows run elsewhere); with
    ``retrain`` the finished build fires the training deployments."""
    out = settings.absolute(out)
    lib.prepare(recipe, spec, out)  # a bad spec fails here, before a cluster starts
    # a LocalCluster starts (and its workers warm up) while the Prefect server starts
    early = None if cluster else partial(start_cluster, workers, recipe, spec, out)
    with prefect_api(early) as local, progress.listening(on_shard):
        try:
            address = cluster or (local.scheduler_address if local is not None else None)
            n = workers or 2 if cluster is None else cluster_size(cluster)
            # one worker makes every unit in turn: cutting shards would only add tasks
            units = UNITS_PER_WORKER * n if n > 1 else 0
            build_flow = on_runner(build_dataset_flow, task_runner(workers, address))
            with contextlib.nullcontext() if cluster else lean_prefect_clients():
                return build_flow(recipe, spec, out, retrain, bool(cluster), units)
        finally:
            if local is not None:
                local.close()


def _close_when_done(pending: Future[Any] | None) -> None:
    """Wait for a cluster started in the background and close it (the build stopped)."""
    if pending is None:
        return
    with contextlib.suppress(BaseException):
        made = pending.result()
        if made is not None:
            made.close()


@flow(name="scheduled-build", log_prints=True)
def scheduled_build(
    recipe: str,
    spec: dict[str, Any],
    out_root: str | None = None,
    workers: int = 2,
    cluster: str | None = None,
    on_cluster: bool = False,
    retrain: bool = False,
) -> dict[str, Any]:
    """A build into a fresh folder ``OUT_ROOT/RECIPE-YYYYmmddTHHMMSSZ`` (for deployments).

    Read when the flow runs (:mod:`pamflow.flows.settings`): ``out_root`` defaults to
    ``$PAMFLOW_DATA_DIR/RECIPE``; ``on_cluster`` takes the scheduler from
    ``DASK_SCHEDULER_ADDRESS`` (``cluster`` names one directly); ``PAMFLOW_SPEC_OVERRIDES``
    is merged into ``spec``. ``retrain`` lets the finished build trigger retraining.
    The seed is the spec's, so every scheduled build of an unchanged spec gives the same rows;
    vary ``spec.seed`` in the deployment to draw new data.
    """
    interrupts.rearm()  # under the pamflow command, one SIGTERM stops at once
    root = out_root or f"{settings.required(settings.DATA_DIR).rstrip('/')}/{recipe}"
    out = settings.fresh_folder(root, recipe)
    spec = settings.merged(settings.SPEC_OVERRIDES, spec)
    cluster = settings.cluster_address(cluster, on_cluster)
    return build_dataset(recipe, spec, out, workers=workers, cluster=cluster, retrain=retrain)
