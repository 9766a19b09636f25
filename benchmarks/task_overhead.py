"""What one Prefect task costs on a build's Dask worker, with Dask's and Prefect's defaults
and with pamflow's settings, in one run.

    python benchmarks/task_overhead.py [--tasks 40] [--rounds 2] [--idle SECONDS]

A flow on a LocalCluster of one single-threaded worker process (pamflow's, as ``pamflow
build`` makes each worker of a cluster of two or more) submits ``--tasks`` tasks that do nothing, one after another, after three
untimed ones. Per task it prints the wall time seen by the flow, the worker process's CPU
time (``time.process_time`` read by a task before and after) and the CPU time of the
process running the flow (which also runs the LocalCluster's scheduler), under

* **defaults**: prefect-dask's ``DaskTaskRunner`` (every submission hashed), Dask's
  statistical profiler on (its default) and Prefect's API clients as Prefect makes them
  (an SSL context from certifi's bundle each);
* **pamflow**: :class:`pamflow.flows.runner.BuildTaskRunner` (``pure=False``), the
  profiler off (:data:`pamflow.flows.cluster.WORKER_CONFIG`) and
  :func:`pamflow.flows.cluster.lean_prefect_clients`, as ``build_dataset`` runs a local
  build.

The two alternate for ``--rounds``; the best round of each is shown, and the ratio.
A Prefect server on loopback (``prefect_test_harness``) is started before timing.

``--idle SECONDS`` measures instead what a warmed-up, idle LocalCluster of two workers
costs in SECONDS, with Dask's defaults and with :data:`pamflow.flows.cluster.WORKER_CONFIG`
(the event-loop tick, system monitor and memory monitor run less often): the CPU of this
process (scheduler and nannies) and of a worker.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from collections.abc import Callable

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # no network here


def _cpu() -> float:
    return time.process_time()


def _nothing(i: int) -> int:
    return i


def measure(tasks: int, pamflow: bool) -> tuple[float, float, float]:
    """(wall ms, worker CPU ms, flow process CPU ms) per task of ``tasks`` no-op tasks."""
    import dask
    import distributed  # noqa: F401  (its config defaults, before any is set)
    from prefect import flow, task

    from pamflow.flows import cluster

    cpu = task(_cpu, name="cpu")
    nothing = task(_nothing, name="nothing")

    @flow(name="task-overhead")
    def run() -> tuple[float, float, float]:
        for f in [nothing.submit(i) for i in range(3)]:
            f.result()
        t0, own = time.perf_counter(), time.process_time()
        c0 = cpu.submit().result()
        for i in range(tasks):
            nothing.submit(i).result()
        c1 = cpu.submit().result()
        return time.perf_counter() - t0, c1 - c0, time.process_time() - own

    from prefect_dask import DaskTaskRunner

    from pamflow.flows.runner import BuildTaskRunner

    config = cluster.cluster_config()
    # one worker process of pamflow's (a build of one worker runs it in the flow's process,
    # where a task's cost could not be told from the flow's)
    kwargs = {**cluster.local_cluster_kwargs(2), "n_workers": 1}
    runner_class = BuildTaskRunner
    if not pamflow:
        config = {k: v for k, v in config.items() if k not in cluster.WORKER_CONFIG}
        runner_class = DaskTaskRunner
    runner = runner_class(cluster_class="distributed.LocalCluster", cluster_kwargs=kwargs)
    lean = cluster.lean_prefect_clients() if pamflow else contextlib.nullcontext()
    with dask.config.set(config), lean:
        wall, worker, own = cluster.on_runner(run, runner)()
    return 1000 * wall / (tasks + 2), 1000 * worker / (tasks + 1), 1000 * own / (tasks + 2)


def idle(seconds: float, pamflow: bool) -> tuple[float, float]:
    """CPU seconds an idle LocalCluster of two workers takes in ``seconds``: this process's
    (the scheduler and both nannies) and a worker's (the mean of the two)."""
    import dask
    import distributed  # noqa: F401  (its config defaults, before any is set)
    import psutil
    from distributed import Client, LocalCluster

    from pamflow.flows import cluster

    config = cluster.cluster_config()
    if not pamflow:
        config = {k: v for k, v in config.items() if k not in cluster.WORKER_CONFIG}
    with dask.config.set(config), LocalCluster(**cluster.local_cluster_kwargs(2)) as local:
        with Client(local) as client:
            pids = list(client.run(os.getpid).values())
        time.sleep(2)  # started and settled
        procs = [psutil.Process()] + [psutil.Process(p) for p in pids]
        before = [sum(p.cpu_times()[:2]) for p in procs]
        time.sleep(seconds)
        used = [sum(p.cpu_times()[:2]) - b for p, b in zip(procs, before, strict=True)]
    return used[0], sum(used[1:]) / len(pids)


def best_of(rounds: int, run: Callable[[bool], tuple[float, ...]]) -> dict[bool, tuple[float, ...]]:
    """``run(pamflow)`` for Dask's and Prefect's defaults and for pamflow's, alternating for
    ``rounds``; each figure's lowest over the rounds, by setting."""
    best: dict[bool, tuple[float, ...]] = {}
    for _ in range(rounds):
        for pamflow in (False, True):
            now = run(pamflow)
            old = best.get(pamflow, (float("inf"),) * len(now))
            best[pamflow] = tuple(min(a, b) for a, b in zip(old, now, strict=True))
    return best


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--tasks", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--idle", type=float, default=0, metavar="SECONDS",
                    help="instead: the CPU an idle 2-worker cluster takes in SECONDS")  # fmt: skip
    args = ap.parse_args()
    if args.idle:
        spent = best_of(args.rounds, lambda pamflow: idle(args.idle, pamflow))
        print(f"| settings | this process's CPU s in {args.idle:g} s | a worker's CPU s |")
        print("|---|---:|---:|")
        for pamflow, name in ((False, "Dask's defaults"), (True, "pamflow")):
            print(f"| {name} | " + " | ".join(f"{v:.3f}" for v in spent[pamflow]) + " |")
        quotients = [
            a / b if b > 0 else float("inf") for a, b in zip(spent[False], spent[True], strict=True)
        ]
        ratios = " | ".join(f"{q:.2f}" for q in quotients)
        print(f"| defaults / pamflow | {ratios} |")
        return
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        best = best_of(args.rounds, lambda pamflow: measure(args.tasks, pamflow))
    print("| settings | wall ms a task | worker CPU ms a task | flow process CPU ms a task |")
    print("|---|---:|---:|---:|")
    for pamflow, name in ((False, "defaults"), (True, "pamflow")):
        print(f"| {name} | " + " | ".join(f"{v:.1f}" for v in best[pamflow]) + " |")
    ratios = " | ".join(f"{a / b:.2f}" for a, b in zip(best[False], best[True], strict=True))
    print(f"| defaults / pamflow | {ratios} |")


if __name__ == "__main__":
    main()
