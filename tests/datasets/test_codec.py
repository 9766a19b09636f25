"""The codec recipe: sample-exact lossless/MP3 pairs, band limit, patches, determinism."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import signal

import pamflow.datasets.codec as codec  # registers the recipe
from pamflow.datasets.base import get_recipe
from pamflow.datasets.spec import SpecError
from pamflow.pipeline import build
from pamflow.storage import Dataset
from pamflow.testing import lag_of, row_digests

SR = 16000
BASE = {
    "seed": 5,
    "clip_seconds": 1.0,
    "num_examples": 10,
    "shard_size": 4,
    "source_kinds": ["music", "speech"],
    "bitrates": [16, 64],
}


@pytest.fixture(scope="module")
def built(tmp_path_factory, demo_corpus):
    out = tmp_path_factory.mktemp("codec") / "d"
    summary = build.build_local("codec", BASE, str(out))
    ds = Dataset.open(str(out))
    rows = []
    for r in ds.iter_rows():
        r["lossless_audio"], _ = ds.decode_audio(r["lossless"])
        r["coded_audio"], _ = ds.decode_audio(r["coded"])
        rows.append(r)
    return out, summary, rows


def _band_db(x: np.ndarray, lo_hz: float) -> float:
    f, p = signal.welch(x.astype(np.float64), SR, nperseg=512)
    return 10 * np.log10(p[f >= lo_hz].sum() + 1e-30)


def test_pairs_are_aligned_and_equal_length(built):
    _, summary, rows = built
    assert summary["rows"] == 10
    assert set(summary["bitrates_kbps"]) == {"16", "64"}
    assert set(summary["source_kinds"]) == {"music", "speech"}
    for r in rows:
        a, b = r["lossless_audio"], r["coded_audio"]
        assert a.size == b.size == SR
        assert lag_of(a, b) == 0
        assert r["codec"] == "mp3" and r["bitrate_kbps"] in (16, 64)
        err = 10 * np.log10(np.sum(a.astype(np.float64) ** 2) / np.sum((a - b) ** 2.0))
        assert 3.0 < err < 60.0  # coded, but the same clip
        p = r["params"] if isinstance(r["params"], dict) else json.loads(r["params"])
        assert p["bitrate_kbps"] == r["bitrate_kbps"] and p["encode_rate"] == 16000
        assert r["offset"] == pytest.approx(p["offset_s"])


def test_16_kbps_removes_the_top_band(built):
    """At 16 kb/s and 16 kHz LAME low-passes near 5.5 kHz: measured, the energy above
    6.5 kHz drops by 70-90 dB on the demo music; 64 kb/s keeps the band."""
    _, _, rows = built
    checked = {16: 0, 64: 0}
    for r in rows:
        a, b = r["lossless_audio"], r["coded_audio"]
        top_a = _band_db(a, 6500.0)
        if top_a - _band_db(a, 0.0) < -60.0:
            continue  # nothing up there to remove
        drop = top_a - _band_db(b, 6500.0)
        if r["bitrate_kbps"] == 16:
            assert drop > 40.0
        else:
            assert drop < 10.0
        checked[r["bitrate_kbps"]] += 1
    assert checked[16] >= 2 and checked[64] >= 1


def test_same_rows_whatever_the_shard_size(built, tmp_path):
    out, _, _ = built
    other = tmp_path / "d2"
    build.build_local("codec", {**BASE, "shard_size": 10}, str(other))
    assert row_digests(str(out)) == row_digests(str(other))


def test_batched_coding_equals_replay_alone(demo_sources):
    recipe = get_recipe("codec")
    spec = recipe.parse(BASE)
    rows = list(recipe.generate(spec, demo_sources, 3, 7))
    assert [r["index"] for r in rows] == [3, 4, 5, 6]
    for row in rows:
        row["params"] = json.dumps(row["params"])
        lossless, coded = codec.replay(row, spec, demo_sources)
        np.testing.assert_array_equal(lossless, row["lossless"])
        np.testing.assert_array_equal(coded, row["coded"])


def test_context_makes_coding_differ_from_a_cold_start(demo_sources):
    recipe = get_recipe("codec")
    with_ctx = next(
        recipe.generate(recipe.parse({**BASE, "source_kinds": ["music"]}), demo_sources, 0, 1)
    )
    cold = next(
        recipe.generate(
            recipe.parse({**BASE, "source_kinds": ["music"], "context_seconds": 0.0}),
            demo_sources,
            0,
            1,
        )
    )
    np.testing.assert_array_equal(with_ctx["lossless"], cold["lossless"])
    assert with_ctx["params"]["context_before_s"] > 0 and cold["params"]["context_before_s"] == 0
    assert not np.array_equal(with_ctx["coded"], cold["coded"])


@pytest.mark.parametrize("patch, samples", [("time", 16384), ("stft", 66048)])
def test_patches_have_the_papers_sizes(demo_sources, patch, samples):
    recipe = get_recipe("codec")
    spec = recipe.parse({"seed": 1, "num_examples": 2, "patch": patch, "patch_offsets": "grid"})
    assert spec.clip_samples == spec.row_samples == samples
    for row in recipe.generate(spec, demo_sources, 0, 2):
        assert row["lossless"].size == row["coded"].size == samples
        start = int(round(row["offset"] * SR))
        assert start % codec.PATCH_HOP[patch] == 0
        assert lag_of(row["lossless"], row["coded"]) == 0
        audio = demo_sources.load(row["source_id"], SR)
        ref = audio[start : start + samples] * np.float32(row["params"]["gain"])
        np.testing.assert_allclose(row["lossless"], ref[:samples], atol=1e-6)


def test_patch_conflicts_with_another_clip_length():
    with pytest.raises(SpecError, match="clip_seconds"):
        get_recipe("codec").parse({"patch": "time", "clip_seconds": 2.0})
    assert get_recipe("codec").parse({"patch": "time", "clip_seconds": 1.024}).row_samples == 16384


@pytest.mark.parametrize(
    "bad, field",
    [
        ({"bitrates": [17]}, "bitrates"),
        ({"bitrates": []}, "bitrates"),
        ({"source_kinds": ["noise"]}, "source_kinds"),
        ({"patch": "mdct"}, "patch"),
    ],
)
def test_bad_specs_name_the_field(bad, field):
    with pytest.raises(SpecError, match=field):
        get_recipe("codec").parse({**BASE, **bad})


def test_region_for_pads_and_reports_the_lead():
    audio = np.arange(10, dtype=np.float32)
    region, lead = codec.region_for(audio, 1, 4, 3)
    assert lead == 1 and region.tolist() == list(range(8))
    region, lead = codec.region_for(audio, 6, 4, 3)
    assert lead == 3 and region.size == 10 and region[-3:].tolist() == [0.0, 0.0, 0.0]
