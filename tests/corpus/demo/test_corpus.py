"""The embedded demo corpus: its manifest, speech, noises, RIRs, music and instruments.

The full demo corpus comes from the session fixture ``demo_corpus`` (tests/conftest.py,
built once per session by ``ensure_demo_corpus``); determinism and atomicity are checked
on small ``scale=0.15`` builds of their own.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from pamflow import measures
from pamflow.audio import load
from pamflow.corpus import MANIFEST_NAME, MANIFEST_SCHEMA, make_demo_corpus
from pamflow.corpus.demo import synth
from pamflow.corpus.sources import Sources

SMALL = 0.15


def _hashes(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def demo_manifest(demo_corpus) -> list[dict]:
    return pq.read_table(demo_corpus / MANIFEST_NAME).to_pylist()


def test_demo_manifest_columns_and_kinds(demo_corpus, demo_manifest):
    table = pq.read_table(demo_corpus / MANIFEST_NAME)
    assert table.schema.equals(MANIFEST_SCHEMA)
    assert pq.read_table(demo_corpus / "manifest.quarantine.parquet").num_rows == 0
    assert {r["kind"] for r in demo_manifest} == {"speech", "noise", "rir", "music", "instrument"}
    for r in demo_manifest:
        assert r["sample_rate"] == 22050 and r["channels"] == 1, r["id"]
        assert r["label"], r["id"]
        assert (r["text"] is not None) == (r["kind"] == "speech")
        assert (r["rt60_s"] is not None) == (r["kind"] == "rir") == (r["drr_db"] is not None)
        assert not Path(r["path"]).is_absolute()  # relative: the folder can move
        assert (demo_corpus / r["path"]).is_file()
    assert not list(demo_corpus.parent.glob(f".{demo_corpus.name}.tmp-*"))


def test_demo_speech(demo_manifest):
    speech = [r for r in demo_manifest if r["kind"] == "speech"]
    speakers = {r["label"] for r in speech}
    assert len(speakers) >= 6
    assert all(sum(r["label"] == s for r in speech) >= 6 for s in speakers)
    durations = np.array([r["duration_s"] for r in speech])
    assert durations.min() > 1.5 and durations.max() < 6.0 and 2.0 < durations.mean() < 4.5
    assert all(len(r["text"].split()) >= 5 for r in speech)
    # the same sentence is said by several speakers (content vs. speaker contrasts)
    texts = [r["text"] for r in speech]
    assert len(set(texts)) < len(texts)


def test_demo_noise_types(demo_corpus, demo_manifest):
    noise = [r for r in demo_manifest if r["kind"] == "noise"]
    assert {r["label"] for r in noise} == set(synth.NOISE_TYPES)
    for kind in synth.NOISE_TYPES:
        files = [r for r in noise if r["label"] == kind]
        assert len(files) >= 2
        for r in files:
            assert r["duration_s"] == pytest.approx(6.0)
            assert sf.info(str(demo_corpus / r["path"])).subtype == "PCM_24"
    audio = {r["id"]: load(str(demo_corpus / r["path"]))[0] for r in noise}
    spectra = {}
    for fid, x in audio.items():
        assert 20 * np.log10(np.std(x)) == pytest.approx(synth.NOISE_RMS_DB, abs=0.5)
        p = np.abs(np.fft.rfft(x[: 22050 * 4])) ** 2
        f = np.fft.rfftfreq(22050 * 4, 1 / 22050)
        spectra[fid] = p[(f > 50) & (f < 500)].sum() / p[(f > 2000) & (f < 8000)].sum()
    # white is flat, pink tilts, brown tilts more, room tone is nearly all low
    assert (
        spectra["noise/white_1.flac"] < spectra["noise/pink_1.flac"] < spectra["noise/brown_1.flac"]
    )
    assert spectra["noise/room_1.flac"] > 100
    for fid, mains in (("noise/hum_1.flac", 50.0), ("noise/hum_2.flac", 60.0)):
        hum = audio[fid]
        f = np.fft.rfftfreq(hum.size, 1 / 22050)
        assert f[np.argmax(np.abs(np.fft.rfft(hum)))] == pytest.approx(mains, abs=0.5)


def test_demo_rirs_measured_values_match_the_files(demo_corpus, demo_manifest):
    rirs = [r for r in demo_manifest if r["kind"] == "rir"]
    assert len(rirs) >= 12
    for r in rirs:
        h, sr = load(str(demo_corpus / r["path"]))
        assert sf.info(str(demo_corpus / r["path"])).subtype == "PCM_24"
        assert r["rt60_s"] == pytest.approx(measures.rt60(h, sr), rel=1e-6)
        assert r["drr_db"] == pytest.approx(measures.drr_db(h, sr), rel=1e-6)
        assert np.max(np.abs(h)) == pytest.approx(1.0, abs=1e-6)
        assert int(np.argmax(h)) == int(0.002 * sr)  # direct peak 2 ms in, positive
        assert np.max(np.abs(h[-200:])) < 10 ** (-60 / 20)  # trailing silence trimmed
    rt = np.array([r["rt60_s"] for r in rirs])
    drr = np.array([r["drr_db"] for r in rirs])
    assert rt.min() < 0.15 and rt.max() > 1.5
    assert drr.min() < 0.0 and drr.max() > 10.0


def test_demo_music_and_instruments(demo_corpus, demo_manifest):
    music = [r for r in demo_manifest if r["kind"] == "music"]
    assert 4 <= len(music) <= 6 and len({r["label"] for r in music}) == len(music)
    assert all(r["duration_s"] == pytest.approx(8.0) for r in music)
    inst = [r for r in demo_manifest if r["kind"] == "instrument"]
    assert {r["label"] for r in inst} == {"good", "cheap"}
    assert sum(r["label"] == "good" for r in inst) == sum(r["label"] == "cheap" for r in inst) >= 6
    # equal loudness: the domain label must come from timbre, not level
    assert all(r["loudness_lufs"] == pytest.approx(synth.MUSIC_LUFS, abs=0.1) for r in music + inst)
    good, _ = load(str(demo_corpus / "instrument/good_01.flac"))
    cheap, _ = load(str(demo_corpus / "instrument/cheap_01.flac"))
    f = np.fft.rfftfreq(good.size, 1 / 22050)

    def share_above(x: np.ndarray, hz: float) -> float:
        p = np.abs(np.fft.rfft(x)) ** 2
        return float(p[f > hz].sum() / p.sum())

    # the cheap instrument is band-limited at 3 kHz; the good one is not
    assert share_above(cheap, 5000) < 0.2 * share_above(good, 5000)


def test_demo_corpus_loads_through_sources(demo_corpus):
    src = Sources.from_manifest(demo_corpus / MANIFEST_NAME)
    assert set(src.labels("noise")) == set(synth.NOISE_TYPES)
    x = src.load(src.choose(np.random.default_rng(0), "speech", "spk01"), 16000)
    assert x.dtype == np.float32 and x.size > 16000


def test_demo_corpus_is_deterministic_and_seeded(tmp_path):
    a = make_demo_corpus(tmp_path / "a", seed=3, scale=SMALL)
    b = make_demo_corpus(tmp_path / "b", seed=3, scale=SMALL)
    ha, hb = _hashes(a), _hashes(b)
    assert ha == hb
    assert MANIFEST_NAME in ha and any(k.startswith("rir/") for k in ha)
    assert {k.split("/")[0] for k in ha} >= {"speech", "noise", "rir", "music", "instrument"}
    labels = {
        r["label"] for r in pq.read_table(a / MANIFEST_NAME).to_pylist() if r["kind"] == "noise"
    }
    assert labels == set(synth.NOISE_TYPES)  # every type survives a small scale
    c = make_demo_corpus(tmp_path / "c", seed=4, scale=SMALL)
    hc = _hashes(c)
    assert hc.keys() == ha.keys()
    assert ha["noise/white_1.flac"] != hc["noise/white_1.flac"]
    assert ha["rir/room01.flac"] != hc["rir/room01.flac"]


def test_demo_corpus_build_is_atomic(tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise RuntimeError("synthesis failed")

    monkeypatch.setattr(synth, "music_clip", fail)
    with pytest.raises(RuntimeError, match="synthesis failed"):
        make_demo_corpus(tmp_path / "demo", scale=SMALL)
    assert list(tmp_path.iterdir()) == []  # neither the corpus nor a temporary folder
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "mine.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not empty"):
        make_demo_corpus(tmp_path / "taken", scale=SMALL)
    assert (tmp_path / "taken" / "mine.txt").read_text() == "keep me"
    monkeypatch.undo()
    make_demo_corpus(tmp_path / "taken", scale=SMALL, overwrite=True)
    assert not (tmp_path / "taken" / "mine.txt").exists()
    assert (tmp_path / "taken" / MANIFEST_NAME).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]  # no leftovers
    with pytest.raises(ValueError, match="scale"):
        make_demo_corpus(tmp_path / "x", scale=0)
