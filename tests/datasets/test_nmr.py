"""The NMR recipe: labels recomputed from the stored audio, pairs, determinism."""

from __future__ import annotations

import json

import numpy as np
import pytest

import pamflow.datasets.nmr as nmr  # registers the recipe
from pamflow import measures
from pamflow.datasets.base import get_recipe
from pamflow.datasets.nmr_render import HEADROOM, SEARCH_TOL_DB
from pamflow.datasets.spec import SpecError
from pamflow.pipeline import build
from pamflow.seeding import example_seed
from pamflow.storage import Dataset
from pamflow.testing import row_digests

SR = 16000
BASE = {
    "seed": 3,
    "clip_seconds": 1.0,
    "num_examples": 12,
    "shard_size": 5,
    "reverb_probability": 0.5,
}


def _rows(path):
    ds = Dataset.open(str(path))
    return ds, list(ds.iter_rows())


@pytest.fixture(scope="module")
def built(tmp_path_factory, demo_corpus):
    out = tmp_path_factory.mktemp("nmr") / "d"
    summary = build.build_local("nmr", BASE, str(out))
    return out, summary


def test_labels_match_the_stored_audio(built):
    out, summary = built
    ds, rows = _rows(out)
    assert summary["rows"] == 12 and summary["additive_pairs"] and summary["distortion_pairs"]
    for r in rows:
        for side in "ab":
            clean, _ = ds.decode_audio(r[f"{side}_clean"])
            test, _ = ds.decode_audio(r[side])
            assert clean.size == test.size == SR
            assert max(np.abs(clean).max(), np.abs(test).max()) <= HEADROOM + 1e-6
            assert measures.si_sdr(clean, test) == pytest.approx(r[f"{side}_sisdr"], abs=0.05)
            if r["pair"] == "additive":
                snr = measures.snr_db(clean, test, SR)
                assert snr == pytest.approx(r[f"{side}_snr"], abs=0.05)
                assert -15.05 <= r[f"{side}_snr"] <= 60.05
            else:
                assert r[f"{side}_snr"] is None
                assert -15.15 <= r[f"{side}_sisdr"] <= 25.15
        assert r["preference"] == (0 if r["a_sisdr"] > r["b_sisdr"] else 1)
        assert r["sisdr_delta"] == pytest.approx(abs(r["a_sisdr"] - r["b_sisdr"]))
        assert r["sisdr_bin"] == min(39, int(r["sisdr_delta"]))
        assert (r["snr_bin"] is None) == (r["pair"] == "distortion")


def test_pairs_are_two_utterances_with_matching_noise(built):
    out, _ = built
    _, rows = _rows(out)
    reverberant = 0
    for r in rows:
        p = r["params"] if isinstance(r["params"], dict) else json.loads(r["params"])
        assert r["a_source_id"] != r["b_source_id"]
        reverberant += (p["a"]["reverb"] is not None) + (p["b"]["reverb"] is not None)
        if r["pair"] == "additive":
            label = p["noise_label"]
            assert r["a_kind"] == r["b_kind"] == f"noise:{label}"
        else:
            assert {r["a_kind"], r["b_kind"]} <= set(nmr.DISTORTIONS)
            for side in "ab":
                d = p[side]["degradation"]
                assert abs(r[f"{side}_sisdr"] - d["target_sisdr_db"]) <= SEARCH_TOL_DB + 0.05
    assert 0 < reverberant < 2 * len(rows)


def test_noise_labels_come_from_one_label(demo_sources):
    recipe = get_recipe("nmr")
    spec = recipe.parse({**BASE, "additive_probability": 1.0, "num_examples": 6})
    for row in recipe.generate(spec, demo_sources, 0, 6):
        labels = {
            demo_sources.entry(row["params"][s]["degradation"]["params"]["source_id"])["label"]
            for s in "ab"
        }
        assert labels == {row["params"]["noise_label"]}


def test_same_rows_whatever_the_shard_size(built, tmp_path):
    out, _ = built
    other = tmp_path / "d2"
    build.build_local("nmr", {**BASE, "shard_size": 12}, str(other))
    assert row_digests(str(out)) == row_digests(str(other))


def test_replay_rebuilds_the_audio(demo_sources):
    recipe = get_recipe("nmr")
    spec = recipe.parse({**BASE, "reverb_probability": 1.0})
    for row in recipe.generate(spec, demo_sources, 4, 8):
        row["params"] = json.dumps(row["params"])  # as stored
        again = nmr.replay(row, spec, demo_sources)
        for key in ("a", "b", "a_clean", "b_clean"):
            np.testing.assert_array_equal(again[key], row[key])


