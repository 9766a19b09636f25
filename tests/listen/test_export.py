"""Exports: a JND campaign's answers as a ``jnd`` dataset and a 2AFC campaign's as a
``triplet`` dataset, checked row by row against the database and the audio the server
played (and replayed from each row's params); excluded listeners left out unless asked;
the export flow's ``pamflow.dataset.built`` event, labelled for retraining."""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict

import httpx
import numpy as np
import pytest
import yaml

from pamflow.audio import decode
from pamflow.datasets.listener import SimulatedListener
from pamflow.listen.app import create_app
from pamflow.listen.client import Visitor
from pamflow.listen.export import ExportError, export_campaign
from pamflow.listen.session import pseudonym
from pamflow.storage import Dataset

FIELDS = {"clip_seconds": 1.0, "families": ["white_noise", "eq", "mulaw"]}
COLUMNS = "listener_id, position, sequence, query, strength, seed, answer, params, id"


class Careless(Visitor):
    def decide(self, step, audio):
        return 1 if step.phase in ("question", "teaching") else super().decide(step, audio)


def _campaign(tmp, data):
    from pamflow.listen.campaign import load_campaign

    path = tmp / "campaign.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_campaign(path)[0], str(path)


async def _visitors(url, oracle, kinds):
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        vs = [
            cls(client, SimulatedListener(0.5, 0.1, 0.0, k), seed=k, oracle=oracle)
            for k, cls in enumerate(kinds)
        ]
        for v in vs:  # one after another: listener ids follow the list
            assert await v.run() == "done"
        return [v.link for v in vs]


@pytest.fixture(scope="module")
def jnd(tmp_path_factory, demo_corpus, serve, oracle):
    tmp = tmp_path_factory.mktemp("export-jnd")
    c, path = _campaign(tmp, {"name": "exp", **FIELDS, "jnd": {"sequences": 2}})
    with serve(create_app(c)) as url:
        links = asyncio.run(_visitors(url, oracle(c.database), [Visitor, Visitor, Careless]))
        yield c, path, url, links


def _stored(value) -> np.ndarray:
    return decode(value["bytes"])[0]


def _gained(x: np.ndarray, gain_db: float) -> np.ndarray:
    return np.clip(x.astype(np.float64) * 10 ** (gain_db / 20), -1, 1).astype(np.float32)


def test_jnd_export_row_by_row(jnd, tmp_path, query, demo_sources):
    from pamflow.datasets.jnd import replay

    c, _, url, links = jnd
    summary = export_campaign(c, str(tmp_path / "out"))
    ds = Dataset.open(str(tmp_path / "out"))
    ds.verify().raise_if_failed()
    rows = ds.to_table(ds.schema.names).to_pylist()
    items = query(
        c.database,
        f"SELECT {COLUMNS} FROM items WHERE phase='question' AND sentinel IS NULL "
        "AND listener_id IN (1, 2) ORDER BY listener_id, position",
    )
    assert len(rows) == len(items) == 32 == summary["rows"]  # 2 listeners x 2 x (10 - 2)
    assert summary["excluded_listeners"] == 1 and summary["listeners_exported"] == 2
    assert ds.recipe == "jnd" and ds.spec["listening_campaign"] == "exp"
    sequences = defaultdict(set)
    spec = c.recipe_spec()
    with httpx.Client(base_url=url) as client:
        for k, (row, item) in enumerate(zip(rows, items, strict=True)):
            lid, position, seq, q, strength, seed, answer, params, item_id = item
            assert row["example_id"] == f"exp-{pseudonym(lid)}-{position:03d}"
            assert (row["label"], row["label_source"], row["listener"]) == (
                answer,
                "human",
                pseudonym(lid),
            )
            assert (row["strength"], row["seed"], row["query"], row["votes"]) == (
                strength,
                seed,
                q,
                1,
            )
            assert row["excluded"] is False and 0 <= row["agreement"] <= 1
            p = json.loads(row["params"])
            assert p["chain"] == json.loads(params)["chain"] and p["campaign"] == "exp"
            assert row["axis"] == p["axis"]["families"]
            sequences[row["sequence"]].add((lid, seq))
            reference, perturbed = _stored(row["reference"]), _stored(row["perturbed"])
            if k % 8 == 0:  # the very samples the server played
                for role, col in (("reference", reference), ("test", perturbed)):
                    served = client.get(f"{links[lid - 1]}/audio/{item_id}/{role}.flac")
                    assert served.headers["content-type"] == "audio/flac"
                    assert np.array_equal(decode(served.content)[0], col)
            # replayed from the row's params: the recipe's replay, then the recorded gains
            ref, pert = replay(row, spec, demo_sources)
            gains = p["level"]["gain_db"]
            assert np.abs(_gained(ref, gains["reference"]) - reference).max() < 2**-22
            assert np.abs(_gained(pert, gains["test"]) - perturbed).max() < 2**-22
    assert all(len(v) == 1 for v in sequences.values()) and len(sequences) == 4
    with pytest.raises(ExportError, match="not a new or empty folder"):
        export_campaign(c, str(tmp_path / "out"))
    everyone = export_campaign(c, str(tmp_path / "all"), include_excluded=True)
    table = Dataset.open(str(tmp_path / "all")).to_table(["listener", "excluded", "label"])
    flags = table.column("excluded").to_pylist()
    assert everyone["rows"] == 48 and sum(flags) == 16
    careless = [lab for lab, f in zip(table.column("label").to_pylist(), flags, strict=True) if f]
    assert set(careless) == {1}


