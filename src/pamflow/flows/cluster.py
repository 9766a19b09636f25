"""The Dask side of a build: the task runner, the LocalCluster and how its workers start.

``pamflow build`` runs its tasks on a ``LocalCluster`` of single-threaded worker processes
(or on an existing scheduler by address). Those processes start from a fork server
(:func:`start_method`): one process that imports Prefect, NumPy, SciPy and pamflow's build
code once (:data:`PRELOAD`), started as early as the command can (:func:`prestart`) so that
its imports overlap the command's own, and forks each worker from that warm state
(``PAMFLOW_WORKER_START=spawn``: a fresh interpreter a worker, as Dask does). A cluster of
one worker runs it in this process (:func:`in_process`).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

if TYPE_CHECKING:  # Prefect and Dask load on first use: `pamflow build` calls prestart first
    from prefect import Flow
    from prefect_dask import DaskTaskRunner

P = ParamSpec("P")
R = TypeVar("R")
#: one thread per worker process for BLAS/OpenMP: a worker runs one task at a time, and
#: threaded BLAS in small dot products only fights the other workers for the cores
WORKER_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
#: glibc malloc settings for worker processes, set before they start. Dask's nanny sets
#: MALLOC_TRIM_THRESHOLD_=65536, which also fixes the mmap threshold at 128 KiB: every
#: audio-sized temporary (an STFT of a clip is ~1 MB) is then mmapped, page-faulted and
#: unmapped, and numpy code runs ~3x slower than in a plain process (measured: 500 rffts of
#: a 313x512 block take 0.39 s instead of 0.13 s). Raising both thresholds restores it.
WORKER_MALLOC = {"MALLOC_TRIM_THRESHOLD_": 1 << 30, "MALLOC_MMAP_THRESHOLD_": 1 << 26}
#: the Dask config that gives spawned LocalCluster workers :data:`WORKER_MALLOC`
MALLOC_CONFIG = {f"distributed.nanny.pre-spawn-environ.{k}": v for k, v in WORKER_MALLOC.items()}
#: Dask config for a build's cluster (scheduler, nannies, workers) beyond the workers'
#: environment. No statistical profiler: Dask's samples every running task's stack each
#: 10 ms from the worker's event loop (for the dashboard's Profile page); in a build worker
#: that thread took 10-12 % as much CPU as the task it watched, and 5-6 % with it off
#: (``thread_time`` against ``process_time`` of JND shards; ``benchmarks/task_overhead.py``
#: measures it per task). Slower housekeeping: every Dask server times its event loop each
#: 20 ms (the tick, which warns of a loop blocked over 3 s: a 1 s tick still does), each
#: samples CPU, memory, network and disk counters every 500 ms for the dashboard's plots,
#: and each nanny and worker reads its worker's memory every 100 ms (to pause, spill or
#: restart it near its limit; half a second is soon enough for a build's units, which
#: hold a few clips each). An idle 2-worker cluster took 2.39 s of the command's CPU and
#: 1.82 s of each worker's in 30 s with Dask's defaults, 0.48 s and 0.15 s with these
#: (``benchmarks/task_overhead.py --idle 30``); the tick alone was most of it.
WORKER_CONFIG = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.admin.system-monitor.disk": False,
    "distributed.worker.memory.monitor-interval": "500ms",
}
#: ``PAMFLOW_WORKER_START``: ``forkserver`` (the default: workers forked from a warm fork
#: server, seconds faster to start) or ``spawn`` (a fresh interpreter a worker, Dask's own)
WORKER_START = "PAMFLOW_WORKER_START"
START_METHODS = ("forkserver", "spawn")
#: what the fork server imports before it forks workers: everything a build task needs
PRELOAD = ["distributed", "pamflow.flows.build"]


def start_method() -> str:
    """How a build's LocalCluster starts its workers (``$PAMFLOW_WORKER_START``).

    ``forkserver`` (the default): every worker is forked from one process that imported the
    build's code once, and starts in a tenth of a second; with ``spawn`` (Dask's default)
    each worker is a fresh interpreter that spends seconds importing Prefect, SciPy and pamflow
    again (``benchmarks/build.py`` measures either, as the environment says). Plain ``fork``
    is not offered:
    forking this process, whose threads hold locks (a log handler's, measured to hang a
    worker), is not safe. ``spawn`` where the platform has no fork server.
    """
    chosen = os.environ.get(WORKER_START, "").strip().lower()
    if chosen and chosen not in START_METHODS:
        raise ValueError(f"{WORKER_START}={chosen!r}: must be one of {', '.join(START_METHODS)}")
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return "spawn"
    return chosen or "forkserver"


@contextlib.contextmanager
def environ(values: dict[str, Any]) -> Iterator[None]:
    """``values`` in this process's environment for the block; as they were afterwards."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update({k: str(v) for k, v in values.items()})
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def prestart() -> None:
    """Start the fork server now, in the background, if builds will use one: it imports
    :data:`PRELOAD` in its own process while this one goes on. Its environment is the
    workers': :data:`WORKER_ENV` and :data:`WORKER_MALLOC` (a forked worker inherits them,
    where Dask's per-worker settings would come too late), and SIGINT ignored. Idempotent."""
    if start_method() != "forkserver":
        return
    from multiprocessing import forkserver

    multiprocessing.get_context("forkserver").set_forkserver_preload(PRELOAD)
    # started with SIGINT ignored, the fork server's workers ignore it too: a Ctrl-C to the
    # terminal's process group is the command's to handle (it closes the cluster), and a
    # worker killed by it would only be restarted by its nanny as the command stops
    main = threading.current_thread() is threading.main_thread()
    old = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
    try:
        with environ({**WORKER_ENV, **WORKER_MALLOC}):
            forkserver.ensure_running()
    finally:
        if main:
            signal.signal(signal.SIGINT, old)


