"""Sessions in the database: enrolling a listener, the item they are at, an answer.

A listener's link carries a token (``secrets.token_urlsafe(32)``: 256 random bits); the
database keeps its sha256 only. Everything a request may touch is found from the token,
so a listener reaches their own items only, and answers only the item they are at.

Answering (:func:`answer`) reads the listener's state, works out the next item outside
any lock (the JND strength from the sequence's answers, this one included), then in one
transaction: checks that the item is still the one they are at, writes the answer and
whether it was right (attention check, teaching, sentinels), flags the listener when an
attention check or a sentinel is missed (kept, excluded from exports), and inserts the
next item. Sending the same answer again is harmless (the first one stands); another
answer to an answered item, or to an item not yet asked, is refused.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import secrets
from typing import Any

import sqlalchemy as sa
from anyio import to_thread

from pamflow.listen.db import Database, items, listeners, now
from pamflow.listen.plan import ATTENTION, ATTENTION_CHOICES, CALIBRATION, QUESTION, Item, Planner

TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")
#: the longest closing comment kept, in characters
MAX_COMMENT = 2000


class SessionError(ValueError):
    """A request a session refuses: ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def pseudonym(listener_id: int) -> str:
    """A listener's name in pages and exports: ``L0007`` (their order of arrival)."""
    return f"L{listener_id:04d}"


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What an answer did: whether it was right (where known), the item it answered,
    whether it was a repeat of an answer already stored."""

    item_id: int
    phase: str
    correct: bool | None
    expected: int | None
    repeated: bool = False
    #: the params of the item asked next (None: none, or a repeated answer)
    next_params: dict[str, Any] | None = None


async def enroll(db: Database, planner: Planner, campaign: str, limit: int) -> tuple[int, str]:
    """A new listener of ``campaign`` with their first item; ``(id, token)``. Refused once
    ``limit`` listeners have started."""
    token = secrets.token_urlsafe(32)

    def write(conn: sa.Connection) -> int:
        count = conn.scalar(
            sa.select(sa.func.count())
            .select_from(listeners)
            .where(listeners.c.campaign == campaign)
        )
        if int(count or 0) >= limit:
            raise SessionError("this test is full: no more sessions can start", 403)
        key = conn.execute(
            listeners.insert().values(
                campaign=campaign,
                token_hash=token_hash(token),
                created_at=now(),
                excluded=False,
                exclusion="",
            )
        ).inserted_primary_key
        assert key is not None
        lid = int(key[0])
        first = planner.item(lid, 0)  # the calibration: nothing to compute
        assert first is not None
        conn.execute(items.insert().values(**_row(lid, first)))
        return lid

    return await db.write(write), token


def _row(listener_id: int, item: Item) -> dict[str, Any]:
    return {
        "listener_id": listener_id,
        "position": item.position,
        "phase": item.phase,
        "sequence": item.sequence,
        "query": item.query,
        "sentinel": item.sentinel,
        "strength": item.strength,
        "seed": item.seed,
        "params": json.dumps(item.params, sort_keys=True),
        "expected": item.expected,
        "created_at": now(),
    }


async def find_listener(db: Database, campaign: str, token: str) -> Any:
    """The listener row of ``token`` (``SessionError`` 404 for anything else)."""
    async with db.read() as conn:
        return await _listener(conn, campaign, token)


async def _listener(conn: Any, campaign: str, token: str) -> Any:
    if not TOKEN.fullmatch(token):
        raise SessionError("no such session", 404)
    row = (
        await conn.execute(
            sa.select(listeners).where(
                listeners.c.token_hash == token_hash(token), listeners.c.campaign == campaign
            )
        )
    ).first()
    if row is None:
        raise SessionError("no such session", 404)
    return row


@dataclasses.dataclass(frozen=True)
class State:
    """Where a listener is: their row, the item they are at (None: the questions are
    over) and how many questions they have answered."""

    listener: Any
    current: Any
    answered: int


async def state(db: Database, campaign: str, token: str) -> State:
    """The :class:`State` of the listener of ``token``, read in one snapshot."""
    async with db.read() as conn:
        lst = await _listener(conn, campaign, token)
        cur = await _current(conn, int(lst.id))
        done = await conn.scalar(
            sa.select(sa.func.count())
            .select_from(items)
            .where(
                items.c.listener_id == lst.id,
                items.c.phase == QUESTION,
                items.c.answer.is_not(None),
            )
        )
    return State(lst, cur, int(done or 0))


async def _current(conn: Any, listener_id: int) -> Any:
    return (
        await conn.execute(
            sa.select(items)
            .where(items.c.listener_id == listener_id, items.c.answer.is_(None))
            .order_by(items.c.position)
            .limit(1)
        )
    ).first()


async def own_item(db: Database, campaign: str, token: str, item_id: int) -> Any:
    """An item of the listener of ``token``, asked already (``SessionError`` 404 for an
    unknown token, and for an item not theirs or not asked yet)."""
    async with db.read() as conn:
        lst = await _listener(conn, campaign, token)
        row = (
            await conn.execute(
                sa.select(items).where(items.c.id == item_id, items.c.listener_id == lst.id)
            )
        ).first()
    if row is None:
        raise SessionError("no such item", 404)
    return row


def check_answer(phase: str, value: int) -> None:
    allowed = {CALIBRATION: (1,), ATTENTION: tuple(range(ATTENTION_CHOICES))}.get(phase, (0, 1))
    if value not in allowed:
        raise SessionError(f"answer {value} is not one of {list(allowed)} for a {phase} item")


async def answer(
    db: Database,
    planner: Planner,
    listener_id: int,
    item_id: int,
    value: int,
    *,
    plays: int = 0,
    response_ms: int = 0,
) -> Outcome:
    """Store ``value`` as the answer to ``item_id`` (see the module docstring)."""
    async with db.read() as conn:
        cur = await _current(conn, listener_id)
        if cur is None or cur.id != item_id:
            return await conn.run_sync(_not_current, listener_id, item_id, value)
        check_answer(cur.phase, value)
        history = await _history(conn, planner, listener_id, cur, value)
    nxt = await to_thread.run_sync(planner.item, listener_id, cur.position + 1, history)
    correct = None if cur.expected is None else bool(value == cur.expected)
    reason = _exclusion(cur, value, correct)
    first_open = (
        sa.select(sa.func.min(items.c.position))
        .where(items.c.listener_id == listener_id, items.c.answer.is_(None))
        .scalar_subquery()
    )

    def write(conn: sa.Connection) -> Outcome:
        if not db.sqlite:  # several hosts: one listener's answers one at a time
            conn.execute(
                sa.select(listeners.c.id).where(listeners.c.id == listener_id).with_for_update()
            )
        done = conn.execute(
            items.update()
            .where(  # still unanswered, and still the item the listener is at
                items.c.id == item_id,
                items.c.listener_id == listener_id,
                items.c.answer.is_(None),
                items.c.position == first_open,
            )
            .values(
                answer=value,
                correct=correct,
                plays=plays,
                response_ms=response_ms,
                answered_at=now(),
            )
        )
        if done.rowcount != 1:  # answered meanwhile (a double submit)
            return _not_current(conn, listener_id, item_id, value)
        if reason:
            conn.execute(
                listeners.update()
                .where(listeners.c.id == listener_id)
                .values(
                    excluded=True,
                    exclusion=sa.case(
                        (listeners.c.exclusion == "", reason),
                        else_=listeners.c.exclusion + "; " + reason,
                    ),
                )
            )
        if nxt is not None:
            conn.execute(items.insert().values(**_row(listener_id, nxt)))
        return Outcome(
            item_id, cur.phase, correct, cur.expected, False, nxt.params if nxt else None
        )

    return await db.write(write)


def _not_current(conn: sa.Connection, listener_id: int, item_id: int, value: int) -> Outcome:
    """An answer to an item that is not the current one: a repeat of the stored answer is
    accepted (nothing changes); anything else is refused."""
    row = conn.execute(
        sa.select(items).where(items.c.id == item_id, items.c.listener_id == listener_id)
    ).first()
    if row is None:
        raise SessionError("no such item", 404)
    if row.answer is None:
        raise SessionError("that item is not the one to answer now", 409)
    if row.answer != value:
        raise SessionError("that item is answered already; an answer cannot be changed", 409)
    return Outcome(row.id, row.phase, row.correct, row.expected, repeated=True)


async def _history(
    conn: Any, planner: Planner, listener_id: int, cur: Any, value: int
) -> list[tuple[float, int]]:
    """The ``(strength, answer)`` pairs of the JND sequence of the next item, this answer
    included when it belongs to that sequence."""
    nxt = cur.position + 1
    if planner.c.kind != "jnd" or planner.phase(nxt) != QUESTION:
        return []
    seq = planner.jnd_place(nxt)[0]
    rows = (
        await conn.execute(
            sa.select(items.c.strength, items.c.answer)
            .where(
                items.c.listener_id == listener_id,
                items.c.sequence == seq,
                items.c.phase == QUESTION,
                items.c.sentinel.is_(None),
                items.c.answer.is_not(None),
            )
            .order_by(items.c.position)
        )
    ).all()
    out = [(float(r.strength), int(r.answer)) for r in rows]
    if cur.phase == QUESTION and cur.sequence == seq and cur.sentinel is None:
        out.append((float(cur.strength), value))
    return out


def _exclusion(cur: Any, value: int, correct: bool | None) -> str:
    if correct is not False:
        return ""
    if cur.phase == ATTENTION:
        choices = json.loads(cur.params)["choices"]
        return f"attention check: chose {choices[value]!r}, the sentence said {choices[cur.expected]!r}"
    if cur.phase == QUESTION and cur.sentinel:
        where = f"question {cur.query + 1}" + (
            f" of sequence {cur.sequence + 1}" if cur.sequence is not None else ""
        )
        return f"sentinel missed: {where} ({cur.sentinel})"
    return ""


async def finish(db: Database, listener_id: int, comment: str) -> None:
    """Store the closing comment and close the session (once the questions are over)."""
    if len(comment) > MAX_COMMENT:
        raise SessionError(f"the comment is {len(comment)} characters long (at most {MAX_COMMENT})")
    if any(ord(ch) < 32 and ch not in "\n\r\t" for ch in comment):
        raise SessionError("the comment holds control characters")

    def write(conn: sa.Connection) -> None:
        open_ = conn.execute(
            sa.select(items.c.id).where(
                items.c.listener_id == listener_id, items.c.answer.is_(None)
            )
        ).first()
        if open_ is not None:
            raise SessionError("the questions are not over yet", 409)
        conn.execute(
            listeners.update()
            .where(listeners.c.id == listener_id, listeners.c.finished_at.is_(None))
            .values(comment=comment.strip() or None, finished_at=now())
        )

    await db.write(write)


async def all_rows(db: Database, campaign: str) -> tuple[list[Any], list[Any]]:
    """Every listener of ``campaign`` and every item of theirs (by listener, position)."""
    async with db.read() as conn:
        lst = (
            await conn.execute(
                sa.select(listeners)
                .where(listeners.c.campaign == campaign)
                .order_by(listeners.c.id)
            )
        ).all()
        its = (
            await conn.execute(
                sa.select(items)
                .join(listeners, listeners.c.id == items.c.listener_id)
                .where(listeners.c.campaign == campaign)
                .order_by(items.c.listener_id, items.c.position)
            )
        ).all()
    return list(lst), list(its)


__all__ = [
    "MAX_COMMENT",
    "TOKEN",
    "Outcome",
    "State",
    "SessionError",
    "all_rows",
    "answer",
    "check_answer",
    "enroll",
    "find_listener",
    "finish",
    "own_item",
    "pseudonym",
    "state",
]
