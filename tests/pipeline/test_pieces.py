"""Work units: shards cut into pieces (whole JND sequences) by any worker in any order,
joined into the same shard files a single process writes; resumable; bad plans refused."""

from __future__ import annotations

import json
import os

import pytest

from pamflow import storage
from pamflow.pipeline import build
from pamflow.testing import row_digests

SPEC = {"num_examples": 30, "shard_size": 15, "clip_seconds": 0.5, "queries_per_sequence": 4,
        "families": ["white_noise", "eq"], "seed": 2}  # fmt: skip


@pytest.fixture(scope="module")
def whole(tmp_path_factory, demo_corpus):
    out = str(tmp_path_factory.mktemp("whole") / "d")
    build.build_local("jnd", SPEC, out)
    return out


def test_plan_covers_every_row_once_in_whole_sequences():
    spec = build.get_recipe("jnd").parse(SPEC)
    assert build.plan_pieces("jnd", spec, 0) == build.plan_pieces("jnd", spec, 2)
    assert all(p.parts == 1 for p in build.plan_pieces("jnd", spec, 2))
    pieces = build.plan_pieces("jnd", spec, 10)
    rows = [i for p in pieces for i in range(p.start, p.stop)]
    assert rows == list(range(30))
    for p in pieces:  # cut only between sequences (or at a shard's edge)
        assert p.start % 4 == 0 or p.start % 15 == 0
        assert p.stop % 4 == 0 or p.stop in (15, 30)
    assert {p.shard for p in pieces} == {0, 1} and max(p.parts for p in pieces) > 1


def test_pieces_in_any_order_make_the_same_shard_files(whole, tmp_path):
    out = str(tmp_path / "pieces")
    spec = build.prepare("jnd", SPEC, out)
    data = spec.model_dump(mode="json")
    pieces = build.plan_pieces("jnd", spec, 10)
    spans: dict[int, list[tuple[int, int]]] = {}
    for p in pieces:
        spans.setdefault(p.shard, []).append((p.start, p.stop))
    first = pieces[0]
    build.build_piece("jnd", data, out, first)
    with pytest.raises(RuntimeError, match="a piece of it is missing"):
        build.join_shard("jnd", data, out, first.shard, spans[first.shard])
    # a piece of another cut (a resumed build with more workers) is never joined
    ours = {(p.start, p.stop) for p in pieces}
    stale = [p for p in build.plan_pieces("jnd", spec, 4) if (p.start, p.stop) not in ours]
    assert stale and stale[-1].shard == 1
    build.build_piece("jnd", data, out, stale[-1])
    for p in reversed(pieces[1:]):
        info = build.build_piece("jnd", data, out, p)
        assert info["rows"] == p.stop - p.start and not info["skipped"]
    again = build.build_piece("jnd", data, out, pieces[-1])  # a rerun skips what is there
    assert again["skipped"]
    for shard, cut in spans.items():
        assert build.join_shard("jnd", data, out, shard, cut)["rows"] == 15
    build.finalize("jnd", spec, out)
    a, b = storage.Dataset.open(whole), storage.Dataset.open(out)
    assert [s["sha256"] for s in a.info["shards"]] == [s["sha256"] for s in b.info["shards"]]
    assert row_digests(out) == row_digests(whole)
    assert sorted(os.listdir(out)) == ["build.json", "dataset.json", "shards"]
    # joining a shard that is complete only tidies its pieces away
    assert build.join_shard("jnd", data, out, 0, spans[0])["skipped"]
    with pytest.raises(ValueError, match="do not cover rows"):
        build.join_shard("jnd", data, out, 1, spans[1][1:])


def test_a_piece_outside_its_shard_is_refused(tmp_path, demo_corpus):
    out = str(tmp_path / "bad")
    spec = build.prepare("jnd", SPEC, out)
    with pytest.raises(ValueError, match="lies outside shard"):
        build.build_piece("jnd", spec.model_dump(mode="json"), out, build.Piece(0, 0, 2, 10, 20))


