"""``pamflow worker SCHEDULER``: Dask workers the way pamflow's tasks need them.

Each worker is a ``dask worker`` process started without a nanny, so its process is not
daemonic (PyTorch DataLoader worker processes can start inside it) and Dask's nanny does
not set ``MALLOC_TRIM_THRESHOLD_=65536`` (numpy code ~3x slower). Every worker gets
single-threaded BLAS and raised glibc malloc thresholds (:data:`pamflow.flows.cluster.WORKER_ENV`,
:data:`~pamflow.flows.cluster.WORKER_MALLOC`), the Dask settings of pamflow's own
LocalCluster (:data:`~pamflow.flows.cluster.WORKER_CONFIG`: no profiler, slower
housekeeping; as ``DASK_*`` variables, :func:`dask_env`), one thread, and a preload that makes and loads
the demo corpus once (:func:`dask_setup`). With ``--gpus N`` the first N workers each
declare the Dask resource ``GPU=1`` and see one CUDA device (``CUDA_VISIBLE_DEVICES``), so
CUDA training tasks land there. The command runs until interrupted and stops its workers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

from pamflow.flows.cluster import WORKER_CONFIG, WORKER_ENV, WORKER_MALLOC


@dataclass(frozen=True)
class WorkerPlan:
    name: str
    command: list[str]
    env: dict[str, str]
    gpu: bool


def plan_workers(
    scheduler: str,
    *,
    nworkers: int = 1,
    gpus: int = 0,
    name: str | None = None,
    warm: bool = True,
    memory_limit: str = "auto",
) -> list[WorkerPlan]:
    """The worker processes ``pamflow worker`` starts: ``max(nworkers, gpus)`` of them, the
    first ``gpus`` with a GPU each."""
    if nworkers < 1 or gpus < 0:
        raise ValueError(f"--nworkers must be >= 1 and --gpus >= 0, got {nworkers}, {gpus}")
    base = name or f"pamflow-{os.uname().nodename}-{os.getpid()}"
    plans = []
    for i in range(max(nworkers, gpus)):
        gpu = i < gpus
        env = {**WORKER_ENV, **{k: str(v) for k, v in WORKER_MALLOC.items()}, **dask_env()}
        command = [
            sys.executable,
            "-m",
            "distributed.cli.dask_worker",
            scheduler,
            "--no-nanny",
            "--nthreads",
            "1",
            "--memory-limit",
            memory_limit,
            "--name",
            f"{base}-{i}{'-gpu' if gpu else ''}",
        ]
        if gpu:
            command += ["--resources", "GPU=1"]
            env["CUDA_VISIBLE_DEVICES"] = str(i)
        if warm:
            command += ["--preload", "pamflow.flows.worker"]
        plans.append(WorkerPlan(command[command.index("--name") + 1], command, env, gpu))
    return plans


def dask_env(config: dict[str, Any] = WORKER_CONFIG) -> dict[str, str]:
    """``config`` (dotted Dask keys) as the ``DASK_*`` environment variables Dask reads
    when a process starts (``distributed.admin.tick.interval`` is
    ``DASK_DISTRIBUTED__ADMIN__TICK__INTERVAL``; values as Python literals or strings)."""
    return {
        "DASK_" + "__".join(part.upper().replace("-", "_") for part in key.split(".")): str(v)
        for key, v in config.items()
    }


def run_workers(plans: list[WorkerPlan]) -> int:
    """Start the planned workers and wait; SIGINT/SIGTERM stop them all. Returns the first
    non-zero exit status of a worker, else 0."""
    procs = [subprocess.Popen(p.command, env={**os.environ, **p.env}) for p in plans]

    def stop(signum: int, frame: Any) -> None:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    codes = [proc.wait() for proc in procs]
    return next((c for c in codes if c not in (0, -signal.SIGTERM, -signal.SIGINT)), 0)


def dask_setup(worker: Any) -> None:
    """Dask preload hook: make (if needed) and load the demo corpus once per worker, so the
    first task does not pay for it; then freeze what is loaded out of the garbage collector
    (:func:`pamflow.flows.cluster.freeze_imports`)."""
    from pamflow.corpus import default_sources
    from pamflow.flows.cluster import freeze_imports

    default_sources()
    freeze_imports()


__all__ = ["WorkerPlan", "dask_env", "dask_setup", "plan_workers", "run_workers"]
