"""A listening-test server killed (SIGKILL) while listeners are answering loses no
acknowledged answer; restarted on the same database, every listener resumes at the item
they were at and finishes their session."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time

import httpx
import pytest

from pamflow.datasets.listener import SimulatedListener
from pamflow.listen.client import Visitor

pytestmark = pytest.mark.integration
LISTENERS = 3
FIELDS = {"clip_seconds": 1.0, "families": ["white_noise", "eq", "mulaw"], "jnd": {"sequences": 1}}


def _answers(db, listener: int | None = None) -> list[tuple[int, int, int, int]]:
    """``(listener, position, item, answer)`` of every answered item."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return conn.execute(
            "SELECT listener_id, position, id, answer FROM items WHERE answer IS NOT NULL "
            "ORDER BY listener_id, position"
        ).fetchall()


def test_a_server_killed_mid_session_loses_no_answer(listen_server, tmp_path):
    server = listen_server("restart", **FIELDS)
    db = tmp_path / "restart.db"
    visitors: list[Visitor] = []

    async def answer_until_killed() -> None:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            visitors.extend(
                Visitor(client, SimulatedListener(0.5, 0.1, 0.0, k), seed=k)
                for k in range(LISTENERS)
            )
            for v in visitors:  # in order, so that listener ids follow the list
                await v.start()

            async def until_killed(v: Visitor) -> None:
                with contextlib.suppress(httpx.HTTPError, RuntimeError):
                    await v.run()

            await asyncio.gather(*(until_killed(v) for v in visitors))

    thread = threading.Thread(target=asyncio.run, args=(answer_until_killed(),))
    thread.start()
    deadline = time.monotonic() + 60
    while len(_answers(db)) < 4 * LISTENERS and time.monotonic() < deadline:
        time.sleep(0.05)
    server.kill()  # while answers are in flight
    thread.join(30)
    stored = _answers(db)
    assert 4 * LISTENERS <= len(stored) < 14 * LISTENERS  # killed mid-session
    for lid, v in enumerate(visitors, start=1):
        mine = [(item, answer) for who, _, item, answer in stored if who == lid]
        acked = [(item, answer) for item, _, answer in v.answered]
        # every acknowledged answer is there; at most the one in flight was stored unacknowledged
        assert mine[: len(acked)] == acked and len(mine) - len(acked) in (0, 1), lid

    server.start()  # the same port and database
    before = {lid: len([s for s in stored if s[0] == lid]) for lid in range(1, LISTENERS + 1)}

    async def resume() -> list[str]:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            out = []
            for lid, old in enumerate(visitors, start=1):
                v = Visitor(client, old.listener, seed=lid)
                v.link = old.link
                step = await v.page()  # where they were: the first item they had not answered
                with contextlib.closing(sqlite3.connect(db)) as conn:
                    (first,) = conn.execute(
                        "SELECT id FROM items WHERE listener_id = ? AND answer IS NULL "
                        "ORDER BY position LIMIT 1",
                        (lid,),
                    ).fetchone()
                    (position,) = conn.execute(
                        "SELECT position FROM items WHERE id = ?", (first,)
                    ).fetchone()
                assert step.item == first and position == before[lid]
                out.append(await v.run())
            return out

    assert asyncio.run(resume()) == ["done"] * LISTENERS
    final = _answers(db)
    assert len(final) == 14 * LISTENERS  # calibration, attention, 2 teaching, 10 questions each
    assert final[: len(stored)] == stored or set(stored) <= set(final)
    for lid in range(1, LISTENERS + 1):
        assert [p for who, p, _, _ in final if who == lid] == list(range(14))
