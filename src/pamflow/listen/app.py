"""The web application of a campaign (FastAPI): the listener's pages, the audio, the admin.

Listener routes live under ``/s/TOKEN``: the token is the only credential, and every
item, audio file and answer is looked up through it (:mod:`pamflow.listen.session`).
``/`` is the start page, ``POST /start`` opens a session and redirects to its link.
Admin routes live under ``/admin`` and need the admin token (the cookie set by
``/admin/login``, or ``Authorization: Bearer TOKEN``); without one they answer 401.

Inputs: request bodies are at most :data:`MAX_BODY` bytes (413 beyond), form fields are
parsed here (URL-encoded, each at most once), numbers checked against their ranges;
anything else is 400 with one line. Every response carries a strict
Content-Security-Policy, ``Referrer-Policy: no-referrer`` (the links hold tokens) and no
framing; pages are not cached.
"""

from __future__ import annotations

import csv
import datetime as dt
import hmac
import io
import json
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import anyio
from anyio import to_thread
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.background import BackgroundTask

from pamflow.corpus.sources import Sources
from pamflow.listen import admin, pages, session
from pamflow.listen.campaign import Campaign
from pamflow.listen.db import Database
from pamflow.listen.plan import ATTENTION, CALIBRATION, TEACHING, Planner
from pamflow.listen.render import Renderer

#: the largest request body accepted, in bytes
MAX_BODY = 16 * 1024
ADMIN_COOKIE = "pamflow_admin"
Exporter = Callable[[Campaign, str], dict[str, Any]]


