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
    async with db.tx() as conn:
        count = await conn.scalar(
            sa.select(sa.func.count())
            .select_from(listeners)
            .where(listeners.c.campaign == campaign)
        )
        if int(count or 0) >= limit:
            raise SessionError("this test is full: no more sessions can start", 403)
        inserted = await conn.execute(
            listeners.insert().values(
                campaign=campaign,
                token_hash=token_hash(token),
                created_at=now(),
                excluded=False,
                exclusion="",
            )
        )
        key = inserted.inserted_primary_key
        assert key is not None
        lid = int(key[0])
        first = planner.item(lid, 0)
        assert first is not None
        await conn.execute(items.insert().values(**_row(lid, first)))
    return lid, token


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
    if not TOKEN.fullmatch(token):
        raise SessionError("no such session", 404)
    async with db.tx() as conn:
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


async def current_item(db: Database, listener_id: int) -> Any:
    """The first unanswered item of a listener (None: the questions are over)."""
    async with db.tx() as conn:
        return await _current(conn, listener_id)


async def _current(conn: Any, listener_id: int) -> Any:
    return (
        await conn.execute(
            sa.select(items)
            .where(items.c.listener_id == listener_id, items.c.answer.is_(None))
            .order_by(items.c.position)
            .limit(1)
        )
    ).first()


async def own_item(db: Database, listener_id: int, item_id: int) -> Any:
    """An item of this listener, asked already (``SessionError`` 404 otherwise)."""
    async with db.tx() as conn:
        row = (
            await conn.execute(
                sa.select(items).where(items.c.id == item_id, items.c.listener_id == listener_id)
            )
        ).first()
    if row is None:
        raise SessionError("no such item", 404)
    return row


async def progress(db: Database, listener_id: int) -> tuple[int, int]:
    """Questions answered and questions asked so far by a listener."""
    async with db.tx() as conn:
        rows = (
            await conn.execute(
                sa.select(items.c.answer).where(
                    items.c.listener_id == listener_id, items.c.phase == QUESTION
                )
            )
        ).all()
    return sum(r.answer is not None for r in rows), len(rows)


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
    async with db.tx() as conn:
        cur = await _current(conn, listener_id)
        if cur is None or cur.id != item_id:
            return await _not_current(conn, listener_id, item_id, value)
        check_answer(cur.phase, value)
        history = await _history(conn, planner, listener_id, cur, value)
    nxt = await to_thread.run_sync(planner.item, listener_id, cur.position + 1, history)
    correct = None if cur.expected is None else bool(value == cur.expected)
    async with db.tx() as conn:
        await conn.execute(
            sa.select(listeners.c.id).where(listeners.c.id == listener_id).with_for_update()
        )
        again = await _current(conn, listener_id)
        if again is None or again.id != item_id:  # answered meanwhile (a double submit)
            return await _not_current(conn, listener_id, item_id, value)
        done = await conn.execute(
            items.update()
            .where(items.c.id == item_id, items.c.answer.is_(None))
            .values(
                answer=value,
                correct=correct,
                plays=plays,
                response_ms=response_ms,
                answered_at=now(),
            )
        )
        if done.rowcount != 1:
            raise SessionError("the item was answered meanwhile", 409)
        reason = _exclusion(cur, value, correct)
        if reason:
            lst = (
                await conn.execute(sa.select(listeners).where(listeners.c.id == listener_id))
            ).one()
            text = f"{lst.exclusion}; {reason}" if lst.exclusion else reason
            await conn.execute(
                listeners.update()
                .where(listeners.c.id == listener_id)
                .values(excluded=True, exclusion=text)
            )
        if nxt is not None:
            await conn.execute(items.insert().values(**_row(listener_id, nxt)))
    return Outcome(item_id, cur.phase, correct, cur.expected, False, nxt.params if nxt else None)


async def _not_current(conn: Any, listener_id: int, item_id: int, value: int) -> Outcome:
    """An answer to an item that is not the current one: a repeat of the stored answer is
    accepted (nothing changes); anything else is refused."""
    row = (
        await conn.execute(
            sa.select(items).where(items.c.id == item_id, items.c.listener_id == listener_id)
        )
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
    async with db.tx() as conn:
        if await _current(conn, listener_id) is not None:
            raise SessionError("the questions are not over yet", 409)
        lst = (await conn.execute(sa.select(listeners).where(listeners.c.id == listener_id))).one()
        if lst.finished_at is not None:
            return
        await conn.execute(
            listeners.update()
            .where(listeners.c.id == listener_id)
            .values(comment=comment.strip() or None, finished_at=now())
        )


async def all_rows(db: Database, campaign: str) -> tuple[list[Any], list[Any]]:
    """Every listener of ``campaign`` and every item of theirs (by listener, position)."""
    async with db.tx() as conn:
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
    "SessionError",
    "all_rows",
    "answer",
    "check_answer",
    "current_item",
    "enroll",
    "find_listener",
    "finish",
    "own_item",
    "progress",
    "pseudonym",
]