def local_cluster_kwargs(workers: int | None) -> dict[str, Any]:
    """A ``LocalCluster`` of ``workers`` (default 2) single-threaded processes on loopback,
    with this process's Prefect and pamflow settings (a forked worker's environment is the
    fork server's, taken when it started). One worker runs in this process, a thread
    (:func:`in_process`)."""
    if in_process(workers):
        return {
            "n_workers": 1,
            "threads_per_worker": 1,
            "processes": False,
            "dashboard_address": ":0",
        }
    ours = {k: v for k, v in os.environ.items() if k.startswith(("PREFECT_", "PAMFLOW_"))}
    return {
        "n_workers": workers or 2,
        "threads_per_worker": 1,
        "processes": True,
        "dashboard_address": ":0",
        "host": "127.0.0.1",
        "env": {**ours, **WORKER_ENV},
    }


def in_process(workers: int | None) -> bool:
    """Whether a LocalCluster of ``workers`` runs its worker in this process (one worker):
    a process of its own would run the same tasks one at a time, after seconds of start-up
    (spawned, it imports Prefect, SciPy and pamflow again), with every task's arguments and
    result pickled across."""
    return workers == 1


def cluster_config() -> dict[str, Any]:
    """The Dask config a build's LocalCluster starts under (:func:`start_method`)."""
    return {
        **MALLOC_CONFIG,
        **WORKER_CONFIG,
        "distributed.worker.multiprocessing-method": start_method(),
    }


def task_runner(workers: int | None = None, cluster: str | None = None) -> DaskTaskRunner:
    """A Dask task runner (:class:`pamflow.flows.runner.BuildTaskRunner`): an existing
    scheduler at ``cluster`` (``tcp://host:port``), or a ``LocalCluster`` of ``workers``
    single-threaded processes on loopback."""
    from pamflow.flows.runner import BuildTaskRunner

    if cluster:
        return BuildTaskRunner(address=cluster)
    return BuildTaskRunner(
        cluster_class="distributed.LocalCluster", cluster_kwargs=local_cluster_kwargs(workers)
    )


def warm_worker(recipe: str, spec: dict[str, Any], out: str, freeze: bool = True) -> float:
    """Run on each worker before its first task: Prefect's task machinery imported, the
    recipe's code and the spec's sources loaded, then (``freeze``: a worker process of its
    own) all of it frozen out of the cyclic garbage collector (:func:`freeze_imports`)."""
    import prefect.task_engine  # noqa: F401  (what runs every task)

    from pamflow.pipeline import build as lib

    seconds = lib.warm(recipe, spec, out)
    if freeze:
        freeze_imports()
    return seconds


def freeze_imports() -> int:
    """Move every object this process holds now (its imported modules, classes, Prefect's
    settings models: about 200,000 in a warmed build worker) to the garbage collector's
    permanent generation, where no collection walks them again, and freeze whatever is left
    when the process exits (:func:`pamflow.interrupts.freeze_at_exit`); returns how many
    were frozen now.

    A warmed 2-worker cluster closed in 1.1-1.3 s, 0.13-0.16 s frozen; after a 200-row
    build, 0.55 s frozen at warm-up only, 0.17-0.26 s frozen at exit too (measured around
    ``start_cluster`` and ``LocalCluster.close``). Until then a task's objects are collected
    as before."""
    import gc

    from pamflow.interrupts import freeze_at_exit

    gc.freeze()
    freeze_at_exit()
    return gc.get_freeze_count()


