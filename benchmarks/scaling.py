"""Cost grows linearly: builds of 100, 1,000 and 3,000 rows, per-row cost and peak memory,
and an estimate of efficiency on 16 and 64 workers for a DPAM-scale build.

    python benchmarks/scaling.py [--sizes 100 1000 3000] [--recipe jnd] [--workers 2]

For each size:

* a plain process (``build_local``, in a fresh subprocess): CPU seconds per row and the
  process's peak RSS;
* the same rows in a warm process (a fresh subprocess that first builds as many rows of
  another seed, untimed): CPU seconds per row with imports, compiled kernels, loaded
  recordings and per-worker caches warm; and cold less warm, in seconds;
* the Prefect flow on a LocalCluster of ``--workers``: wall seconds per row, and each
  worker process's peak RSS (sampled every 0.2 s with psutil), whose largest is reported.

Per-row cost and peak memory should stay flat (within 15 %) across sizes: nothing in a build
may grow with the dataset but the dataset itself. A smaller build's rows are the first rows
of a larger one (shard for shard), so the flow's units also compare the same rows' cost in
a build of each size and in the largest: what a row costs, apart from which rows.

The estimate: the flow's work units at the largest size (their measured seconds) are
resampled to a 55,000-row build (DPAM's scale: shards of 100 rows, cut into
``UNITS_PER_WORKER`` units per worker) and scheduled, in submission order, on W workers, each
unit going to the first free worker, costliest first as the flow submits them (its cost
estimates taken as exact), and paying the measured per-unit overhead (flow wall time
times workers, less the units' own seconds, per unit); efficiency is the ideal time (the
units' total over W) over the scheduled makespan plus the measured start-up. A paper
estimate, from this machine's unit costs: real clusters add network and storage latency.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # no network here

_PLAIN = """
import json, resource, sys, time
from pamflow.pipeline import build
from pamflow.corpus.sources import default_sources
default_sources()
spec = json.loads(sys.argv[2])
if len(sys.argv) > 4:  # warm: as many rows of another seed first, untimed
    build.build_local(sys.argv[1], {**spec, "seed": 99991}, sys.argv[4])
