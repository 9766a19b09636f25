"""The domain recipe: balanced domains, level matching, quiet and peaky clips, determinism."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

import pamflow.datasets.domain as domain  # registers the recipe
from pamflow.audio import loudness
from pamflow.corpus.sources import Sources
from pamflow.datasets.base import get_recipe
from pamflow.datasets.spec import SpecError
from pamflow.pipeline import build
from pamflow.storage import Dataset
from pamflow.testing import row_digests, sine

SR = 16000
BASE = {"seed": 2, "clip_seconds": 1.0, "num_examples": 12, "shard_size": 5}


@pytest.fixture(scope="module")
def built(tmp_path_factory, demo_corpus):
    out = tmp_path_factory.mktemp("domain") / "d"
    summary = build.build_local("domain", BASE, str(out))
    return out, summary


def test_domains_alternate_and_levels_match(built):
    out, summary = built
    assert summary["domains"] == {"cheap": 6, "good": 6}
    ds = Dataset.open(str(out))
    rows = list(ds.iter_rows())
    assert [r["domain"] for r in rows] == ["cheap", "good"] * 6  # labels sorted, alternating
    for r in rows:
        audio, sr = ds.decode_audio(r["audio"])
        assert sr == SR and audio.size == SR
        assert loudness(audio, SR) == pytest.approx(-23.0, abs=0.5)
        assert r["loudness_lufs"] == pytest.approx(loudness(audio, SR), abs=0.05)
        assert r["loudness_lufs"] == pytest.approx(-23.0, abs=domain.LEVEL_TOL_LU + 1e-6)
        assert r["source_id"].startswith(f"instrument/{r['domain']}")
        assert np.abs(audio).max() <= 10 ** (-1 / 20) + 1e-6
    # the gain really varied: the recordings are not all at one level
    gains = [
        json.loads(r["params"])["gain_db"]
        if isinstance(r["params"], str)
        else r["params"]["gain_db"]
        for r in rows
    ]
    assert max(gains) - min(gains) > 0.3


def test_same_rows_whatever_the_shard_size(built, tmp_path):
    out, _ = built
    other = tmp_path / "d2"
    build.build_local("domain", {**BASE, "shard_size": 12}, str(other))
    assert row_digests(str(out)) == row_digests(str(other))


def test_replay_rebuilds_the_clip(demo_sources):
    recipe = get_recipe("domain")
    spec = recipe.parse({**BASE, "target_lufs": -30.0})
    for row in recipe.generate(spec, demo_sources, 2, 6):
        np.testing.assert_array_equal(domain.replay(row, spec, demo_sources), row["audio"])


def _corpus(tmp_path, recordings: dict[str, np.ndarray]) -> Sources:
    rows = []
    for label, audio in recordings.items():
        path = tmp_path / f"{label}.wav"
        sf.write(path, audio, SR, subtype="FLOAT")
        rows.append(
            {
                "id": f"instrument/{label}.wav",
                "path": str(path),
                "kind": "instrument",
                "label": label,
                "duration_s": audio.size / SR,
            }
        )
    return Sources(rows)


def test_quiet_clips_are_redrawn(tmp_path):
    """A recording silent for its first 2 s: clips there are redrawn, never boosted."""
    tone = sine(330.0, seconds=2.0, sample_rate=SR, amplitude=0.1)
    half_silent = np.concatenate([np.zeros(2 * SR, np.float32), tone])
    sources = _corpus(tmp_path, {"a": half_silent, "b": sine(440.0, 4.0, SR, 0.1)})
    recipe = get_recipe("domain")
    spec = recipe.parse({**BASE, "num_examples": 16})
    tries = []
    for row in recipe.generate(spec, sources, 0, 16):
        assert row["loudness_lufs"] == pytest.approx(-23.0, abs=0.05)
        if row["domain"] == "a":
            assert row["offset"] > 1.0  # clips wholly inside the silence were redrawn
            tries.append(row["params"]["tries"])
    assert max(tries) > 1


def test_all_quiet_domain_stops_with_its_name(tmp_path):
    # -80 dBFS: a recording, but no clip of it reaches the loudness a fair example needs
    sources = _corpus(
        tmp_path, {"a": sine(440.0, 4.0, SR, 0.1), "quiet": np.full(4 * SR, 1e-4, np.float32)}
    )
    recipe = get_recipe("domain")
    spec = recipe.parse(BASE)
    with pytest.raises(RuntimeError, match="'quiet'"):
        list(recipe.generate(spec, sources, 0, 2))


def test_a_silent_recording_is_set_aside_and_its_domain_named(tmp_path):
    # -120 dBFS: silent (below the index's -90 dBFS), set aside when loaded; its domain
    # then has no recording left, which is said in one line
    sources = _corpus(
        tmp_path, {"a": sine(440.0, 4.0, SR, 0.1), "mute": np.full(4 * SR, 1e-6, np.float32)}
    )
    recipe = get_recipe("domain")
    spec = recipe.parse(BASE)
    with pytest.raises(SpecError, match=r"needs two or more .*setting aside .*mute\.wav"):
        list(recipe.generate(spec, sources, 0, 2))
    assert [q["id"] for q in sources.bad] == ["instrument/mute.wav"]


def test_peaky_clips_keep_below_the_peak_limit(tmp_path):
    """Sparse clicks: at -23 LUFS they would peak above 0 dBFS. The quietest try is kept at
    the peak limit, flagged as not level-matched."""
    clicks = np.zeros(4 * SR, np.float32)
    clicks[:: SR // 2] = 0.5
    sources = _corpus(tmp_path, {"clicks": clicks, "tone": sine(440.0, 4.0, SR, 0.1)})
    recipe = get_recipe("domain")
    spec = recipe.parse({**BASE, "target_lufs": -10.0})
    rows = list(recipe.generate(spec, sources, 0, 2))
    click = next(r for r in rows if r["domain"] == "clicks")
    assert click["params"]["level_matched"] is False
    assert np.abs(click["audio"]).max() == pytest.approx(10 ** (-1 / 20), rel=1e-5)
    assert click["loudness_lufs"] < -10.5
    np.testing.assert_array_equal(domain.replay(click, spec, sources), click["audio"])
    tone = next(r for r in rows if r["domain"] == "tone")
    assert tone["params"]["level_matched"] is True


def test_labels_select_and_order_the_domains(demo_sources):
    recipe = get_recipe("domain")
    spec = recipe.parse({**BASE, "labels": ["good", "cheap"]})
    assert [r["domain"] for r in recipe.generate(spec, demo_sources, 0, 4)] == [
        "good",
        "cheap",
        "good",
        "cheap",
    ]


@pytest.mark.parametrize(
    "bad, field",
    [
        ({"labels": ["good"]}, "labels"),
        ({"labels": ["good", "good"]}, "labels"),
        ({"target_lufs": 3.0}, "target_lufs"),
    ],
)
def test_bad_specs_name_the_field(bad, field):
    with pytest.raises(SpecError, match=field):
        get_recipe("domain").parse({**BASE, **bad})


@pytest.mark.parametrize(
    "bad, field",
    [
        ({"labels": ["good", "violin"]}, "labels"),
        ({"kind": "harp"}, "kind"),
    ],
)
def test_specs_checked_against_the_sources_before_work(tmp_path, demo_corpus, bad, field):
    with pytest.raises(SpecError, match=field):
        build.build_local("domain", {**BASE, **bad}, str(tmp_path / "x"))
    assert not (tmp_path / "x" / "shards").exists()