class Served:
    """What the routes share: the campaign, its database, planner and renderer."""

    def __init__(
        self,
        campaign: Campaign,
        sources: Sources,
        admin_token: str | None,
        exporter: Exporter | None,
    ) -> None:
        self.c = campaign
        self.db = Database(str(campaign.database))
        self.planner = Planner(campaign, sources)
        self.renderer = Renderer(campaign, sources)
        self.admin_token = admin_token
        self.exporter = exporter
        self.cpu: anyio.CapacityLimiter | None = None  # threads rendering audio at once

    async def render(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self.cpu is None:
            self.cpu = anyio.CapacityLimiter(4)
        return await to_thread.run_sync(fn, *args, limiter=self.cpu)

    def prerender(self, params: dict[str, Any] | None) -> BackgroundTask | None:
        """Render the next item's audio after the response is sent."""
        if params is None:
            return None

        async def run() -> None:
            try:
                await self.render(self.renderer.files, params)
            except Exception:  # the audio request will render it again and report
                pass

        return BackgroundTask(run)


def roles(c: Campaign, phase: str) -> tuple[str, ...]:
    if phase == CALIBRATION:
        return ("calibration",)
    if phase == ATTENTION:
        return ("sentence",)
    return ("reference", "test") if c.kind == "jnd" else ("reference", "a", "b")


async def read_form(request: Request, limit: int = MAX_BODY) -> dict[str, str]:
    """The URL-encoded fields of a POST body of at most ``limit`` bytes."""
    kind = request.headers.get("content-type", "application/x-www-form-urlencoded")
    if kind.split(";")[0].strip() != "application/x-www-form-urlencoded":
        raise session.SessionError("send the form URL-encoded", 415)
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise session.SessionError(f"the request is over {limit} bytes", 413)
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise session.SessionError("the form is not UTF-8") from None
    form: dict[str, str] = {}
    for k, v in pairs:
        if k in form:
            raise session.SessionError(f"field {k!r} is given twice")
        form[k] = v
    return form


def number(form: dict[str, str], name: str, high: int, default: int | None = None) -> int:
    text = form.get(name)
    if text is None or text == "":
        if default is None:
            raise session.SessionError(f"field {name!r} is missing")
        return default
    if not (text.isascii() and text.isdigit() and len(text) <= 10):
        raise session.SessionError(f"field {name!r} is not a whole number")
    value = int(text)
    if value > high:
        raise session.SessionError(f"field {name!r} is above {high}")
    return value


async def prepare(db: Database, campaign: Campaign) -> None:
    """Create the campaign's tables and record its plan (or check the one recorded)."""
    await db.create()
    await db.register(
        campaign.name, campaign.kind, campaign.plan_digest(), json.dumps(campaign.plan())
    )


def create_app(
    campaign: Campaign,
    *,
    sources: Sources | None = None,
    admin_token: str | None = None,
    exporter: Exporter | None = None,
) -> FastAPI:
    """The application of ``campaign``. ``admin_token`` None: the admin routes answer 401
    to everyone. ``exporter(campaign, out)`` writes the admin page's exports (default:
    :func:`pamflow.listen.export.export_campaign`)."""
    from pamflow.datasets import get_recipe

    spec = campaign.recipe_spec()
    srcs = sources if sources is not None else spec.sources()
    get_recipe(campaign.recipe).check_served(spec, srcs)  # a campaign it cannot serve: now
    s = Served(campaign, srcs, admin_token, exporter)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        await prepare(s.db, campaign)
        yield
        await s.db.dispose()

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.served = s

    @app.middleware("http")
    async def guard(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
            response: Response = HTMLResponse(
                pages.error_page(campaign.title, f"The request is over {MAX_BODY} bytes.", 413), 413
            )
        else:
            response = await call_next(request)
        response.headers["Content-Security-Policy"] = pages.CSP
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    def html(text: str, status: int = 200) -> HTMLResponse:
        return HTMLResponse(text, status)

    @app.exception_handler(session.SessionError)
    async def refused(request: Request, e: session.SessionError) -> Response:
        return html(pages.error_page(campaign.title, str(e), e.status), e.status)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, e: HTTPException) -> Response:
        return html(pages.error_page(campaign.title, str(e.detail), e.status_code), e.status_code)

    @app.exception_handler(RequestValidationError)
    async def bad_path(request: Request, e: RequestValidationError) -> Response:
        return html(pages.error_page(campaign.title, "Not found.", 404), 404)

    # -- listeners -----------------------------------------------------------------------
    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"ok": True, "campaign": campaign.name}

    @app.get("/static/{name}")
    async def static(name: str) -> Response:
        try:
            data = pages.static(name)
        except KeyError:
            raise HTTPException(404, "Not found.") from None
        kind = "text/javascript" if name.endswith(".js") else "text/css"
        return Response(data, media_type=kind, headers={"Cache-Control": "public, max-age=3600"})

    @app.get("/", response_class=HTMLResponse)
    async def start_page() -> Response:
        return html(pages.landing(campaign, full=await _full(s)))

    @app.post("/start")
    async def start(request: Request) -> Response:
        await read_form(request)
        lid, token = await session.enroll(s.db, s.planner, campaign.name, campaign.max_listeners)
        first = s.planner.item(lid, 0)
        return RedirectResponse(
            f"/s/{token}", 303, background=s.prerender(first.params if first else None)
        )

    @app.get("/s/{token}", response_class=HTMLResponse)
    async def step(token: str) -> Response:
        at = await session.state(s.db, campaign.name, token)
        base = f"/s/{token}"
        if at.current is None:
            if at.listener.finished_at is None:
                return html(pages.comment_page(campaign, base, session.MAX_COMMENT))
            return html(pages.done_page(campaign))
        return html(pages.item_page(campaign, base, at.current, at.answered, s.planner.questions))

    @app.get("/s/{token}/audio/{item_id}/{role}.flac")
    async def audio(token: str, item_id: int, role: str) -> Response:
        row = await session.own_item(s.db, campaign.name, token, item_id)
        if role not in roles(campaign, row.phase):
            raise session.SessionError("no such audio", 404)
        data = await s.render(s.renderer.audio_file, json.loads(row.params), role)
        return Response(
            data, media_type="audio/flac", headers={"Cache-Control": "private, max-age=86400"}
        )

    @app.post("/s/{token}/answer")
    async def post_answer(token: str, request: Request) -> Response:
        form = await read_form(request)
        lst = await session.find_listener(s.db, campaign.name, token)
        outcome = await session.answer(
            s.db,
            s.planner,
            int(lst.id),
            number(form, "item", 2**31 - 1),
            number(form, "answer", 1000),
            plays=number(form, "plays", 100_000, 0),
            response_ms=number(form, "ms", 2**31 - 1, 0),
        )
        if outcome.phase == TEACHING:
            row = await session.own_item(s.db, campaign.name, token, outcome.item_id)
            response: Response = html(pages.feedback(campaign, f"/s/{token}", row))
            response.background = s.prerender(outcome.next_params)
            return response
        return RedirectResponse(f"/s/{token}", 303, background=s.prerender(outcome.next_params))

    @app.post("/s/{token}/comment")
    async def post_comment(token: str, request: Request) -> Response:
        form = await read_form(request)
        lst = await session.find_listener(s.db, campaign.name, token)
        await session.finish(s.db, int(lst.id), form.get("comment", ""))
        return RedirectResponse(f"/s/{token}", 303)

    # -- admin ---------------------------------------------------------------------------
    def is_admin(request: Request) -> bool:
        if s.admin_token is None:
            return False
        given = request.cookies.get(ADMIN_COOKIE, "")
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        return hmac.compare_digest(given.encode(), s.admin_token.encode())

    def admin_only(request: Request) -> None:
        if not is_admin(request):
            raise HTTPException(401, "The admin token is needed: log in at /admin/login.")

    @app.get("/admin/login", response_class=HTMLResponse)
    async def login_page() -> Response:
        return html(admin.login_page(campaign))

    @app.post("/admin/login")
    async def login(request: Request) -> Response:
        form = await read_form(request)
        given = form.get("token", "")
        if s.admin_token is None or not hmac.compare_digest(given.encode(), s.admin_token.encode()):
            return html(admin.login_page(campaign, wrong=True), 401)
        response = RedirectResponse("/admin", 303)
        response.set_cookie(
            ADMIN_COOKIE,
            given,
            httponly=True,
            samesite="strict",
            path="/admin",
            secure=request.url.scheme == "https",
        )
        return response

    guarded = [Depends(admin_only)]  # every admin route but the login

    @app.get("/admin", response_class=HTMLResponse, dependencies=guarded)
    async def overview() -> Response:
        listeners, its = await session.all_rows(s.db, campaign.name)
        text = await s.render(
            admin.overview, campaign, s.planner, listeners, its, s.renderer.stats()
        )
        return html(text)

    @app.get("/admin/listeners/{lid}", response_class=HTMLResponse, dependencies=guarded)
    async def one_listener(lid: int) -> Response:
        listeners, its = await session.all_rows(s.db, campaign.name)
        found = [r for r in listeners if int(r.id) == lid]
        if not found:
            raise HTTPException(404, "No such listener.")
        mine = [r for r in its if int(r.listener_id) == lid]
        return html(await s.render(admin.listener_page, campaign, found[0], mine))

    @app.get("/admin/answers.csv", dependencies=guarded)
    async def answers_csv() -> Response:
        listeners, its = await session.all_rows(s.db, campaign.name)
        flagged = {int(r.id) for r in listeners if r.excluded}
        buf = io.StringIO()
        w = csv.writer(buf)
        cols = [
            "item",
            "position",
            "phase",
            "sequence",
            "query",
            "sentinel",
            "strength",
            "answer",
            "correct",
            "plays",
            "response_ms",
            "answered_at",
            "seed",
        ]
        w.writerow(["listener", "excluded", *cols])
        for r in its:
            w.writerow(
                [
                    session.pseudonym(int(r.listener_id)),
                    int(r.listener_id) in flagged,
                    r.id,
                    *(getattr(r, c) for c in cols[1:]),
                ]
            )
        return Response(buf.getvalue(), media_type="text/csv")

    @app.get("/admin/summary.json", dependencies=guarded)
    async def summary() -> Response:
        listeners, its = await session.all_rows(s.db, campaign.name)
        answered = [r for r in its if r.answer is not None]
        return JSONResponse(
            {
                "campaign": campaign.name,
                "listeners": len(listeners),
                "finished": sum(r.finished_at is not None for r in listeners),
                "excluded": sum(bool(r.excluded) for r in listeners),
                "answers": len(answered),
                "questions_answered": sum(r.phase == "question" for r in answered),
                "cache": s.renderer.stats(),
            }
        )

    @app.post("/admin/export", response_class=HTMLResponse, dependencies=guarded)
    async def export(request: Request) -> Response:
        await read_form(request)
        root = Path(campaign.export_dir or "exports")
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        out = str(root / f"{campaign.name}-{stamp}")
        run = s.exporter or _export
        result = await to_thread.run_sync(run, campaign, out)
        from pamflow.pipeline.page import kv_table

        body = f'<main data-phase="exported"><h1>Exported</h1>{kv_table(result)}<p><a href="/admin">back</a></p></main>'
        return html(pages.document(f"{campaign.title}: export", body, script=False))

    return app


def _export(campaign: Campaign, out: str) -> dict[str, Any]:
    from pamflow.listen.export import export_campaign

    return export_campaign(campaign, out)


async def _full(s: Served) -> bool:
    import sqlalchemy as sa

    from pamflow.listen.db import listeners

    async with s.db.read() as conn:
        n = await conn.scalar(
            sa.select(sa.func.count())
            .select_from(listeners)
            .where(listeners.c.campaign == s.c.name)
        )
    return int(n or 0) >= s.c.max_listeners


__all__ = ["ADMIN_COOKIE", "MAX_BODY", "create_app", "prepare", "read_form", "roles"]