GL_SPEC = {**SPEC, "num_examples": 48, "shard_size": 24, "seed": 7,
           "families": ["white_noise", "eq", "griffin_lim"]}  # fmt: skip


def test_cost_estimates_see_the_axes_the_rows_will_draw(demo_sources):
    recipe = build.get_recipe("jnd")
    spec = recipe.parse(GL_SPEC)
    costs = recipe.group_costs(spec, demo_sources)
    assert len(costs) == 12
    for seq, cost in enumerate(costs):
        real = recipe._head(spec, demo_sources, seq)  # what the sequence's rows draw
        estimated = recipe._head(spec, demo_sources, seq, cut=False)
        assert real[4:] == estimated[4:]  # the same reference axis, strength and axis
        # a sequence costs its rows, more where Griffin-Lim is on its axis or its reference's
        assert cost >= 4
        assert (cost > 4) == ("griffin_lim" in real[4].families + real[6].families)
    assert 0 < sum("griffin_lim" in recipe._head(spec, demo_sources, s)[6].families
                   for s in range(12)) < 12  # fmt: skip


def test_units_cut_by_cost_isolate_costly_sequences():
    recipe = build.get_recipe("jnd")
    spec = recipe.parse(GL_SPEC)
    costs = [4.0] * 12
    costs[3] = 100.0  # one Griffin-Lim sequence in shard 0 (rows 12-15)
    pieces = build.plan_pieces("jnd", spec, 4, costs)
    rows = [
        i for p in sorted(pieces, key=lambda p: (p.shard, p.part)) for i in range(p.start, p.stop)
    ]
    assert rows == list(range(48))
    costly = [p for p in pieces if p.cost >= 100]
    assert [(p.start, p.stop) for p in costly] == [(12, 16)]  # alone in its unit
    # shard 1 costs 24 of 148, under a unit's 37: it stays whole; shard 0 is cut
    assert [(p.start, p.stop, p.parts) for p in pieces if p.shard == 1] == [(24, 48, 1)]
    assert all(p.cost <= sum(costs) / 4 for p in pieces if p.stop - p.start > 4)
    assert sum(p.cost for p in pieces) == pytest.approx(sum(costs))
    # without estimates the same request cuts by rows only (12 rows a unit)
    assert all(p.cost == 0 for p in build.plan_pieces("jnd", spec, 4))


def test_finalize_takes_the_writers_hashes_and_hashes_what_it_was_not_given(
    whole, tmp_path, monkeypatch
):
    """dataset.json lists each shard's true sha256 either way; finalize reads no shard whose
    writer's info it was given (a whole shard's, a join's), and hashes any other (a piece's
    info is not a shard's)."""
    import hashlib

    from pamflow.storage import dataset as dataset_module

    out = str(tmp_path / "d")
    spec = build.prepare("jnd", SPEC, out)
    data = spec.model_dump(mode="json")
    written = [build.build_shard("jnd", data, out, 0)]
    pieces = [p for p in build.plan_pieces("jnd", spec, 10) if p.shard == 1]
    infos = [build.build_piece("jnd", data, out, p) for p in pieces]
    written.append(build.join_shard("jnd", data, out, 1, [(p.start, p.stop) for p in pieces]))
    assert any(i["parts"] > 1 for i in infos)
    hashed: list[str] = []
    real = dataset_module.sha256_file

    def counting(fs, path):
        hashed.append(path)
        return real(fs, path)

    monkeypatch.setattr(dataset_module, "sha256_file", counting)
    assert build.finalize("jnd", spec, out, written + infos)["rows"] == 30
    assert hashed == []
    listed = json.loads((tmp_path / "d" / "dataset.json").read_text())["shards"]
    for shard in listed:
        true = hashlib.sha256((tmp_path / "d" / shard["path"]).read_bytes()).hexdigest()
        assert shard["sha256"] == true
    assert row_digests(out) == row_digests(whole)
    hashed.clear()
    build.finalize("jnd", spec, out, infos)  # pieces' infos only: every shard is read
    assert sorted(os.path.basename(p) for p in hashed) == [
        "part-00000.parquet", "part-00001.parquet"
    ]  # fmt: skip