def test_loud_noise_scales_clean_and_noisy_together(demo_sources):
    """At -15 dB SNR white noise overshoots full scale: both sides of the pair are scaled
    by one factor, so the measured SNR is still the drawn one."""
    recipe = get_recipe("nmr")
    spec = recipe.parse(
        {
            **BASE,
            "additive_probability": 1.0,
            "noise_labels": ["white"],
            "snr_db": {"low": -15.0, "high": -15.0},
            "reverb_probability": 0.0,
            "speech_level_db": {"low": -20.0, "high": -20.0},
        }
    )
    row = next(recipe.generate(spec, demo_sources, 0, 1))
    for side in "ab":
        assert row[f"{side}_snr"] == pytest.approx(-15.0, abs=0.01)
        assert np.abs(row[side]).max() == pytest.approx(HEADROOM, abs=1e-6)  # was scaled
        assert measures.active_level_db(row[f"{side}_clean"], SR) < -20.5


def test_distortion_pairs_hit_their_targets(demo_sources):
    recipe = get_recipe("nmr")
    spec = recipe.parse(
        {
            **BASE,
            "additive_probability": 0.0,
            "distortions": ["clipping"],
            "sisdr_db": {"low": 5.0, "high": 10.0},
            "num_examples": 4,
        }
    )
    for row in recipe.generate(spec, demo_sources, 0, 4):
        assert row["a_kind"] == row["b_kind"] == "clipping"
        for side in "ab":
            assert 5.0 - 0.11 <= row[f"{side}_sisdr"] <= 10.0 + 0.11
            assert row[f"{side}_snr"] is None


def test_delta_bins_and_smoothed_targets():
    np.testing.assert_array_equal(
        nmr.delta_bins([0.0, 0.99, 1.0, -3.5, 39.9, 400.0]), [0, 0, 1, 3, 39, 39]
    )
    assert nmr.delta_bins(5.0, num_classes=10, delta_max=20.0) == 2
    t = nmr.smoothed_targets([0, 5, 39])
    assert t.shape == (3, 40) and t.dtype == np.float32
    np.testing.assert_allclose(t[1, 4:7], [0.2, 0.6, 0.2])
    np.testing.assert_allclose(t[0, :2], [0.75, 0.25])
    np.testing.assert_allclose(t[2, 38:], [0.25, 0.75])
    np.testing.assert_allclose(t.sum(-1), 1.0, rtol=1e-6)
    with pytest.raises(ValueError):
        nmr.delta_bins([np.nan])
    with pytest.raises(ValueError):
        nmr.smoothed_targets([40])


def test_label_helpers_agree_with_the_torch_losses():
    torch = pytest.importorskip("torch")
    from pamflow.models import losses

    d = np.array([0.0, 0.5, 7.3, 12.0, 39.99, 55.0])
    np.testing.assert_array_equal(nmr.delta_bins(d), losses.delta_bins(torch.tensor(d)).numpy())
    idx = np.arange(40)
    np.testing.assert_allclose(
        nmr.smoothed_targets(idx), losses.smoothed_targets(torch.tensor(idx)).numpy(), atol=1e-7
    )
    np.testing.assert_allclose(nmr.bin_centres(), losses.bin_centres().numpy(), atol=1e-6)


@pytest.mark.parametrize(
    "bad, field",
    [
        ({"distortions": ["reverb_drr"]}, "distortions"),
        ({"distortions": ["clipping"], "sisdr_db": {"low": -15, "high": -5}}, "sisdr_db"),
        ({"reverb_drr_db": {"low": -40, "high": 0}}, "reverb_drr_db"),
        ({"snr_db": {"low": 10, "high": 0}}, "snr_db"),
    ],
)
def test_bad_specs_name_the_field(bad, field):
    with pytest.raises(SpecError, match=field):
        get_recipe("nmr").parse({**BASE, **bad})


def test_unknown_noise_label_fails_before_work(tmp_path, demo_corpus):
    with pytest.raises(SpecError, match="noise_labels"):
        build.build_local("nmr", {**BASE, "noise_labels": ["thunder"]}, str(tmp_path / "x"))
    assert not (tmp_path / "x" / "shards").exists()


def test_rows_depend_only_on_their_index(demo_sources):
    recipe = get_recipe("nmr")
    spec = recipe.parse(BASE)
    late = next(recipe.generate(spec, demo_sources, 7, 8))
    alone = list(recipe.generate(spec, demo_sources, 0, 8))[-1]
    assert late["seed"] == alone["seed"] == example_seed(3, 7)
    np.testing.assert_array_equal(late["a"], alone["a"])
    assert late["a_sisdr"] == alone["a_sisdr"]
