"""Sessions over HTTP against a real uvicorn server: a whole JND session (calibration,
attention check, teaching, three sequences whose strengths the sampler picks live,
sentinels), a careless listener flagged, 2AFC sessions gathering votes, the admin page;
then the safety rules, a test each: unguessable links, a listener's own items only,
validated and size-limited inputs, the admin token on every admin route, no forged
answers."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import secrets
from pathlib import Path

import httpx
import numpy as np
import pytest

from pamflow.datasets.listener import SimulatedListener
from pamflow.datasets.psychometric import Prior, next_strength
from pamflow.listen import stats
from pamflow.listen.app import MAX_BODY, create_app
from pamflow.listen.client import Visitor, read_page
from pamflow.perturbations import Axis

ADMIN = "admin-token-for-the-tests-0123456789"
ITEM_COLUMNS = (
    "position, phase, sequence, query, sentinel, strength, seed, answer, expected, correct, params"
)


async def _visit(url: str, visitor_args: dict, cls: type[Visitor] = Visitor) -> Visitor:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        v = cls(client, **visitor_args)
        assert await v.run(comment="fine") == "done"
        return v


class Careless(Visitor):
    """Answers "different" to every question without listening."""

    def decide(self, step, audio):
        return 1 if step.phase in ("question", "teaching") else super().decide(step, audio)


def test_a_jnd_session_end_to_end(make_campaign, serve, oracle, query, demo_sources):
    c = make_campaign("jnd-e2e")
    app = create_app(c, admin_token=ADMIN)
    person = {"listener": SimulatedListener(0.5, 0.1, 0.0, 7), "oracle": oracle(c.database)}
    with serve(app) as url:
        v = asyncio.run(_visit(url, person))
        admin = httpx.get(f"{url}/admin", headers={"Authorization": f"Bearer {ADMIN}"})
    rows = query(c.database, f"SELECT {ITEM_COLUMNS} FROM items ORDER BY position")
    assert [r[0] for r in rows] == list(range(34))
    assert [r[1] for r in rows[:4]] == ["calibration", "attention", "teaching", "teaching"]
    assert all(r[1] == "question" for r in rows[4:])
    # every acknowledged answer is stored, in order, and nothing else
    assert [(p, a) for _, p, a in v.answered] == [(r[1], r[7]) for r in rows]
    ((finished, excluded, comment),) = query(
        c.database, "SELECT finished_at, excluded, comment FROM listeners"
    )
    assert finished is not None and not excluded and comment == "fine"
    assert rows[1][9] == 1  # the attention check was passed
    # three sequences of ten, two sentinels each (never the first), all answered right
    questions = rows[4:]
    assert [(r[2], r[3]) for r in questions] == [(s, q) for s in range(3) for q in range(10)]
    sentinels = [r for r in questions if r[4]]
    assert len(sentinels) == 6 and all(r[3] != 0 for r in sentinels)
    assert sorted({r[4] for r in sentinels}) == ["different", "same"]
    assert all(r[9] == 1 for r in sentinels)
    # each strength is next_strength of the sequence's answers so far, as the recipe does
    for s in range(3):
        plain = [r for r in questions if r[2] == s and not r[4]]
        start = json.loads(plain[0][10])["start"]
        prior = Prior(mu=start, mu_sd=50.0, sigma=c.jnd.prior_sigma)
        history: list[tuple[float, int]] = []
        for r in plain:
            rho = next_strength(history, np.random.default_rng(r[6]), start=start, prior=prior)
            assert r[5] == pytest.approx(float(np.clip(rho, 0, 100)), abs=1e-12)
            params = json.loads(r[10])
            steps = Axis.from_dict(params["axis"]).chain(r[5], demo_sources).to_list()
            assert params["chain"] == json.loads(json.dumps(steps))
            history.append((r[5], r[7]))
        assert len(history) == 8
    # the admin page: the listener, their fits (the JNDs of stats.jnd_fits)
    assert admin.status_code == 200
    found = {
        (int(m[0]), int(m[1])): float(m[2])
        for m in re.findall(
            r'data-listener="(\d+)" data-sequence="(\d+)" data-jnd="([^"]+)"', admin.text
        )
    }
    listeners_, items = _rows(c)
    fits = stats.jnd_fits(items, {1})
    assert found == {k: f.fit.mu for k, f in fits.items()} and len(found) == 3
    assert admin.text.count('class="plot listener-fit"') == 1
    assert admin.text.count('class="plot psychometric"') >= 1


def _rows(c):
    from pamflow.listen.db import Database, run_async
    from pamflow.listen.session import all_rows

    async def read():
        db = Database(str(c.database))
        try:
            return await all_rows(db, c.name)
        finally:
            await db.dispose()

    return run_async(read)


def test_a_careless_listener_is_flagged_and_kept(make_campaign, serve, oracle, query):
    c = make_campaign("careless", jnd={"sequences": 1})
    with serve(create_app(c)) as url:
        person = {"listener": SimulatedListener(0.5, 0.1, 0.0, 1), "oracle": oracle(c.database)}
        asyncio.run(_visit(url, person, Careless))
    ((excluded, reason, finished),) = query(
        c.database, "SELECT excluded, exclusion, finished_at FROM listeners"
    )
    assert excluded and finished is not None  # flagged, and their session still ran to the end
    assert "sentinel missed" in reason and "(same)" in reason
    assert query(c.database, "SELECT count(*) FROM items WHERE answer IS NOT NULL")[0][0] == 14


def test_2afc_sessions_gather_votes_on_the_pool(make_campaign, serve, oracle, query):
    c = make_campaign("afc", kind="2afc", **{"2afc": {"questions": 5, "pool": 4}})
    app = create_app(c, admin_token=ADMIN)

    async def three(url: str) -> list[Visitor]:
        return await asyncio.gather(
            *(
                _visit(
                    url,
                    {
                        "listener": SimulatedListener(0.5, 0.1, 0.0, k),
                        "seed": k,
                        "oracle": oracle(c.database),
                    },
                )
                for k in range(3)
            )
        )

    with serve(app) as url:
        asyncio.run(three(url))
        page = httpx.get(f"{url}/admin", headers={"Authorization": f"Bearer {ADMIN}"}).text
        summary = httpx.get(
            f"{url}/admin/summary.json", headers={"Authorization": f"Bearer {ADMIN}"}
        ).json()
    rows = query(
        c.database,
        "SELECT listener_id, sentinel, answer, expected, params FROM items WHERE phase='question'",
    )
    assert len(rows) == 15 and sum(1 for r in rows if r[1]) == 3  # one sentinel each
    assert all(r[2] == r[3] for r in rows if r[1])  # the reference itself is closer
    votes: dict[int, int] = {}
    for r in rows:
        if not r[1]:
            k = json.loads(r[4])["pool_index"]
            votes[k] = votes.get(k, 0) + 1
    assert votes == {0: 3, 1: 3, 2: 3, 3: 3}  # listeners take the pool in turns
    assert summary["finished"] == 3 and summary["questions_answered"] == 15
    assert page.count("data-triplet=") == 4


# -- safety -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def site(tmp_path_factory, demo_corpus, serve):
    """One server for the safety tests: ``(url, campaign, app)``."""
    from pamflow.listen.campaign import parse_campaign

    fields = {"name": "safe", "clip_seconds": 1.0, "families": ["white_noise", "eq"]}
    c = parse_campaign({**fields, "jnd": {"sequences": 1}}, tmp_path_factory.mktemp("safe"))
    app = create_app(c, admin_token=ADMIN)
    with serve(app) as url:
        yield url, c, app


def _start(client: httpx.Client) -> tuple[str, int]:
    """A new session: its link and its current item."""
    r = client.post("/start")
    assert r.status_code == 303
    link = r.headers["location"]
    return link, _item(client, link)


def _item(client: httpx.Client, link: str) -> int:
    step = read_page(client.get(link).text)
    assert step.item is not None
    return step.item


def test_links_carry_unguessable_tokens(site, query):
    url, c, _ = site
    with httpx.Client(base_url=url) as client:
        links = [_start(client)[0] for _ in range(20)]
        tokens = [link.removeprefix("/s/") for link in links]
        assert len(set(tokens)) == 20
        assert all(re.fullmatch(r"[A-Za-z0-9_-]{43}", t) for t in tokens)  # 256 random bits
        stored = {h for (h,) in query(c.database, "SELECT token_hash FROM listeners")}
        assert {hashlib.sha256(t.encode()).hexdigest() for t in tokens} <= stored
        database = Path(c.database.removeprefix("sqlite:///"))
        files = list(database.parent.glob("safe.db*"))  # the database and its WAL: no token
        assert database in files
        for f in files:
            data = f.read_bytes()
            assert not any(t.encode() in data for t in tokens), f
        for bad in (
            secrets.token_urlsafe(32),
            tokens[0][:-1] + ("A" if tokens[0][-1] != "A" else "B"),
            "short",
            tokens[0] + "x",
        ):
            assert client.get(f"/s/{bad}").status_code == 404
            assert (
                client.post(f"/s/{bad}/answer", data={"item": "1", "answer": "1"}).status_code
                == 404
            )


def test_a_listener_reaches_only_their_own_items(site, query):
    url, c, _ = site
    with httpx.Client(base_url=url) as client:
        link_a, item_a = _start(client)
        link_b, item_b = _start(client)
        assert client.get(f"{link_b}/audio/{item_b}/calibration.flac").status_code == 200
        assert client.get(f"{link_a}/audio/{item_b}/calibration.flac").status_code == 404
        assert (
            client.get(f"{link_a}/audio/{item_a}/reference.flac").status_code == 404
        )  # not its role
        r = client.post(f"{link_a}/answer", data={"item": str(item_b), "answer": "1"})
        assert r.status_code == 404
        assert query(c.database, "SELECT answer FROM items WHERE id = ?", item_b) == [(None,)]
        assert (
            client.post(f"{link_a}/answer", data={"item": str(item_a), "answer": "1"}).status_code
            == 303
        )


def test_inputs_are_validated_and_size_limited(site, query):
    url, c, _ = site
    with httpx.Client(base_url=url) as client:
        link, item = _start(client)
        form = {"item": str(item), "answer": "1"}
        post = lambda **kw: client.post(f"{link}/answer", **kw)  # noqa: E731
        assert post(data={**form, "pad": "x" * MAX_BODY}).status_code == 413
        chunks = (b"item=%d&answer=1&pad=" % item, b"x" * MAX_BODY)
        assert (
            post(
                content=iter(chunks), headers={"content-type": "application/x-www-form-urlencoded"}
            ).status_code
            == 413
        )
        for bad in (
            {**form, "answer": "2"},
            {**form, "answer": "x"},
            {"item": str(item)},
            {"answer": "1"},
            {**form, "answer": "99999999999"},
            {**form, "plays": "-1"},
        ):
            assert post(data=bad).status_code == 400, bad
        raw = f"item={item}&answer=1&answer=1".encode()
        assert (
            post(
                content=raw, headers={"content-type": "application/x-www-form-urlencoded"}
            ).status_code
            == 400
        )
        assert post(json=form).status_code == 415
        assert client.get(f"{link}/audio/abc/calibration.flac").status_code == 404
        assert query(c.database, "SELECT answer FROM items WHERE id = ?", item) == [(None,)]
        assert client.post(f"{link}/comment", data={"comment": "early"}).status_code == 409

    # at the comment: too long, or control characters, refused; a plain one kept
    async def to_comment() -> Visitor:
        async with httpx.AsyncClient(base_url=url) as ac:
            v = Visitor(ac, SimulatedListener(0.5, 0.1, 0.0, 3), fetch_audio=False)
            v.link = link
            while (step := await v.page()).phase != "comment":
                await v.answer(step, v.decide(step, {}))
            return v

    asyncio.run(to_comment())
    with httpx.Client(base_url=url) as client:
        assert client.post(f"{link}/comment", data={"comment": "x" * 2001}).status_code == 400
        assert client.post(f"{link}/comment", data={"comment": "bell\x07"}).status_code == 400
        assert client.post(f"{link}/comment", data={"comment": "ok\nthanks"}).status_code == 303
        assert 'data-phase="done"' in client.get(link).text


def test_every_admin_route_needs_the_token(site, demo_corpus, query):
    url, c, app = site
    admin_routes = [
        (m, r.path.replace("{lid}", "1"))
        for r in app.routes
        if getattr(r, "path", "").startswith("/admin") and r.path != "/admin/login"
        for m in r.methods
    ]
    assert {p for _, p in admin_routes} >= {
        "/admin",
        "/admin/export",
        "/admin/answers.csv",
        "/admin/summary.json",
        "/admin/listeners/1",
    }
    with httpx.Client(base_url=url) as client:
        for method, path in admin_routes:
            assert client.request(method, path).status_code == 401, path
            wrong = {"Authorization": "Bearer " + "x" * len(ADMIN)}
            assert client.request(method, path, headers=wrong).status_code == 401, path
            assert (
                client.request(method, path, headers={"Cookie": "pamflow_admin=nope"}).status_code
                == 401
            )
        assert client.post("/admin/login", data={"token": "wrong"}).status_code == 401
        r = client.post("/admin/login", data={"token": ADMIN})
        assert r.status_code == 303 and "httponly" in r.headers["set-cookie"].lower()
        assert client.get("/admin").status_code == 200  # the cookie
        bearer = {"Authorization": f"Bearer {ADMIN}"}
        assert httpx.get(f"{url}/admin/summary.json", headers=bearer).status_code == 200
        # what the admin reaches with it: a listener's page, the answers, an export
        page = client.get("/admin/listeners/1")
        assert page.status_code == 200 and "L0001" in page.text
        answers = client.get("/admin/answers.csv").text.splitlines()
        assert answers[0].startswith("listener,excluded,item,position,phase")
        assert len(answers) - 1 == query(c.database, "SELECT count(*) FROM items")[0][0]
        exported = client.post("/admin/export")
        assert exported.status_code == 200 and 'data-phase="exported"' in exported.text
        assert len(list(Path(c.export_dir).glob("safe-*/dataset.json"))) == 1
    with httpx.Client(base_url=url) as client:
        assert client.get("/admin/listeners/1").status_code == 401  # a fresh client: no cookie


def test_no_answer_can_be_forged(site, query):
    url, c, _ = site
    with httpx.Client(base_url=url) as client:
        link, item = _start(client)
        other, other_item = _start(client)
        top = query(c.database, "SELECT max(id) FROM items")[0][0]
        for forged in (top + 1, top + 1000, other_item):  # not asked yet, or another's
            assert (
                client.post(f"{link}/answer", data={"item": str(forged), "answer": "1"}).status_code
                == 404
            )
        assert (
            client.post(f"{link}/answer", data={"item": str(item), "answer": "1"}).status_code
            == 303
        )
        attention = _item(client, link)
        assert (
            client.post(f"{link}/answer", data={"item": str(attention), "answer": "2"}).status_code
            == 303
        )
        assert (
            client.post(f"{link}/answer", data={"item": str(attention), "answer": "3"}).status_code
            == 409
        )
        assert (
            client.post(f"{link}/answer", data={"item": str(attention), "answer": "2"}).status_code
            == 303
        )
        assert query(c.database, "SELECT answer FROM items WHERE id = ?", attention) == [(2,)]
        teaching = _item(client, link)

    # eight copies of one answer at once: one stored, one next item
    async def burst() -> list[int]:
        async with httpx.AsyncClient(base_url=url) as ac:
            rs = await asyncio.gather(
                *(
                    ac.post(f"{link}/answer", data={"item": str(teaching), "answer": "1"})
                    for _ in range(8)
                )
            )
        return [r.status_code for r in rs]

    assert set(asyncio.run(burst())) == {200}
    lid = query(c.database, "SELECT listener_id FROM items WHERE id = ?", teaching)[0][0]
    positions = [
        p
        for (p,) in query(
            c.database, "SELECT position FROM items WHERE listener_id = ? ORDER BY position", lid
        )
    ]
    assert positions == [0, 1, 2, 3]
    assert query(
        c.database, "SELECT count(*) FROM items WHERE listener_id = ? AND answer IS NOT NULL", lid
    ) == [(3,)]
    assert query(c.database, "SELECT answer FROM items WHERE id = ?", other_item) == [(None,)]
