"""Load on loopback: 50 simulated listeners take the JND test at once against
`pamflow listen serve` for a bounded time (each fetching its pages and audio and posting
answers, with short pauses), then every acknowledged answer is checked in the database:
nothing lost, nothing extra. The response times are printed (p50, p95 per kind of
request); ``benchmarks/listen_load.py`` runs the same load for longer and writes the
README's figures."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3

import pytest

from pamflow.listen.client import load

pytestmark = pytest.mark.integration
LISTENERS, SECONDS = 50, 6.0
FIELDS = {"clip_seconds": 1.0, "families": ["white_noise", "eq", "mulaw"]}


def test_fifty_listeners_at_once_lose_nothing(listen_server, tmp_path):
    server = listen_server("load", **FIELDS)
    result = asyncio.run(load(server.url, LISTENERS, SECONDS, think=0.3, seed=11))
    with contextlib.closing(sqlite3.connect(tmp_path / "load.db")) as db:
        stored = db.execute("SELECT id, answer FROM items WHERE answer IS NOT NULL").fetchall()
        sessions = db.execute("SELECT count(*) FROM listeners").fetchone()[0]
    acked = [(item, value) for v in result.visitors for item, _, value in v.answered]
    assert sessions == LISTENERS and result.errors() == 0
    assert len(acked) == len(set(acked)) and sorted(acked) == sorted(stored)  # nothing lost
    assert result.answers >= LISTENERS  # about one answer each at least, however busy the machine
    lines = [
        f"{LISTENERS} listeners, {SECONDS:g} s: {result.answers} answers "
        f"({result.answers / result.seconds:.1f}/s), answers lost: {len(acked) - len(stored)}, "
        f"requests sent again after a dropped connection: {result.retries()}"
    ]
    for kind in ("answer", "page", "audio", None):
        p50, p95 = result.percentile(50, kind), result.percentile(95, kind)
        lines.append(
            f"  {kind or 'all requests'}: p50 {1000 * p50:.0f} ms, p95 {1000 * p95:.0f} ms"
        )
        assert p95 < 10.0, lines  # generous: a shared CI machine; the README has the figures
    print("\n".join(lines))