def start_cluster(workers: int | None, recipe: str, spec: dict[str, Any], out: str) -> Any:
    """A ``LocalCluster`` as :func:`task_runner` makes one, started now and its workers
    warmed (:func:`warm_worker`), so the flow's first tasks start at once."""
    import dask
    from distributed import Client, LocalCluster

    own = not in_process(workers)
    if own:
        prestart()
    # Dask lets this process's environment override its pre-spawn settings, and a
    # LocalCluster started earlier in it (spawn) left Dask's own malloc values there
    with dask.config.set(cluster_config()), environ(WORKER_MALLOC if own else {}):
        cluster = LocalCluster(**local_cluster_kwargs(workers))
    try:
        with Client(cluster) as client:  # freezing this process's objects is not ours to do
            client.run(warm_worker, recipe, spec, out, freeze=own)
    except BaseException:
        cluster.close()
        raise
    return cluster


def configured_api_url() -> str:
    """The Prefect API this process is set to use (its settings, else the environment a
    temporary server's URL was put in); "" where none is."""
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value() or os.environ.get("PREFECT_API_URL") or ""


@contextlib.contextmanager
def lean_prefect_clients() -> Iterator[None]:
    """For the block, Prefect API clients that skip loading 150 CA certificates they never
    use, when the API is plain ``http://`` (a temporary server, or one on loopback).

    Prefect 3.8 gives every API client a new SSL context made from certifi's bundle, about
    35 ms of CPU each, whatever the URL's scheme; a Dask worker makes two or three clients
    per task run. With ``PREFECT_API_SSL_CERT_FILE`` set to a file of one certificate (the
    bundle's first, written once under ``PREFECT_HOME``) a context takes 0.9 ms. The flow
    run's settings carry it to its tasks, so it is for local clusters only (a remote worker
    has no such file). A CA file set for the API (or by ``SSL_CERT_FILE``) is replaced only
    where no TLS connection can read it; an ``https://`` API, and
    ``PREFECT_API_TLS_INSECURE_SKIP_VERIFY``, are left alone.
    ``benchmarks/task_overhead.py`` measures it.
    """
    from prefect.settings import (
        PREFECT_API_SSL_CERT_FILE,
        PREFECT_API_TLS_INSECURE_SKIP_VERIFY,
        temporary_settings,
    )

    url = configured_api_url()
    if not url.startswith("http://") or PREFECT_API_TLS_INSECURE_SKIP_VERIFY.value():
        yield
        return
    with temporary_settings({PREFECT_API_SSL_CERT_FILE: one_certificate_file()}):
        yield


def one_certificate_file() -> str:
    """A PEM file of one CA certificate (certifi's first) under ``PREFECT_HOME``, written
    once, atomically: what :func:`lean_prefect_clients` gives Prefect to load."""
    import certifi
    from prefect.settings import PREFECT_HOME

    path = Path(PREFECT_HOME.value()) / "pamflow-plain-http-ca.pem"
    if not path.exists():
        text = Path(certifi.where()).read_text(encoding="ascii")
        end = "-----END CERTIFICATE-----"
        first = text[text.index("-----BEGIN CERTIFICATE-----") : text.index(end) + len(end)]
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(first + "\n", encoding="ascii")
        os.replace(tmp, path)
    return str(path)


def on_runner(flow_: Flow[P, R], runner: DaskTaskRunner) -> Flow[P, R]:
    """``flow_`` with its tasks on ``runner``."""
    # prefect-dask declares DaskTaskRunner a bare TaskRunner (of Prefect's default future
    # type), which Flow.with_options' TaskRunner[PrefectFuture] rejects
    return flow_.with_options(task_runner=runner)  # type: ignore[arg-type]


def cluster_size(address: str) -> int:
    """How many workers the Dask scheduler at ``address`` has now (0 if it cannot say)."""
    from distributed import Client

    try:
        with Client(address, timeout=10) as client:
            return len(client.scheduler_info().get("workers", {}))
    except (OSError, TimeoutError):
        return 0


def worker_name() -> str:
    """The Dask worker running this code (its name, or address), or ``local``."""
    try:
        from distributed import get_worker

        worker = get_worker()
    except ValueError:  # not inside a Dask worker
        return "local"
    return str(worker.name if worker.name is not None else worker.address)
