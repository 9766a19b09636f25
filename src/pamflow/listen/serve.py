"""Serving a campaign with uvicorn (one process; several hosts share a PostgreSQL URL)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pamflow.listen.app import Exporter, create_app, prepare
from pamflow.listen.campaign import Campaign, admin_token, load_campaign
from pamflow.listen.db import Database, run_async, shown_url


def serve(
    campaign_path: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    exporter: Exporter | None = None,
    say: Callable[[str], Any] = print,
) -> None:
    """Serve the campaign of ``campaign_path`` until interrupted. Without an admin token
    (``$PAMFLOW_LISTEN_ADMIN_TOKEN`` or the campaign's ``admin_token``) one is made for
    this run and printed."""
    import uvicorn

    campaign, _ = load_campaign(campaign_path)
    token = admin_token(campaign)
    made = token is None
    if token is None:
        token = secrets.token_urlsafe(24)
    app = create_app(campaign, admin_token=token, exporter=exporter)
    run_async(lambda: check_database(campaign))  # a database holding another plan: one line, now
    url = f"http://{host}:{port}"
    say(
        f"serving {campaign.kind} campaign {campaign.name!r} at {url}/ "
        f"(answers in {shown_url(str(campaign.database))})"
    )
    say(f"admin page: {url}/admin/login" + (f" (token for this run: {token})" if made else ""))
    # idle connections kept 30 s (uvicorn's 5 s races with clients' own 5 s expiry)
    uvicorn.run(
        app, host=host, port=port, log_level="warning", access_log=False, timeout_keep_alive=30
    )


async def check_database(campaign: Campaign) -> None:
    """The campaign's tables made and its plan recorded, or the recorded one checked."""
    db = Database(str(campaign.database))
    try:
        await prepare(db, campaign)
    finally:
        await db.dispose()


__all__ = ["check_database", "serve"]
