"""Listening tests in a real browser: Debian's Chromium (headless, driven over the DevTools
protocol) takes a whole JND session of `pamflow listen serve` as a person would (start
page, volume calibration, attention check, two teaching examples, 30 questions with their
sentinels, the comment) and a 2AFC session, playing every clip before answering; the admin
logs in and looks at the psychometric fits; then `pamflow listen export` writes both
datasets, checked row by row against what was clicked. Screenshots of a question page and
of the admin's psychometric view go to ``$PAMFLOW_LISTEN_SCREENSHOTS`` (``docs/`` makes
the README's) or a temporary folder."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from pamflow.datasets.listener import SimulatedListener
from pamflow.listen.campaign import load_campaign
from pamflow.listen.client import Visitor, read_page
from pamflow.listen.export import export_campaign
from pamflow.storage import Dataset

CHROMIUM = Path("/usr/bin/chromium")
websockets = pytest.importorskip("websockets")
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing (apt-get install -y chromium)"
    ),
]
BIN = Path(sys.executable).parent
FIELDS = {"clip_seconds": 1.0, "families": ["white_noise", "eq", "mulaw"]}


class Chromium:
    """Headless Chromium and one page of it, driven over the DevTools protocol."""

    def __init__(self, profile: Path) -> None:
        self.profile = profile
        self.proc = subprocess.Popen(
            [
                str(CHROMIUM),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--mute-audio",
                "--autoplay-policy=no-user-gesture-required",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--hide-scrollbars",
                "--window-size=1000,800",
                f"--user-data-dir={profile}",
                "--remote-debugging-port=0",
                "--remote-allow-origins=*",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.ws = None
        self.n = 0

    async def connect(self) -> None:
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not port_file.exists():
            assert time.monotonic() < deadline, "Chromium did not start"
            await asyncio.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        async with httpx.AsyncClient() as c:
            for _ in range(100):
                with contextlib.suppress(httpx.HTTPError):
                    pages = [
                        t
                        for t in (await c.get(f"http://127.0.0.1:{port}/json")).json()
                        if t["type"] == "page"
                    ]
                    if pages:
                        break
                await asyncio.sleep(0.05)
        self.ws = await websockets.connect(pages[0]["webSocketDebuggerUrl"], max_size=2**28)
        await self.call("Page.enable")

    async def call(self, method: str, **params):
        self.n += 1
        await self.ws.send(json.dumps({"id": self.n, "method": method, "params": params}))
        while True:
            msg = json.loads(await self.ws.recv())
            if msg.get("id") == self.n:
                assert "error" not in msg, msg
                return msg["result"]

    async def js(self, expr: str):
        r = await self.call(
            "Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True
        )
        assert "exceptionDetails" not in r, r
        return r["result"].get("value")

    async def until(self, expr: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not await self.js(expr):
            assert time.monotonic() < deadline, f"timed out waiting for {expr}"
            await asyncio.sleep(0.02)

    async def goto(self, url: str) -> None:
        await self.call("Page.navigate", url=url)
        await self.loaded()

    async def loaded(self) -> None:
        await self.until("document.readyState === 'complete' && !!document.querySelector('main')")

    async def navigating(self, action: str) -> None:
        """Run ``action`` (JS that submits a form or follows a link); wait for the next page."""
        await self.js("window.__old = true")
        await self.js(action)
        await self.until(
            "window.__old === undefined && document.readyState === 'complete' && !!document.querySelector('main')"
        )

    async def play_all(self) -> None:
        """Click every play button, one after another, each clip to its end (16x speed)."""
        roles = await self.js(
            "[...document.querySelectorAll('button.play')].map(b => b.dataset.for)"
        )
        await self.js(
            "document.querySelectorAll('audio').forEach(a => {a.defaultPlaybackRate = 16; a.playbackRate = 16})"
        )
        for role in roles:
            await self.js(f"document.querySelector('button.play[data-for=\"{role}\"]').click()")
            await self.until(
                f"document.querySelector('button.play[data-for=\"{role}\"]').classList.contains('heard') || !!document.querySelector('main').dataset.audioError"
            )
        assert await self.js("document.querySelector('main').dataset.audioError || ''") == ""

    async def screenshot(self, path: Path, selector: str | None = None) -> None:
        import base64

        params: dict = {"format": "png", "captureBeyondViewport": True}
        if selector:
            box = await self.js(
                f"(() => {{const r = document.querySelector('{selector}').getBoundingClientRect();"
                "return {x: r.left + scrollX, y: r.top + scrollY, width: r.width, height: r.height}})()"
            )
            params["clip"] = {**box, "scale": 1}
        shot = await self.call("Page.captureScreenshot", **params)
        path.write_bytes(base64.b64decode(shot["data"]))

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        self.proc.terminate()
        self.proc.wait(20)


def _oracle(db: Path):
    def right(item: int, choices: list[str]) -> int:
        with contextlib.closing(sqlite3.connect(db)) as conn:
            expected, params = conn.execute(
                "SELECT expected, params FROM items WHERE id=?", (item,)
            ).fetchone()
        assert json.loads(params)["choices"] == choices
        return int(expected)

    return right


async def take_test(
    browser: Chromium, url: str, person: Visitor, shots: Path, name: str
) -> list[tuple[int, str, int]]:
    """One whole session in the browser; returns ``(item, phase, answer)`` as clicked."""
    clicked: list[tuple[int, str, int]] = []
    await browser.goto(f"{url}/")
    await browser.navigating("document.getElementById('start').click()")
    person.link = "/" + (await browser.js("location.pathname")).lstrip("/")
    questions = 0
    while True:
        step = read_page(await browser.js("document.documentElement.outerHTML"))
        if step.phase == "done":
            return clicked
        if step.phase == "comment":
            await browser.js("document.getElementById('comment').value = 'clear sounds, thanks'")
            await browser.navigating("document.getElementById('finish').click()")
            continue
        assert step.item is not None and step.phase in (
            "calibration",
            "attention",
            "teaching",
            "question",
        )
        await browser.play_all()
        if step.phase == "calibration":
            assert await browser.js(
                "document.getElementById('continue').disabled"
            )  # not confirmed yet
            await browser.js("document.getElementById('confirm').click()")
            value, button = 1, "continue"
        else:
            value = person.decide(step, await person.audio(step))  # what the person heard
            button = f"word-{value}" if step.phase == "attention" else f"answer-{value}"
        assert await browser.js("document.querySelector('main').dataset.ready") == "1"
        if step.phase == "question":
            questions += 1
            progress = await browser.js("document.querySelector('main').dataset.progress")
            assert progress.startswith(f"{questions}/")
            if questions == 7:
                await browser.screenshot(shots / f"listen-{name}-question.png", "body")
        await browser.navigating(f"document.getElementById('{button}').click()")
        clicked.append((step.item, step.phase, value))
        if step.phase == "teaching":  # the right answer is shown, then on
            assert await browser.js("document.querySelector('main').dataset.phase") == "feedback"
            await browser.navigating("document.getElementById('continue').click()")


def test_a_person_takes_both_tests_in_chromium(
    listen_server, listen_admin, tmp_path, prefect_server
):
    shots = Path(os.environ.get("PAMFLOW_LISTEN_SCREENSHOTS") or tmp_path)
    started = time.monotonic()
    jnd = listen_server("browser-jnd", wait=False, **FIELDS)
    afc = listen_server(
        "browser-afc", wait=False, kind="2afc", **FIELDS, **{"2afc": {"questions": 5, "pool": 10}}
    )
    jnd.wait()
    afc.wait()
    t0 = time.monotonic()
    print(f"servers up in {t0 - started:.1f} s")

    async def session() -> tuple[list, list]:
        browser = Chromium(tmp_path / "profile")
        try:
            await browser.connect()
            async with (
                httpx.AsyncClient(base_url=jnd.url) as c1,
                httpx.AsyncClient(base_url=afc.url) as c2,
            ):
                me = SimulatedListener(0.5, 0.1, 0.0, 5)
                clicked_jnd = await take_test(
                    browser,
                    jnd.url,
                    Visitor(c1, me, oracle=_oracle(tmp_path / "browser-jnd.db")),
                    shots,
                    "jnd",
                )
                print(f"JND session: {len(clicked_jnd)} answers in {time.monotonic() - t0:.1f} s")
                clicked_afc = await take_test(
                    browser,
                    afc.url,
                    Visitor(c2, me, oracle=_oracle(tmp_path / "browser-afc.db")),
                    shots,
                    "2afc",
                )
                # two more listeners, simulated, so that the admin has answers to compare
                right = _oracle(tmp_path / "browser-jnd.db")
                others = [
                    Visitor(c1, SimulatedListener(t, 0.1, 0.0, k), seed=k, oracle=right)
                    for k, t in enumerate((0.3, 0.8), start=10)
                ]
                assert await asyncio.gather(*(v.run() for v in others)) == ["done"] * 2
            # the admin logs in and looks at the fits
            await browser.goto(f"{jnd.url}/admin/login")
            await browser.js(f"document.getElementById('token').value = {listen_admin.token!r}")
            await browser.navigating("document.getElementById('login').click()")
            assert await browser.js("document.querySelector('main').dataset.phase") == "admin"
            assert (
                await browser.js("document.querySelectorAll('figure.listener-fit svg').length") == 3
            )
            await browser.screenshot(shots / "listen-admin-psychometric.png", "#fits")
            return clicked_jnd, clicked_afc
        finally:
            await browser.close()

    clicked_jnd, clicked_afc = asyncio.run(session())
    t1 = time.monotonic()
    print(f"both sessions and the admin page in {t1 - t0:.1f} s")
    assert [p for _, p, _ in clicked_jnd].count("question") == 30 and len(clicked_jnd) == 34
    assert [p for _, p, _ in clicked_afc].count("question") == 5 and len(clicked_afc) == 9
    for png in ("listen-jnd-question.png", "listen-admin-psychometric.png"):
        img = np.asarray(Image.open(shots / png).convert("RGB")).astype(int)
        assert img.shape[0] > 200 and img.std() > 10, png  # drawn, not blank
    admin_png = np.asarray(
        Image.open(shots / "listen-admin-psychometric.png").convert("RGB")
    ).astype(int)
    assert (
        int((np.abs(admin_png - np.array([0xC4, 0x4E, 0x52])).sum(axis=2) <= 12).sum()) > 300
    )  # curves

    # the exports: the JND one as a user runs it (a Prefect flow, its event), 2AFC in-process
    done = subprocess.run(
        [
            str(BIN / "pamflow"),
            "listen",
            "export",
            str(jnd.campaign),
            "--out",
            str(tmp_path / "jnd-out"),
            "--retrain",
        ],
        env={**os.environ, "PREFECT_API_URL": prefect_server},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "listeners_exported" in done.stdout
    export_campaign(load_campaign(afc.campaign)[0], str(tmp_path / "afc-out"))
    print(f"exports in {time.monotonic() - t1:.1f} s")
    with contextlib.closing(sqlite3.connect(tmp_path / "browser-jnd.db")) as db:
        items = dict(db.execute("SELECT id, position FROM items WHERE listener_id = 1").fetchall())
        sentinels = db.execute(
            "SELECT id, correct FROM items WHERE sentinel IS NOT NULL AND listener_id = 1"
        ).fetchall()
        flags = dict(db.execute("SELECT id, excluded FROM listeners").fetchall())
    assert len(sentinels) == 6 and all(ok for _, ok in sentinels) and not flags[1]
    sentinel_ids = {i for i, _ in sentinels}
    answered = {items[i]: v for i, p, v in clicked_jnd if p == "question" and i not in sentinel_ids}
    rows = (
        Dataset.open(str(tmp_path / "jnd-out"))
        .to_table(["example_id", "label", "listener", "label_source"])
        .to_pylist()
    )
    assert len(rows) == 24 * sum(not f for f in flags.values())  # the listeners kept
    mine = [r for r in rows if r["listener"] == "L0001"]
    assert len(mine) == len(answered) == 24
    for row in mine:  # row by row: the answer clicked for that question
        position = int(row["example_id"].rsplit("-", 1)[1])
        assert (row["label"], row["label_source"]) == (answered[position], "human")
    with contextlib.closing(sqlite3.connect(tmp_path / "browser-afc.db")) as db:
        afc_items = dict(
            db.execute(
                "SELECT id, params FROM items WHERE phase='question' AND sentinel IS NULL"
            ).fetchall()
        )
    votes = {json.loads(afc_items[i])["pool_index"]: v for i, p, v in clicked_afc if i in afc_items}
    rows = (
        Dataset.open(str(tmp_path / "afc-out"))
        .to_table(["example_id", "label", "votes", "listeners"])
        .to_pylist()
    )
    assert len(rows) == len(votes) == 4
    for row in rows:
        k = int(row["example_id"].rsplit("-t", 1)[1])
        assert (row["label"], row["votes"], row["listeners"]) == (votes[k], 1, ["L0001"])
