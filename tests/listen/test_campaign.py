"""Campaign files: defaults, one line per bad field naming the file, relative paths, the
plan digest (what listeners hear) and a database that refuses another plan; the session
layout; level matching."""

from __future__ import annotations

import asyncio
import re

import numpy as np
import pytest

from pamflow.cli import main
from pamflow.listen.campaign import CampaignError, load_campaign, parse_campaign
from pamflow.listen.db import Database, DatabaseError, async_url
from pamflow.listen.plan import Planner, attention_text
from pamflow.listen.render import PEAK, level_match


def _write(tmp_path, text: str):
    path = tmp_path / "campaign.yaml"
    path.write_text(text)
    return path


def test_a_minimal_campaign_gets_its_defaults(tmp_path):
    c, base = load_campaign(_write(tmp_path, "name: pilot\n"))
    assert base == tmp_path.resolve()
    assert (c.kind, c.jnd.sequences, c.jnd.questions, c.jnd.sentinel_share) == ("jnd", 3, 10, 0.2)
    assert c.database == f"sqlite:///{tmp_path.resolve() / 'pilot.db'}"
    assert c.export_dir == str(tmp_path.resolve() / "exports")
    assert "griffin_lim" not in c.families  # too slow to render while a listener waits
    assert c.recipe == "jnd" and c.recipe_spec().labels == "none"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("name: Pilot\n", "name"),
        ("name: p\nkind: abx\n", "kind"),
        ("name: p\nfamilies: [white_noise, nope]\n", "nope"),
        ("name: p\njnd: {questions: 1}\n", "jnd.questions"),
        ("name: p\ncolour: red\n", "colour"),
        ("name: p\nmanifests: [missing.parquet]\n", "missing.parquet"),
        ("name: p\nkind: 2afc\n2afc: {dataset: nowhere}\n", "2afc.dataset"),
        ("name: p\nadmin_token: short\n", "admin_token"),
        ("- just\n- a list\n", "mapping"),
        ("name: [unclosed\n", "not valid YAML"),
    ],
)
def test_a_bad_campaign_is_one_line_naming_file_and_field(tmp_path, text, words):
    path = _write(tmp_path, text)
    with pytest.raises(CampaignError) as e:
        load_campaign(path)
    message = str(e.value)
    assert str(path) in message and words in message and "\n" not in message


def test_the_cli_says_so_in_one_line(tmp_path, capsys):
    path = _write(tmp_path, "name: p\nkind: abx\n")
    assert main(["listen", "serve", "--campaign", str(path)]) == 2
    assert (
        main(["listen", "export", str(tmp_path / "none.yaml"), "--out", str(tmp_path / "o")]) == 2
    )
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and "kind" in lines[0] and "none.yaml" in lines[1]


def test_relative_paths_are_taken_from_the_campaign_folder(tmp_path):
    c = parse_campaign(
        {"name": "p", "database": "sqlite:///data/answers.db", "export_dir": "out"}, tmp_path
    )
    assert c.database == f"sqlite:///{tmp_path / 'data' / 'answers.db'}"
    assert c.export_dir == str(tmp_path / "out")
    assert async_url("sqlite:///a.db") == "sqlite+aiosqlite:///a.db"
    assert async_url("postgresql://u:pw@h/db") == "postgresql+asyncpg://u:pw@h/db"
    with pytest.raises(DatabaseError, match="not an SQLAlchemy URL"):
        async_url("not a url")


def test_the_plan_digest_follows_what_listeners_hear(tmp_path, demo_corpus):
    base = {"name": "p", "clip_seconds": 1.0}
    c = parse_campaign(base, tmp_path)
    same = parse_campaign({**base, "title": "Another title", "max_listeners": 5}, tmp_path)
    other = parse_campaign({**base, "jnd": {"questions": 12}}, tmp_path)
    assert c.plan_digest() == same.plan_digest() != other.plan_digest()

    async def register(campaign) -> None:
        db = Database(str(campaign.database))
        try:
            await db.create()
            await db.register(campaign.name, campaign.kind, campaign.plan_digest(), "{}")
        finally:
            await db.dispose()

    asyncio.run(register(c))
    asyncio.run(register(same))  # presentation fields may change
    with pytest.raises(DatabaseError, match="another plan"):
        asyncio.run(register(other))


def test_a_session_has_its_layout_and_sentinels(tmp_path, demo_sources):
    c = parse_campaign({"name": "p", "clip_seconds": 1.0}, tmp_path)
    planner = Planner(c, demo_sources)
    assert planner.length == 34 and planner.questions == 30
    assert [planner.phase(p) for p in (0, 1, 2, 3, 4, 33, 34)] == [
        "calibration",
        "attention",
        "teaching",
        "teaching",
        "question",
        "question",
        None,
    ]
    for listener in (1, 2, 3):
        kinds = [planner.sentinels(listener, s) for s in range(3)]
        assert all(
            len(k) == 2 and 0 not in k and set(k.values()) == {"same", "different"} for k in kinds
        )
    attention = planner.item(5, 1)
    assert attention is not None and len(attention.params["choices"]) == 4
    heard = set(re.findall(r"[a-z']+", attention_text(attention.params).lower()))
    words = attention.params["choices"]
    assert [w in heard for w in words] == [k == attention.expected for k in range(4)]
    assert planner.item(5, 1) == attention  # deterministic


def test_level_matching_keeps_pairs_matched_and_below_full_scale():
    rng = np.random.default_rng(0)
    quiet = (0.01 * rng.standard_normal(16000)).astype(np.float32)
    loud = (0.5 * rng.standard_normal(16000)).astype(np.float32)
    (a, b), gains = level_match([quiet, loud], 16000, -23.0)
    from pamflow.audio.loudness import loudness

    assert loudness(a, 16000) == pytest.approx(loudness(b, 16000), abs=0.05)
    assert max(np.abs(a).max(), np.abs(b).max()) <= PEAK + 1e-6
    (c, d), g2 = level_match([quiet, quiet.copy()], 16000, -23.0)
    assert np.array_equal(c, d) and g2[0] == g2[1]  # a "same" pair stays bit-identical
    (e,), g3 = level_match([loud], 16000, None)
    assert np.array_equal(e, loud) and g3 == [0.0]
