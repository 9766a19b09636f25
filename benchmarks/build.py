"""Build throughput: the same JND build in one plain process, and as the Prefect flow on a
LocalCluster of 1 and 2 workers, measured in one run (examples/s, and the ratios).

    python benchmarks/build.py [--num-examples 120] [--shard-size 20]

The flow runs against a temporary Prefect server started here (as in the tests), so the
figures include Prefect's task orchestration but not the server's start-up. The demo
corpus is built (or found in the cache) before timing starts.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from pamflow.corpus.sources import default_sources
from pamflow.pipeline import build

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # no network here


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--num-examples", type=int, default=120)
    ap.add_argument("--shard-size", type=int, default=20)
    ap.add_argument("--recipe", default="jnd")
    args = ap.parse_args()
    spec = {"num_examples": args.num_examples, "shard_size": args.shard_size}
    default_sources()
    from prefect.testing.utilities import prefect_test_harness

    from pamflow.flows import build_dataset

    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp, prefect_test_harness(server_startup_timeout=120):
        t0 = time.perf_counter()
        build.build_local(args.recipe, spec, str(Path(tmp) / "plain"))
        results["one plain process"] = time.perf_counter() - t0
        for workers in (1, 2):
            out = Path(tmp) / f"flow{workers}"
            t0 = time.perf_counter()
            build_dataset(args.recipe, spec, str(out), workers=workers)
            results[f"flow, {workers} worker{'s' if workers > 1 else ''}"] = (
                time.perf_counter() - t0
            )
            shutil.rmtree(out)
    base = results["one plain process"]
    print(f"{args.recipe}: {args.num_examples} examples, shards of {args.shard_size}")
    print(f"{'run':22} {'seconds':>8} {'examples/s':>11} {'vs plain':>9}")
    for name, secs in results.items():
        print(f"{name:22} {secs:8.1f} {args.num_examples / secs:11.2f} {base / secs:9.2f}")


if __name__ == "__main__":
    main()
