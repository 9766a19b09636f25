"""Load on a listening-test server: N simulated listeners take a JND test at once.

Starts `pamflow listen serve` (a subprocess, as a user does) on a fresh campaign, runs
:func:`pamflow.listen.client.load` against it on loopback (each listener fetches its pages
and audio, decides from the audio, posts its answers, pausing ``--think`` seconds on
average before each), stops at the deadline, then compares every acknowledged answer with
the database: answers lost (acknowledged but not stored) must be 0. Prints a markdown
table of response times (p50, p95 by kind of request)::

    .venv/bin/python benchmarks/listen_load.py --listeners 50 --seconds 60 --think 0.5
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

from pamflow.listen.client import load


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--listeners", type=int, default=50)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--think", type=float, default=0.5, help="mean pause before each answer, s")
    p.add_argument("--clip-seconds", type=float, default=2.5)
    p.add_argument(
        "--families", default="white_noise,pink_noise,reverb_drr,mp3,mulaw,eq,pops,dropouts"
    )
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="pamflow-listen-load-") as tmp:
        folder = Path(tmp)
        campaign = folder / "load.yaml"
        campaign.write_text(
            yaml.safe_dump(
                {
                    "name": "load",
                    "clip_seconds": args.clip_seconds,
                    "families": args.families.split(","),
                }
            )
        )
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "pamflow"),
                "listen",
                "serve",
                "--campaign",
                str(campaign),
                "--port",
                str(port),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        try:
            for _ in range(600):
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{url}/healthz").status_code == 200:
                        break
                time.sleep(0.1)
            load_before = os.getloadavg()[0]
            result = asyncio.run(load(url, args.listeners, args.seconds, think=args.think))
            load_after = os.getloadavg()[0]
        finally:
            server.terminate()
            server.wait(30)
        with contextlib.closing(sqlite3.connect(folder / "load.db")) as db:
            stored = set(db.execute("SELECT id, answer FROM items WHERE answer IS NOT NULL"))
    acked = {(item, value) for v in result.visitors for item, _, value in v.answered}
    lost = len(acked - stored)
    print(
        f"{args.listeners} listeners, {result.seconds:.0f} s, think {args.think:g} s, "
        f"clips {args.clip_seconds:g} s: {result.answers} answers "
        f"({result.answers / result.seconds:.1f}/s), answers lost: {lost}, HTTP errors: "
        f"{result.errors()}, requests sent again: {result.retries()}, load average "
        f"{load_before:.1f} -> {load_after:.1f} ({os.cpu_count()} CPUs)\n"
    )
    print("| requests | count | p50 ms | p95 ms |\n|---|---:|---:|---:|")
    for kind in ("answer", "page", "audio", None):
        n = sum(1 for k, _, _ in result.timings if kind is None or k == kind)
        p50, p95 = result.percentile(50, kind), result.percentile(95, kind)
        print(f"| {kind or 'all'} | {n} | {1000 * p50:.0f} | {1000 * p95:.0f} |")
    return 1 if lost or result.errors() else 0


if __name__ == "__main__":
    sys.exit(main())
