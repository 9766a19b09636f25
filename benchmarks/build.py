"""Build throughput and scaling: the same build in one plain process, and as the Prefect
flow on a LocalCluster of 1 and 2 workers, in one run (examples/s and the ratios), with
where the flow's time goes.

    python benchmarks/build.py [--num-examples 400 2000] [--shard-size 100] [--recipe jnd]
                               [--temporary-server] [--units-per-worker N] [--rounds N]

For each size: the plain process (``build_local``), then the flow on 1 and on 2 workers.
Per flow run it prints

* **start-up**: from calling ``build_dataset`` to the first work unit starting on a worker
  (the LocalCluster's start and its workers' warm-up, the flow run's creation);
* **units p50 / p95 / max**: seconds of the work units (shards, or pieces of them);
* **idle**: worker-seconds without a unit to run between the first unit's start and the
  last one's end, as a share of the workers' time in that span.

By default a Prefect server is started before timing (``prefect_test_harness``), as for
a user who runs one (a service, or ``prefect server start``): the flow figures then leave
out the server's start-up. ``--temporary-server`` times what ``pamflow build`` does
without one: it starts a temporary server itself, while its LocalCluster starts.
The demo corpus is built (or found in the cache) before timing starts. Workers fork
from a fork server started first, as ``pamflow build`` starts it, whose imports are done by
the time the first flow runs (pamflow's default); with ``PAMFLOW_WORKER_START=spawn`` each
is a fresh interpreter. ``--units-per-worker`` sets how many work units a build is cut into per
worker (default :data:`pamflow.flows.build.UNITS_PER_WORKER`).
With ``--rounds N`` the plain build and the flows alternate N times and each row shows its
fastest round (this VM's timings move 10-20 % from one run to the next, the plain
process's as much as the flows').
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pamflow.corpus.sources import default_sources
from pamflow.pipeline import build

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # no network here


def _quantile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def flow_run(recipe: str, spec: dict[str, Any], out: Path, workers: int) -> dict[str, float]:
    from pamflow.flows import build_dataset

    units: list[dict[str, Any]] = []
    t0 = time.time()
    build_dataset(recipe, spec, str(out), workers=workers, on_shard=units.append)
    end = time.time()
    made = [u for u in units if "started" in u and not u.get("skipped")]
    first = min(u["started"] for u in made)
    last = max(u["ended"] for u in made)
    busy = sum(u["ended"] - u["started"] for u in made)
    secs = [u["ended"] - u["started"] for u in made]
    span = workers * (last - first)
    return {
        "seconds": end - t0,
        "start-up": first - t0,
        "units": len(made),
        "p50": statistics.median(secs),
        "p95": _quantile(secs, 0.95),
        "max": max(secs),
        "idle": (span - busy) / span if span > 0 else 0.0,
    }


@contextlib.contextmanager
def server(temporary: bool) -> Iterator[None]:
    if temporary:
        yield
        return
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--num-examples", type=int, nargs="+", default=[400, 2000])
    ap.add_argument("--shard-size", type=int, default=100)
    ap.add_argument("--recipe", default="jnd")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--temporary-server", action="store_true")
    ap.add_argument("--units-per-worker", type=int, default=None)
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()
    from pamflow.flows import build as flows_build
    from pamflow.flows.cluster import prestart

    if args.units_per_worker:
        flows_build.UNITS_PER_WORKER = args.units_per_worker
    prestart()  # as `pamflow build` does first: the fork server imports while this goes on
    default_sources()
    print("| rows | run | seconds | examples/s | vs plain | start-up (s) | units | "
          "unit p50 / p95 / max (s) | idle |")  # fmt: skip
    print("|---:|---|---:|---:|---:|---:|---:|---|---:|")
    with tempfile.TemporaryDirectory() as tmp, server(args.temporary_server):
        for n in args.num_examples:
            spec = {"num_examples": n, "shard_size": args.shard_size}
            base = float("inf")
            best: dict[int, dict[str, float]] = {}
            for _ in range(args.rounds):  # plain and flows alternate; each keeps its fastest
                t0 = time.perf_counter()
                build.build_local(args.recipe, spec, str(Path(tmp) / f"plain{n}"))
                base = min(base, time.perf_counter() - t0)
                shutil.rmtree(Path(tmp) / f"plain{n}")
                for workers in args.workers:
                    out = Path(tmp) / f"flow{n}-{workers}"
                    r = flow_run(args.recipe, spec, out, workers)
                    shutil.rmtree(out)
                    if workers not in best or r["seconds"] < best[workers]["seconds"]:
                        best[workers] = r
            print(f"| {n} | one plain process | {base:.1f} | {n / base:.1f} | 1.00 | | | | |",
                  flush=True)  # fmt: skip
            for workers in args.workers:
                r = best[workers]
                print(
                    f"| {n} | flow, {workers} worker{'s' if workers > 1 else ''} | "
                    f"{r['seconds']:.1f} | {n / r['seconds']:.1f} | {base / r['seconds']:.2f} | "
                    f"{r['start-up']:.1f} | {r['units']:.0f} | {r['p50']:.2f} / {r['p95']:.2f} / "
                    f"{r['max']:.2f} | {100 * r['idle']:.0f} % |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
