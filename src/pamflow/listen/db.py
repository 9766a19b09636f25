"""The campaign database: three tables, SQLAlchemy Core, any SQLAlchemy URL.

``campaigns`` holds each campaign's plan (its digest is checked when a server starts),
``listeners`` one row per session (the sha256 of its link's token, never the token;
exclusion flags; the closing comment), ``items`` one row per thing a listener is asked
(calibration, attention check, teaching examples, questions): its exact params and seed,
written when it is asked, and the answer, written in the same row when it arrives.

Writes are transactions: an answer, the flags it raises and the next item are committed
together, before the listener is answered, so a server killed at any point has either
all of them or none, and the listener resumes at the first unanswered item.

SQLite (the default, one file) runs in WAL mode with ``synchronous=FULL`` (a committed
answer is on disk). Reads (:meth:`Database.read`, ``sqlite+aiosqlite``) run in parallel,
each on a snapshot; the writes of a process (:meth:`Database.write`) run one at a time,
each transaction whole in one worker thread on the standard ``sqlite3`` driver, from
``BEGIN IMMEDIATE`` to ``COMMIT``. PostgreSQL
(``postgresql+asyncpg``) and other servers take a row lock on the listener
(``SELECT ... FOR UPDATE``), so that several hosts may serve one campaign. Plain
``sqlite:///`` and ``postgresql://`` URLs get those async drivers.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, TypeVar

import anyio
import sqlalchemy as sa
from anyio import to_thread
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

T = TypeVar("T")
metadata = sa.MetaData()

campaigns = sa.Table(
    "campaigns",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("plan_digest", sa.String(32), nullable=False),
    sa.Column("plan", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

listeners = sa.Table(
    "listeners",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("campaign", sa.String(64), sa.ForeignKey("campaigns.name"), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("excluded", sa.Boolean, nullable=False, default=False),
    sa.Column("exclusion", sa.Text, nullable=False, default=""),
    sa.Column("comment", sa.Text),
)

items = sa.Table(
    "items",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("listener_id", sa.Integer, sa.ForeignKey("listeners.id"), nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("phase", sa.String(16), nullable=False),
    sa.Column("sequence", sa.Integer),
    sa.Column("query", sa.Integer),
    sa.Column("sentinel", sa.String(16)),
    sa.Column("strength", sa.Float),
    sa.Column("seed", sa.BigInteger, nullable=False),
    sa.Column("params", sa.Text, nullable=False),
    sa.Column("expected", sa.Integer),
    sa.Column("answer", sa.Integer),
    sa.Column("correct", sa.Boolean),
    sa.Column("plays", sa.Integer),
    sa.Column("response_ms", sa.Integer),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("answered_at", sa.DateTime(timezone=True)),
    sa.UniqueConstraint("listener_id", "position", name="one_item_per_position"),
)


def run_async(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from synchronous code, inside a running loop or not."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


class DatabaseError(ValueError):
    """A database URL that cannot be used, or a database holding another plan."""


def async_url(url: str) -> str:
    """``url`` with an async driver: ``sqlite:///`` -> ``sqlite+aiosqlite:///``,
    ``postgresql://`` -> ``postgresql+asyncpg://``; others as they are."""
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError as e:
        raise DatabaseError(f"database: {url!r} is not an SQLAlchemy URL ({e})") from None
    name = parsed.drivername
    if name == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif name in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed.render_as_string(hide_password=False)


def shown_url(url: str) -> str:
    """The URL without its password, for messages and pages."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "(not a URL)"


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Database:
    """The engines and the transaction discipline of the module docstring: :meth:`read`
    for snapshots, :meth:`write` for everything that changes the database."""

    def __init__(self, url: str) -> None:
        self.url = async_url(url)
        self.sqlite = self.url.startswith("sqlite")
        kwargs: dict[str, Any] = {}
        if self.sqlite:
            kwargs["connect_args"] = {"timeout": 30, "isolation_level": None}
        else:
            kwargs.update(pool_size=10, max_overflow=20, pool_pre_ping=True)
        try:
            self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
            self.sync_engine: sa.Engine | None = None
            if self.sqlite:  # writes: one at a time, each whole in one thread (see write)
                sync_url = self.url.replace("sqlite+aiosqlite", "sqlite", 1)
                self.sync_engine = sa.create_engine(
                    sync_url,
                    connect_args={
                        "timeout": 30,
                        "isolation_level": None,
                        "check_same_thread": False,
                    },
                )
        except (sa.exc.ArgumentError, ImportError) as e:
            raise DatabaseError(f"database {shown_url(url)}: {e}") from None
        self._writer: anyio.CapacityLimiter | None = None
        if self.sync_engine is not None:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
            event.listen(self.engine.sync_engine, "begin", _sqlite_read)
            event.listen(self.sync_engine, "connect", _sqlite_pragmas)
            event.listen(self.sync_engine, "begin", _sqlite_begin)

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A transaction that only reads: on SQLite a snapshot (WAL) that neither waits
        for the writer nor holds it up."""
        async with self.engine.begin() as conn:
            yield conn

    async def write(self, fn: Callable[[sa.Connection], T]) -> T:
        """``fn(connection)`` in one transaction, committed when it returns, rolled back
        if it raises. On SQLite the writes of a process run one at a time, each whole in
        a worker thread (``BEGIN IMMEDIATE`` ... ``COMMIT`` without a hop per statement);
        elsewhere ``fn`` runs on the async driver through :meth:`AsyncConnection.run_sync`."""
        if self.sync_engine is None:
            async with self.engine.begin() as conn:
                return await conn.run_sync(fn)
        if self._writer is None:
            self._writer = anyio.CapacityLimiter(1)
        return await to_thread.run_sync(self._write_sqlite, fn, limiter=self._writer)

    def _write_sqlite(self, fn: Callable[[sa.Connection], T]) -> T:
        assert self.sync_engine is not None
        with self.sync_engine.begin() as conn:
            return fn(conn)

    async def create(self) -> None:
        await self.write(metadata.create_all)

    async def register(self, name: str, kind: str, digest: str, plan: str) -> None:
        """Record the campaign's plan, or check it against the one recorded."""

        def check(conn: sa.Connection) -> None:
            row = conn.execute(sa.select(campaigns).where(campaigns.c.name == name)).first()
            if row is None:
                conn.execute(
                    campaigns.insert().values(
                        name=name, kind=kind, plan_digest=digest, plan=plan, created_at=now()
                    )
                )
            elif row.plan_digest != digest:
                raise DatabaseError(
                    f"database {shown_url(self.url)} holds campaign {name!r} with another plan "
                    f"(digest {row.plan_digest}, the campaign file's is {digest}): a running "
                    "campaign keeps its plan; give the changed one a new name or database"
                )

        await self.write(check)

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.sync_engine is not None:
            self.sync_engine.dispose()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cur = dbapi_connection.cursor()
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON", "busy_timeout=30000"):
        cur.execute(f"PRAGMA {pragma}")
    cur.close()


def _sqlite_begin(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _sqlite_read(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN")


__all__ = [
    "Database",
    "DatabaseError",
    "async_url",
    "campaigns",
    "items",
    "listeners",
    "metadata",
    "now",
    "run_async",
    "shown_url",
]