def test_the_export_flow_emits_the_built_event_for_retraining(jnd, tmp_path, prefect_server):
    from prefect.events.worker import EventsWorker

    from pamflow.flows.build import BUILT_EVENT
    from pamflow.flows.listen import export_flow

    _, path, _, _ = jnd
    out = str(tmp_path / "flow")
    summary = export_flow(path, out, retrain=True)
    EventsWorker.drain_all(timeout=10)
    found = []
    for _ in range(40):
        r = httpx.post(
            f"{prefect_server}/events/filter",
            json={"filter": {"event": {"name": [BUILT_EVENT]}}, "limit": 50},
        )
        found = [e for e in r.json()["events"] if e["payload"].get("path") == out]
        if found:
            break
        time.sleep(0.25)
    assert len(found) == 1
    event = found[0]
    assert event["resource"]["prefect.resource.id"] == "pamflow.dataset.jnd"
    assert event["resource"]["pamflow.retrain"] == "true"
    assert event["payload"] == {
        "path": out,
        "recipe": "jnd",
        "rows": summary["rows"],
        "retrain": True,
    }
    # what the training deployment of prefect.yaml matches: this event fires it
    from pathlib import Path

    deployments = yaml.safe_load((Path(__file__).parents[2] / "prefect.yaml").read_text())[
        "deployments"
    ]
    trigger = next(d for d in deployments if d["name"] == "train-dpam-on-new-jnd")["triggers"][0]
    assert BUILT_EVENT in trigger["expect"]
    assert all(event["resource"].get(k) == v for k, v in trigger["match"].items())


def test_triplet_export_row_by_row(tmp_path, demo_corpus, serve, oracle, query, demo_sources):
    from pamflow.datasets.triplet import replay
    from pamflow.listen.plan import Planner
    from pamflow.seeding import example_seed

    c, _ = _campaign(
        tmp_path, {"name": "afc", "kind": "2afc", **FIELDS, "2afc": {"questions": 5, "pool": 3}}
    )
    with serve(create_app(c)) as url:
        asyncio.run(_visitors(url, oracle(c.database), [Visitor, Visitor, Visitor]))
    summary = export_campaign(c, str(tmp_path / "out"))
    out_ds = Dataset.open(str(tmp_path / "out"))
    rows = out_ds.to_table(out_ds.schema.names).to_pylist()
    answers = query(
        c.database,
        "SELECT listener_id, answer, params FROM items WHERE phase='question' AND sentinel IS NULL",
    )
    votes: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for lid, answer, params in answers:
        votes[json.loads(params)["pool_index"]].append((lid, answer))
    assert summary["rows"] == len(rows) == len(votes) == 3
    planner = Planner(c, demo_sources)
    for row, (k, vs) in zip(rows, sorted(votes.items()), strict=True):
        b = sum(v for _, v in vs)
        assert row["example_id"] == f"afc-t{k:05d}" and row["seed"] == example_seed(c.seed, k)
        assert (row["votes"], row["votes_b"], row["label_source"]) == (len(vs), b, "human")
        assert row["listeners"] == [pseudonym(lid) for lid, _ in vs]
        label = None if 2 * b == len(vs) else int(2 * b > len(vs))
        assert row["label"] == label
        assert row["agreement"] == pytest.approx(max(b, len(vs) - b) / len(vs))
        live = planner.live_row(k)
        assert (row["strength_a"], row["strength_b"], row["axis_a"]) == (
            live["strength_a"],
            live["strength_b"],
            live["axis_a"],
        )
        p = json.loads(row["params"])
        gains = p["level"]["gain_db"]
        for col, x in zip(
            ("reference", "a", "b"), replay(row, c.recipe_spec(), demo_sources), strict=True
        ):
            assert np.abs(_gained(x, gains[col]) - _stored(row[col])).max() < 2**-22


def test_a_served_triplet_dataset_exports_its_own_rows(tmp_path, demo_corpus, serve, oracle):
    from pamflow.pipeline.build import build_local

    source = str(tmp_path / "triplets")
    build_local("triplet", {"num_examples": 4, "shard_size": 4, "labels": "none", **FIELDS}, source)
    c, _ = _campaign(
        tmp_path,
        {
            "name": "served",
            "kind": "2afc",
            **FIELDS,
            "2afc": {"dataset": source, "questions": 3, "pool": 3},
        },
    )
    with serve(create_app(c)) as url:
        asyncio.run(_visitors(url, oracle(c.database), [Visitor, Visitor]))
    export_campaign(c, str(tmp_path / "out"))
    src = Dataset.open(source)
    original = {r["example_id"]: r for r in src.to_table(src.schema.names).to_pylist()}
    out = Dataset.open(str(tmp_path / "out"))
    rows = out.to_table(out.schema.names).to_pylist()
    assert rows and sum(r["votes"] for r in rows) == 4  # 2 listeners x 2 plain questions
    assert {r["example_id"] for r in rows} <= set(list(original)[:3])  # the pool: the first 3
    for row in rows:
        first = original[row["example_id"]]
        assert (row["strength_a"], row["axis_b"]) == (first["strength_a"], first["axis_b"])
        gains = json.loads(row["params"])["level"]["gain_db"]
        for col in ("reference", "a", "b"):  # the dataset's audio, level-matched
            assert (
                np.abs(_gained(_stored(first[col]), gains[col]) - _stored(row[col])).max() < 2**-22
            )