t = time.process_time()
build.build_local(sys.argv[1], spec, sys.argv[3])
print(json.dumps({"cpu": time.process_time() - t,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def plain(recipe: str, spec: dict[str, Any], out: str, warm: str = "") -> dict[str, float]:
    """CPU seconds and peak RSS of ``build_local`` in a fresh process; with ``warm`` (a
    folder) after an untimed build of as many rows of another seed there."""
    proc = subprocess.run(
        [sys.executable, "-c", _PLAIN, recipe, json.dumps(spec), out, *([warm] if warm else [])],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


class PeakRss:
    """Peak RSS of each child process of this one, sampled in a thread."""

    def __init__(self) -> None:
        import psutil

        self.me = psutil.Process()
        self.peaks: dict[int, float] = {}
        self.names: dict[int, str] = {}
        self.parents: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        while not self._stop.wait(0.2):
            for p in self.me.children(recursive=True):
                try:
                    rss = p.memory_info().rss / 2**20
                    self.names.setdefault(p.pid, " ".join(p.cmdline())[:200])
                    self.parents.setdefault(p.pid, p.ppid())
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
                self.peaks[p.pid] = max(self.peaks.get(p.pid, 0.0), rss)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def workers(self) -> list[float]:
        """Peaks of Dask's worker processes: spawned by the nannies, or forked by the fork
        server (whose children they are)."""
        servers = {pid for pid, name in self.names.items() if "forkserver" in name}
        return [
            v
            for pid, v in self.peaks.items()
            if "spawn_main" in self.names.get(pid, "") or self.parents.get(pid) in servers
        ]


def flow(recipe: str, spec: dict[str, Any], out: str, workers: int) -> dict[str, Any]:
    from pamflow.flows import build_dataset

    units: list[dict[str, Any]] = []
    with PeakRss() as rss:
        t0 = time.time()
        build_dataset(recipe, spec, out, workers=workers, on_shard=units.append)
        end = time.time()
    made = [u for u in units if "started" in u and not u.get("skipped")]
    first = min(u["started"] for u in made)
    secs = [u["ended"] - u["started"] for u in made]
    by_shard: dict[int, float] = {}
    for u, sec in zip(made, secs, strict=True):
        by_shard[u["index"]] = by_shard.get(u["index"], 0.0) + sec
    return {
        "by_shard": by_shard,
        "seconds": end - t0,
        "start-up": first - t0,
        "work": end - first,
        "units": secs,
        "worker_rss_mb": max(rss.workers(), default=float("nan")),
    }


def schedule(costs: np.ndarray, workers: int, overhead: float) -> float:
    """Makespan of ``costs`` run in order, each on the first free worker."""
    free = np.zeros(workers)
    for c in costs:
        k = int(np.argmin(free))
        free[k] += c + overhead
    return float(free.max())


def estimate(rows_per_unit: float, units: list[float], overhead: float,
             startup: float) -> list[tuple[int, float]]:  # fmt: skip
    rng = np.random.default_rng(0)
    rows = 55_000
    out = []
    for w in (16, 64):
        n_units = max(550, 8 * w)  # shards of 100 rows, or 8 units per worker if more
        # resample the measured units, scaled to this unit size
        scale = (rows / n_units) / rows_per_unit
        costs = rng.choice(np.asarray(units), size=n_units) * scale
        costs = np.sort(costs)[::-1]  # submitted costliest first, as the flow does
        ideal = costs.sum() / w
        out.append((w, ideal / (schedule(costs, w, overhead) + startup)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 3000])
    ap.add_argument("--recipe", default="jnd")
    ap.add_argument("--shard-size", type=int, default=100)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    from prefect.testing.utilities import prefect_test_harness

    from pamflow.corpus.sources import default_sources
    from pamflow.flows.cluster import prestart

    prestart()  # as `pamflow build` does first: the fork server imports while this goes on
    default_sources()
    rows = []
    with tempfile.TemporaryDirectory() as tmp, prefect_test_harness(server_startup_timeout=120):
        for n in args.sizes:
            spec = {"num_examples": n, "shard_size": args.shard_size}
            p = plain(args.recipe, spec, str(Path(tmp) / f"plain{n}"))
            w = plain(args.recipe, spec, str(Path(tmp) / f"warm{n}"), str(Path(tmp) / f"pre{n}"))
            f = flow(args.recipe, spec, str(Path(tmp) / f"flow{n}"), args.workers)
            rows.append((n, p, w, f))
            print(f"{n} rows: plain {1000 * p['cpu'] / n:.1f} CPU ms/row, {p['rss_mb']:.0f} MB; "
                  f"warm {1000 * w['cpu'] / n:.1f}; flow {1000 * f['seconds'] / n:.1f} wall "
                  f"ms/row, worker peak {f['worker_rss_mb']:.0f} MB", flush=True)  # fmt: skip
    base = rows[-1]
    print("\n| rows | plain CPU ms/row | vs largest | warm CPU ms/row | vs largest | cold less warm "
          "(s) | plain peak RSS (MB) | flow wall ms/row (2 workers) | worker peak RSS (MB) | "
          "vs largest |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n, p, w, f in rows:
        per, warm = p["cpu"] / n, w["cpu"] / n
        print(f"| {n} | {1000 * per:.1f} | {per / (base[1]['cpu'] / base[0]):.2f} | "
              f"{1000 * warm:.1f} | {warm / (base[2]['cpu'] / base[0]):.2f} | "
              f"{p['cpu'] - w['cpu']:.1f} | {p['rss_mb']:.0f} | {1000 * f['seconds'] / n:.1f} | "
              f"{f['worker_rss_mb']:.0f} | {f['worker_rss_mb'] / base[3]['worker_rss_mb']:.2f} |")  # fmt: skip
    print("\nThe same rows in the largest build (a build's shards are its first rows, the same in "
          "every size): the flow's units, ms a row")  # fmt: skip
    print("\n| rows | this build | the same rows in the largest | ratio |")
    print("|---:|---:|---:|---:|")
    for n, _, _, f in rows:
        own = sum(f["by_shard"].values()) / n
        same = sum(base[3]["by_shard"][i] for i in f["by_shard"]) / n
        print(f"| {n} | {1000 * own:.1f} | {1000 * same:.1f} | {own / same:.2f} |")
    n, p, _, f = base
    busy = sum(f["units"])
    overhead = max(0.0, (f["work"] * args.workers - busy) / len(f["units"]))
    rows_per_unit = n / len(f["units"])
    print(f"\nmeasured at {n} rows: {len(f['units'])} units of {rows_per_unit:.0f} rows, "
          f"unit p50 {np.median(f['units']):.2f} s, max {max(f['units']):.2f} s; "
          f"overhead {overhead:.3f} s per unit; start-up {f['start-up']:.1f} s")  # fmt: skip
    print("\n| workers | estimated efficiency, 55,000-row JND build |")
    print("|---:|---:|")
    for w, eff in estimate(rows_per_unit, f["units"], overhead, f["start-up"]):
        print(f"| {w} | {100 * eff:.0f} % |")


if __name__ == "__main__":
    main()
