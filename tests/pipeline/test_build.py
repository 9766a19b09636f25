"""The build library in one plain process: a valid dataset, rows independent of the shard
size, resume.

``jnd_local`` and ``jnd_spec`` come from tests/conftest.py (shared with tests/datasets)."""

from __future__ import annotations

import json
import multiprocessing
import time

import pytest
import soundfile as sf

from pamflow import storage
from pamflow.datasets.spec import SpecError
from pamflow.pipeline import build
from pamflow.testing import row_digests


def test_local_build_writes_a_valid_dataset(jnd_local):
    out, summary = jnd_local
    ds = storage.Dataset.open(out)
    assert ds.recipe == "jnd" and ds.num_rows == 30 and len(ds.shards) == 3
    assert ds.verify().ok
    assert summary["rows"] == 30 and summary["labelled"] == 30
    rows = list(ds.iter_rows())
    assert [r["index"] for r in rows] == list(range(30))
    assert len({r["example_id"] for r in rows}) == 30
    for r in rows:
        assert r["label"] in (0, 1) and r["label_source"] == "simulated"
        assert 0 <= r["strength"] <= 100 and r["axis"]
        # plain soundfile decodes the stored file
        ref, sr = sf.read(__import__("io").BytesIO(r["reference"]["bytes"]), dtype="float32")
        assert sr == 16000 and ref.shape == (16000,)
    # a sequence holds 5 questions on one reference and axis
    seq0 = [r for r in rows if r["sequence"] == 0]
    assert len(seq0) == 5 and len({json.dumps(r["params"]["axis"]) for r in seq0}) == 1


def test_rows_do_not_depend_on_shard_size(jnd_local, jnd_spec, tmp_path):
    out, _ = jnd_local
    other = str(tmp_path / "shard7")
    build.build_local("jnd", {**jnd_spec, "shard_size": 7}, other)
    assert len(storage.Dataset.open(other).shards) == 5
    assert row_digests(other) == row_digests(out)


def test_rerun_skips_complete_shards_and_refuses_another_spec(jnd_local, jnd_spec, tmp_path):
    out, _ = jnd_local
    seen = []
    build.build_local("jnd", jnd_spec, out, progress=seen.append)
    assert [s["skipped"] for s in seen] == [True, True, True]
    with pytest.raises(SpecError, match="another spec.*seed"):
        build.build_local("jnd", {**jnd_spec, "seed": 4}, out)


def _claim(out: str, spec: dict, start: float, results) -> None:
    """One of two racing builds: wait for the shared start instant, then claim ``out``."""
    while time.time() < start:
        pass
    try:
        build.prepare("jnd", spec, out)
        results.put(spec["seed"])
    except SpecError:
        results.put(None)


def test_two_builds_racing_for_one_folder_never_mix(jnd_spec, tmp_path):
    # issue 11: both used to pass prepare() in 2 of 4 trials, then wrote into one dataset
    ctx = multiprocessing.get_context("fork")
    for trial in range(10):
        out = str(tmp_path / f"race{trial}")
        results = ctx.Queue()
        start = time.time() + 0.3
        procs = [
            ctx.Process(target=_claim, args=(out, {**jnd_spec, "seed": seed}, start, results))
            for seed in (1, 2)
        ]
        for p in procs:
            p.start()
        for p in procs:
            p.join(30)
        won = [results.get(timeout=5) for _ in procs]
        winners = [w for w in won if w is not None]
        assert len(winners) == 1, (trial, won)
        marker = json.loads((tmp_path / f"race{trial}" / build.BUILD_FILE).read_text())
        assert marker["spec"]["seed"] == winners[0]


def test_a_folder_pamflow_did_not_make_is_refused_and_left_as_it_was(jnd_spec, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    (out / ".notes.tmp").write_text("an editor's temporary file")
    with pytest.raises(SpecError, match="not empty and holds no pamflow build"):
        build.build_local("jnd", jnd_spec, str(out))
    assert sorted(p.name for p in out.iterdir()) == [".notes.tmp", "thesis.tex"]
    assert (out / ".notes.tmp").read_text() == "an editor's temporary file"
    # an empty folder (made by the user, or by a scheduler) is fine
    (tmp_path / "empty").mkdir()
    build.prepare("jnd", jnd_spec, str(tmp_path / "empty"))
    assert (tmp_path / "empty" / build.BUILD_FILE).exists()
