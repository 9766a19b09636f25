"""Fixtures of the listening-test tests: small campaigns, a real uvicorn server on
127.0.0.1 (in a thread of the test process), an oracle for the attention check."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pamflow.flows.server import free_port

#: small and fast: 1 s clips of three cheap families
TINY = {"clip_seconds": 1.0, "families": ["white_noise", "eq", "mulaw"]}
ADMIN = "admin-token-for-the-tests-0123456789"


@contextlib.contextmanager
def serving(app: Any) -> Iterator[str]:
    """``app`` served by uvicorn on a free port of 127.0.0.1; yields its base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


@pytest.fixture
def make_campaign(tmp_path, demo_corpus) -> Callable[..., Any]:
    """``make_campaign(name, **fields)``: a campaign whose database is in ``tmp_path``."""
    from pamflow.listen.campaign import parse_campaign

    def make(name: str = "t", **fields: Any) -> Any:
        return parse_campaign({"name": name, **TINY, **fields}, tmp_path)

    return make


def attention_oracle(database: str) -> Callable[[int, list[str]], int]:
    """The right word of an attention item, read from the campaign's SQLite file (what a
    person who heard the sentence knows)."""
    path = database.removeprefix("sqlite:///")

    def right(item: int, choices: list[str]) -> int:
        with contextlib.closing(sqlite3.connect(path)) as db:
            expected, params = db.execute(
                "SELECT expected, params FROM items WHERE id = ?", (item,)
            ).fetchone()
        assert json.loads(params)["choices"] == choices  # the page showed the item's words
        return int(expected)

    return right


def db_rows(database: str, sql: str, *args: Any) -> list[tuple]:
    with contextlib.closing(sqlite3.connect(database.removeprefix("sqlite:///"))) as db:
        return db.execute(sql, args).fetchall()


@pytest.fixture(scope="session")
def serve() -> Callable[[Any], contextlib.AbstractContextManager[str]]:
    """``with serve(app) as url``: the app on a real uvicorn server."""
    return serving


@pytest.fixture(scope="session")
def oracle() -> Callable[[str], Callable[[int, list[str]], int]]:
    return attention_oracle


@pytest.fixture(scope="session")
def query() -> Callable[..., list[tuple]]:
    """``query(database_url, sql, *args)``: rows of the campaign's SQLite file."""
    return db_rows
