"""The build library in one plain process: determinism, resume, spec validation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from pamflow import storage
from pamflow.datasets.base import get_recipe
from pamflow.datasets.jnd import replay
from pamflow.datasets.spec import SpecError
from pamflow.pipeline import build
from pamflow.testing import row_digests

FAMILIES = ["white_noise", "pink_noise", "reverb_drr", "mp3", "mulaw", "eq", "pops", "dropouts"]
SPEC = {"num_examples": 30, "shard_size": 10, "clip_seconds": 1.0, "queries_per_sequence": 5,
        "families": FAMILIES, "seed": 3}


@pytest.fixture(scope="module")
def jnd_local(tmp_path_factory, demo_corpus):
    out = str(tmp_path_factory.mktemp("jnd") / "local")
    summary = build.build_local("jnd", SPEC, out)
    return out, summary


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


def test_rows_replay_from_their_params(jnd_local, demo_sources):
    out, _ = jnd_local
    ds = storage.Dataset.open(out)
    spec = get_recipe("jnd").parse(SPEC)
    for i in (0, 7, 29):
        row = ds.row(i)
        ref, per = replay(row, spec, demo_sources)
        stored_ref, _ = ds.decode_audio(row["reference"])
        stored_per, _ = ds.decode_audio(row["perturbed"])
        # equal within the 24-bit FLAC step
        assert np.max(np.abs(ref - stored_ref)) < 2e-7
        assert np.max(np.abs(per - stored_per)) < 2e-7


def test_rows_do_not_depend_on_shard_size(jnd_local, tmp_path):
    out, _ = jnd_local
    other = str(tmp_path / "shard7")
    build.build_local("jnd", {**SPEC, "shard_size": 7}, other)
    assert len(storage.Dataset.open(other).shards) == 5
    assert row_digests(other) == row_digests(out)


def test_rerun_skips_complete_shards_and_refuses_another_spec(jnd_local, tmp_path):
    out, _ = jnd_local
    seen = []
    build.build_local("jnd", SPEC, out, progress=seen.append)
    assert [s["skipped"] for s in seen] == [True, True, True]
    with pytest.raises(SpecError, match="another spec.*seed"):
        build.build_local("jnd", {**SPEC, "seed": 4}, out)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"families": ["white_noise", "warp_drive"]}, "families"),
        ({"strength": {"low": -5, "high": 50}}, "strength.low"),
        ({"strength": {"low": 60, "high": 40}}, "strength"),
        ({"manifests": ["/nonexistent/manifest.parquet"]}, "manifests"),
        ({"clip_seconds": 3600 * 1.0 / 60}, "clip_seconds"),
        ({"clip_seconds": 0}, "clip_seconds"),
        ({"num_examples": 0}, "num_examples"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_bad_spec_fails_before_work_naming_the_field(change, field, tmp_path):
    out = tmp_path / "never"
    with pytest.raises(SpecError, match=field):
        build.prepare("jnd", {**SPEC, **change}, str(out))
    assert not out.exists(), "nothing may be written for a bad spec"


def test_simulated_labels_are_balanced(tmp_path, demo_corpus):
    out = str(tmp_path / "balance")
    spec = {**SPEC, "num_examples": 120, "shard_size": 60, "queries_per_sequence": 10, "seed": 11}
    summary = build.build_local("jnd", spec, out)
    assert 0.4 <= summary["share_different"] <= 0.6, summary


def test_uniform_strength_sampling_keeps_labels_but_not_the_staircase(tmp_path, demo_corpus):
    spec = {**SPEC, "num_examples": 20, "shard_size": 20, "queries_per_sequence": 10}

    def strengths_and_labels(**change) -> tuple[list, list]:
        out = str(tmp_path / "-".join(f"{k}{v}" for k, v in change.items()))
        build.build_local("jnd", {**spec, **change}, out)
        table = storage.Dataset.open(out).to_table(columns=["strength", "label"])
        return table.column("strength").to_pylist(), table.column("label").to_pylist()

    # uniform: the questions do not depend on the answers, so a harder-to-please panel
    # changes the labels only; the staircase follows the answers, so its strengths move too
    easy_s, easy_y = strengths_and_labels(strength_sampling="uniform", listener_threshold=0.2)
    hard_s, hard_y = strengths_and_labels(strength_sampling="uniform", listener_threshold=5.0)
    assert easy_s == hard_s and None not in easy_y
    assert sum(easy_y) > sum(hard_y)
    stair_easy, _ = strengths_and_labels(listener_threshold=0.2)
    stair_hard, _ = strengths_and_labels(listener_threshold=5.0)
    assert stair_easy != stair_hard
    with pytest.raises(SpecError, match="staircase"):
        build.prepare("jnd", {**spec, "labels": "none", "strength_sampling": "staircase"},
                      str(tmp_path / "bad"))
