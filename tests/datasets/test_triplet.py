"""The triplet recipe: columns, along/across chains, simulated labels, determinism, replay,
and the importer of published triplet lists."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

import pamflow.datasets.triplet as triplet
from pamflow import storage
from pamflow.datasets.base import get_recipe
from pamflow.datasets.importers import LabelsError
from pamflow.datasets.listener import perceptual_distance
from pamflow.datasets.spec import SpecError
from pamflow.perturbations import get
from pamflow.pipeline import build
from pamflow.testing import row_digests, speech_like

FAMILIES = ["white_noise", "pink_noise", "reverb_drr", "mp3", "mulaw", "eq", "pops", "dropouts"]
ALONG = {
    "num_examples": 24,
    "shard_size": 10,
    "clip_seconds": 1.0,
    "families": FAMILIES,
    "seed": 5,
    "mode": "along",
}
ACROSS = {**ALONG, "num_examples": 16, "mode": "across", "seed": 6}


@pytest.fixture(scope="module")
def along(tmp_path_factory, demo_corpus):
    out = str(tmp_path_factory.mktemp("triplet") / "along")
    summary = build.build_local("triplet", ALONG, out)
    return out, summary, list(storage.Dataset.open(out).iter_rows())


@pytest.fixture(scope="module")
def across(tmp_path_factory, demo_corpus):
    out = str(tmp_path_factory.mktemp("triplet") / "across")
    build.build_local("triplet", ACROSS, out)
    return out, list(storage.Dataset.open(out).iter_rows())


def test_rows_follow_the_columns(along):
    out, summary, rows = along
    ds = storage.Dataset.open(out)
    names = {n for n, _, _ in get_recipe("triplet").columns(None)}
    assert ds.verify().ok and ds.num_rows == 24 and len(ds.shards) == 3
    assert names | {"index", "example_id", "seed", "params"} == set(rows[0])
    for r in rows:
        for c in ("reference", "a", "b"):
            x, sr = ds.decode_audio(r[c])
            assert sr == 16000 and x.shape == (16000,) and x.dtype == np.float32
        assert 0 <= r["strength_a"] <= 100 and 0 <= r["strength_b"] <= 100
        assert r["axis_a"] and r["axis_b"] and r["mode"] == "along"
        assert r["label"] in (0, 1, None) and r["label_source"] == "simulated"
        assert r["votes"] == 9 and 0.5 <= r["agreement"] <= 1.0
        assert r["distance_a"] >= 0 and r["distance_b"] >= 0
        assert r["source_id"] == r["params"]["clip"]["source_id"]
        assert {"clip", "reference_chain", "chain_a", "chain_b", "voters"} <= set(r["params"])
    labels = [r["label"] for r in rows]
    assert summary["a_closer"] == labels.count(0) and summary["b_closer"] == labels.count(1)


def test_along_points_share_the_axis_and_move_together(along):
    _, summary, rows = along
    grid = np.linspace(0, 100, 64)
    stronger_is_b = []
    for r in rows:
        p = r["params"]
        assert r["axis_a"] == r["axis_b"] and p["axis_a"] == p["axis_b"]
        assert r["strength_a"] != r["strength_b"]
        assert np.isclose(grid, r["strength_a"]).any() and np.isclose(grid, r["strength_b"]).any()
        weak, strong = (
            (p["chain_a"], p["chain_b"])
            if r["strength_a"] < r["strength_b"]
            else (p["chain_b"], p["chain_a"])
        )
        assert [s["family"] for s in weak] == [s["family"] for s in strong] == r["axis_a"]
        assert all(s["strength"] >= w["strength"] for w, s in zip(weak, strong, strict=True))
        assert all(s["strength"] > w["strength"] for w, s in zip(weak, strong, strict=True))
        stronger_is_b.append(r["strength_b"] > r["strength_a"])
    assert 0 < sum(stronger_is_b) < len(rows)  # which of A/B is the stronger is random
    # the weaker point is mostly judged closer
    assert summary["along_weaker_closer"] >= 0.7


def test_across_axes_use_different_categories(across):
    _, rows = across
    for r in rows:
        cats_a = {get(f).category for f in r["axis_a"]}
        cats_b = {get(f).category for f in r["axis_b"]}
        assert cats_a and cats_b and not cats_a & cats_b
        assert r["mode"] == "across" and "path" not in r["params"]
    assert len({r["strength_a"] for r in rows}) == len(rows)


def test_labels_are_the_majority_of_the_recorded_voters(along, across):
    (out, _, rows_along), (out2, rows_across) = along, across
    spec = get_recipe("triplet").parse(ALONG)
    members = triplet.panel(spec)
    decisive = clear = 0
    for path, rows in ((out, rows_along), (out2, rows_across)):
        ds = storage.Dataset.open(path)
        for r in rows:
            ref, a, b = (ds.decode_audio(r[c])[0] for c in ("reference", "a", "b"))
            d_a = perceptual_distance(ref, a, 16000, pool_power=1.0)
            d_b = perceptual_distance(ref, b, 16000, pool_power=1.0)
            assert d_a == pytest.approx(r["distance_a"], abs=1e-4)
            assert d_b == pytest.approx(r["distance_b"], abs=1e-4)
            voters = r["params"]["voters"]
            assert len(voters) == 9
            if path == out:
                for v in voters:
                    assert members[v["listener"]].slope == v["slope"]
            probs = [triplet.p_b_closer(v, d_a, d_b) for v in voters]
            if any(abs(v["u"] - p) < 1e-4 for v, p in zip(voters, probs, strict=True)):
                continue  # a draw on the edge: quantisation may flip it
            votes = [int(v["u"] < p) for v, p in zip(voters, probs, strict=True)]
            label, agreement = triplet.majority(votes)
            assert (label, agreement) == (r["label"], pytest.approx(r["agreement"]))
            decisive += 1
            if abs(d_a - d_b) > 1.5:
                clear += 1
                assert r["label"] == int(d_b < d_a)
    assert decisive >= 30 and clear >= 5


def test_majority_and_probability():
    assert triplet.majority([1, 1, 0]) == (1, pytest.approx(2 / 3))
    assert triplet.majority([0, 0, 0, 1]) == (0, 0.75)
    assert triplet.majority([0, 1]) == (None, 0.5)
    v = {"threshold": 1.0, "slope": 0.2, "lapse": 0.0, "seed": 0, "u": 0.3}
    assert triplet.p_b_closer(v, 3.0, 1.0) > 0.99  # A much farther: B closer
    assert triplet.p_b_closer(v, 1.0, 3.0) < 0.01
    assert triplet.p_b_closer({**v, "lapse": 0.1}, 1.0, 1.0) == pytest.approx(0.5)


def test_rows_do_not_depend_on_shard_size(along, tmp_path):
    out, _, _ = along
    other = str(tmp_path / "shard7")
    build.build_local("triplet", {**ALONG, "shard_size": 7}, other)
    assert len(storage.Dataset.open(other).shards) == 4
    assert row_digests(other) == row_digests(out)


def test_rows_replay_from_their_params(along, across, demo_sources):
    for out, spec_data in ((along[0], ALONG), (across[0], ACROSS)):
        ds = storage.Dataset.open(out)
        spec = get_recipe("triplet").parse(spec_data)
        for i in (0, 9, ds.num_rows - 1):
            row = ds.row(i)
            for got, col in zip(
                triplet.replay(row, spec, demo_sources), ("reference", "a", "b"), strict=True
            ):
                assert np.max(np.abs(got - ds.decode_audio(row[col])[0])) < 2e-7


def test_unlabelled_build(tmp_path, demo_corpus):
    out = str(tmp_path / "none")
    summary = build.build_local("triplet", {**ALONG, "num_examples": 3, "labels": "none"}, out)
    assert summary["labelled"] == 0
    for r in storage.Dataset.open(out).iter_rows():
        assert r["label"] is r["agreement"] is r["votes"] is r["label_source"] is None
        assert "voters" not in r["params"]


@pytest.mark.parametrize(
    "bad, field",
    [
        ({"strength": {"low": 40, "high": 40}}, "strength"),
        ({"mode": "across", "families": ["white_noise", "pink_noise"]}, "families"),
        ({"mode": "sideways"}, "mode"),
        ({"families": ["nope"]}, "families"),
        ({"n_voters": 0}, "n_voters"),
    ],
)
def test_bad_specs_fail_naming_the_field(bad, field, tmp_path):
    with pytest.raises(SpecError, match=field):
        build.build_local("triplet", {**ALONG, **bad}, str(tmp_path / "x"))


def _write(path, seed):
    sf.write(
        str(path), speech_like(seconds=0.5, sample_rate=16000, seed=seed), 16000, subtype="FLOAT"
    )


def test_import_triplet_list_quarantines_missing_audio(tmp_path):
    for k in range(3):
        for part in ("ref", "s1", "s2"):
            _write(tmp_path / f"{part}{k}.wav", 10 * k + len(part))
    (tmp_path / "s21.wav").unlink()  # line 2 lacks its B
    (tmp_path / "list.txt").write_text(
        "ref0.wav\ts10.wav\ts20.wav\t1\n\nref1.wav\ts11.wav\ts21.wav\t0\n"
        "ref2.wav\ts12.wav\ts22.wav\t0\n"
    )
    out = str(tmp_path / "ds")
    summary = triplet.import_triplet_list(str(tmp_path / "list.txt"), out, sample_rate=22050)
    assert summary == {"recipe": "triplet", "path": out, "rows": 2, "quarantined": 1}
    ds = storage.Dataset.open(out)
    assert ds.verify().ok and ds.recipe == "triplet" and ds.sample_rate == 22050
    quarantine = ds.info["quarantine"]
    assert (
        len(quarantine) == 1
        and quarantine[0]["line"] == "3"
        and "s21.wav" in quarantine[0]["reason"]
    )
    rows = list(ds.iter_rows())
    assert [r["label"] for r in rows] == [1, 0]
    assert [r["params"]["ref"] for r in rows] == ["ref0.wav", "ref2.wav"]
    for r in rows:
        assert r["label_source"] == "triplet-list" and r["agreement"] is None and r["votes"] is None
        ref, sr = ds.decode_audio(r["reference"])
        b, _ = ds.decode_audio(r["b"])
        assert sr == 22050 and ref.shape == b.shape and abs(ref.size - 11025) <= 2
    # the reference is the file the list names (resampled), not one of the others
    want, _ = __import__("pamflow.audio", fromlist=["load"]).load(str(tmp_path / "ref2.wav"), 22050)
    got, _ = ds.decode_audio(rows[1]["reference"])
    assert np.max(np.abs(got - want[: got.size])) < 1e-6


def test_import_reads_votes_and_agreement_and_rejects_bad_lines(tmp_path):
    for part in ("r", "x", "y"):
        _write(tmp_path / f"{part}.wav", len(part))
    (tmp_path / "h.txt").write_text(
        "ref\ts1\ts2\tlabel\tvotes\tagreement\nr.wav\tx.wav\ty.wav\t1\t9\t0.78\n"
    )
    triplet.import_triplet_list(str(tmp_path / "h.txt"), str(tmp_path / "h"))
    row = storage.Dataset.open(str(tmp_path / "h")).row(0)
    assert (row["label"], row["votes"], row["agreement"]) == (1, 9, 0.78)
    (tmp_path / "bad.txt").write_text("r.wav\tx.wav\ty.wav\t1\nr.wav\tx.wav\ty.wav\t2\n")
    with pytest.raises(LabelsError, match=r"bad.txt:2: label"):
        triplet.import_triplet_list(str(tmp_path / "bad.txt"), str(tmp_path / "b"))
    (tmp_path / "short.txt").write_text("r.wav\tx.wav\t1\n")
    with pytest.raises(LabelsError, match=r"short.txt:1: expected"):
        triplet.read_triplet_list(str(tmp_path / "short.txt"))


def test_params_are_plain_json(along):
    _, _, rows = along
    assert json.loads(json.dumps(rows[0]["params"])) == rows[0]["params"]
