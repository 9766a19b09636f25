"""A campaign kept in PostgreSQL (a temporary cluster started here; skipped where the
PostgreSQL server binaries are not installed): four listeners answer at once on two
servers sharing the database, as two hosts would, and the export reads it back."""

from __future__ import annotations

import asyncio
import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from pamflow.datasets.listener import SimulatedListener
from pamflow.flows.server import free_port
from pamflow.listen.app import create_app
from pamflow.listen.client import Visitor
from pamflow.listen.export import export_campaign
from pamflow.storage import Dataset


def _binaries() -> Path | None:
    for found in [shutil.which("initdb"), *sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))]:
        if found and Path(found).with_name("postgres").exists():
            return Path(found).parent
    return None


BIN = _binaries()
pytestmark = pytest.mark.skipif(BIN is None, reason="PostgreSQL server binaries are not installed")


def _as_owner(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run as the `postgres` user then."""
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]


@pytest.fixture(scope="module")
def postgres():
    # its own folder: pytest's are private to root, where the server runs as `postgres`
    root = Path(tempfile.mkdtemp(prefix="pamflow-pg-"))
    data = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    assert BIN is not None
    subprocess.run(
        _as_owner(
            [str(BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "pamflow", "--no-sync"]
        ),
        check=True,
        capture_output=True,
    )
    port = free_port()
    server = subprocess.Popen(
        _as_owner(
            [
                str(BIN / "postgres"),
                "-D",
                str(data),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-k",
                str(root),
                "-c",
                "fsync=off",
            ]
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        import asyncpg

        async def create() -> None:
            for _ in range(100):
                try:
                    conn = await asyncpg.connect(f"postgresql://pamflow@127.0.0.1:{port}/postgres")
                    break
                except (OSError, asyncpg.PostgresError):
                    await asyncio.sleep(0.1)
            else:
                raise RuntimeError("PostgreSQL did not start")
            await conn.execute("CREATE DATABASE listen")
            await conn.close()

        asyncio.run(create())
        yield f"postgresql://pamflow@127.0.0.1:{port}/listen"
    finally:
        server.terminate()
        server.wait(30)
        shutil.rmtree(root, ignore_errors=True)


def test_two_servers_share_one_postgresql_campaign(postgres, tmp_path, demo_corpus, serve):
    from pamflow.listen.campaign import parse_campaign

    fields = {"clip_seconds": 1.0, "families": ["white_noise", "eq"], "jnd": {"sequences": 1}}
    c = parse_campaign({"name": "pg", "database": postgres, **fields}, tmp_path)

    async def four(urls: list[str]) -> list[Visitor]:
        clients = [httpx.AsyncClient(base_url=u, timeout=60) for u in urls]
        visitors = [
            Visitor(clients[k % 2], SimulatedListener(0.5, 0.1, 0.0, k), seed=k) for k in range(4)
        ]
        try:
            await asyncio.gather(*(v.run() for v in visitors))
        finally:
            for cl in clients:
                await cl.aclose()
        return visitors

    t0 = time.monotonic()
    with serve(create_app(c)) as one, serve(create_app(c)) as two:
        visitors = asyncio.run(four([one, two]))
    assert all(len(v.answered) == 14 for v in visitors)
    summary = export_campaign(c, str(tmp_path / "out"), include_excluded=True)
    assert summary["listeners"] == 4 and summary["answers"] == 4 * 8 == summary["rows"]
    table = Dataset.open(str(tmp_path / "out")).to_table(["listener", "label", "query"])
    assert sorted(set(table.column("listener").to_pylist())) == ["L0001", "L0002", "L0003", "L0004"]
    print(f"PostgreSQL: 4 listeners, 56 answers on two servers in {time.monotonic() - t0:.1f} s")
