"""What a ``pamflow build`` command costs beyond its rows: the real executable, timed from
start to exit, on a build small enough that start-up and shut-down are most of it.

    python benchmarks/startup.py [--num-examples 8] [--workers 2] [--rounds 3]
                                 [--baseline-src PATH]

Three ways to run the same build, alternating, ``--rounds`` times each:

* ``--local``: one plain process, no Prefect and no Dask (the baseline);
* the flow on a LocalCluster of ``--workers``, with a temporary Prefect server: what a user
  without ``PREFECT_API_URL`` runs (the README's first command);
* the same with a lasting server (started here first, as ``prefect server start`` is).

Each row shows the fastest and the median round and the extra seconds over the baseline's
fastest. ``--baseline-src PATH`` runs every way a second time with another source tree
first on ``PYTHONPATH`` (an older checkout's ``src``), in the same rounds, so that a change
is measured against what it replaces in one run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # no network here
PAMFLOW = str(Path(sys.executable).with_name("pamflow"))


def run(argv: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    done = subprocess.run([PAMFLOW, *argv], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"pamflow {' '.join(argv)} failed:\n{done.stderr[-2000:]}")
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--num-examples", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--baseline-src", default=None)
    args = ap.parse_args()
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    from pamflow.corpus.sources import default_sources

    default_sources()  # the demo corpus, made once before timing
    bare = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    trees: dict[str, str | None] = {"this tree": None}
    if args.baseline_src:
        trees["baseline"] = args.baseline_src
    ways = ["--local", "temporary server", "lasting server"]
    times: dict[tuple[str, str], list[float]] = {(t, w): [] for t in trees for w in ways}
    with tempfile.TemporaryDirectory() as tmp, prefect_test_harness(server_startup_timeout=120):
        lasting = str(PREFECT_API_URL.value())
        for _ in range(args.rounds):
            for tree, src in trees.items():
                for way in ways:
                    env = dict(bare)
                    if src:
                        env["PYTHONPATH"] = src
                    if way == "lasting server":
                        env["PREFECT_API_URL"] = lasting
                    out = str(Path(tmp) / "ds")
                    argv = ["build", "jnd", "--out", out, "--num-examples",
                            str(args.num_examples), "--shard-size", "4"]  # fmt: skip
                    argv += ["--local"] if way == "--local" else ["--workers", str(args.workers)]
                    times[tree, way].append(run(argv, env))
                    shutil.rmtree(out)
    base = min(times["this tree", "--local"])
    print(f"| source | run ({args.num_examples} rows) | fastest (s) | median (s) | "
          "over --local (s) |")  # fmt: skip
    print("|---|---|---:|---:|---:|")
    for tree in trees:
        for way in ways:
            t = times[tree, way]
            print(
                f"| {tree} | {way} | {min(t):.2f} | {statistics.median(t):.2f} | "
                f"{min(t) - base:+.2f} |"
            )


if __name__ == "__main__":
    main()
