"""The corpus index (quarantine, fsspec) and the embedded demo corpus.

The full demo corpus comes from the session fixture ``demo_corpus`` (tests/conftest.py,
built once per session by ``ensure_demo_corpus``); determinism and atomicity are checked
on small ``scale=0.15`` builds of their own.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import fsspec
import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from pamflow import corpus, measures
from pamflow.audio import load
from pamflow.corpus import (
    MANIFEST_NAME,
    MANIFEST_SCHEMA,
    QUARANTINE_SCHEMA,
    index_corpus,
    make_demo_corpus,
    quarantine_path,
    write_index,
)
from pamflow.corpus.demo import synth
from pamflow.corpus.sources import Sources
from pamflow.testing import sine

SMALL = 0.15


def _wav(x: np.ndarray, sr: int, subtype: str = "PCM_16", fmt: str = "WAV") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, sr, format=fmt, subtype=subtype)
    return buf.getvalue()


def _hashes(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# ---------------------------------------------------------------- index and quarantine

GOOD = {
    "good/mono.wav": (sine(440, 1.0, 16000), 16000),
    "good/stereo.flac": (np.stack([sine(300, 0.5, 44100), sine(500, 0.5, 44100)], 1), 44100),
    "top.wav": (sine(1000, 0.25, 8000), 8000),
}


@pytest.fixture(scope="module")
def messy(tmp_path_factory) -> Path:
    """A folder of good files and one of each kind of bad file."""
    root = tmp_path_factory.mktemp("messy")
    for fid, (x, sr) in GOOD.items():
        (root / fid).parent.mkdir(parents=True, exist_ok=True)
        sf.write(root / fid, x, sr, subtype="PCM_16")
    bad = root / "bad"
    bad.mkdir()
    rng = np.random.default_rng(0)
    (bad / "empty.wav").write_bytes(b"")
    (bad / "random.wav").write_bytes(rng.bytes(8000))
    valid = _wav(sine(440, 1.0, 16000), 16000)
    (bad / "truncated.wav").write_bytes(valid[: len(valid) // 2])
    (bad / "zeros.wav").write_bytes(_wav(np.zeros(16000, np.float32), 16000))
    nan = sine(440, 0.5, 16000)
    nan[100] = np.nan
    (bad / "nan.wav").write_bytes(_wav(nan, 16000, "FLOAT"))
    (bad / "rate100.wav").write_bytes(_wav(sine(10, 2.0, 100), 100))
    (bad / "text.flac").write_bytes(b"this is not audio, just a text file\n" * 20)
    (bad / "corrupt.mp3").write_bytes(rng.bytes(4000))
    (bad / "short.wav").write_bytes(_wav(sine(440, 0.005, 16000), 16000))
    (bad / "noframes.wav").write_bytes(_wav(np.zeros(0, np.float32), 16000))
    (root / "notes.txt").write_text("ignored: not an audio extension")
    return root


EXPECTED_REASONS = {
    "bad/empty.wav": "empty: 0 bytes",
    "bad/random.wav": "unreadable:",
    "bad/truncated.wav": "truncated: header promises 16000 frames, only 7989 present",
    "bad/zeros.wav": "silent:",
    "bad/nan.wav": "non-finite:",
    "bad/rate100.wav": "bad sample rate: 100 Hz",
    "bad/text.flac": "unreadable:",
    "bad/corrupt.mp3": "unreadable:",
    "bad/short.wav": "too short: 5.00 ms",
    "bad/noframes.wav": "empty: 0 audio frames",
}


def test_index_quarantines_each_bad_file_with_its_reason(messy):
    result = index_corpus(str(messy))
    reasons = {q["id"]: q["reason"] for q in result.quarantine}
    assert set(reasons) == set(EXPECTED_REASONS)
    for fid, start in EXPECTED_REASONS.items():
        assert reasons[fid].startswith(start), (fid, reasons[fid])
        assert "\n" not in reasons[fid] and len(reasons[fid]) <= 300
    assert [q["path"] for q in result.quarantine] == [str(messy / f) for f in sorted(reasons)]
    assert result.n_files == len(GOOD) + len(EXPECTED_REASONS)


def test_index_measures_good_files(messy):
    result = index_corpus(str(messy))
    rows = {r["id"]: r for r in result.manifest}
    assert list(rows) == sorted(GOOD)  # sorted by id, POSIX separators
    for fid, (x, sr) in GOOD.items():
        r = rows[fid]
        assert r["path"] == str(messy / fid)
        assert r["sample_rate"] == sr and r["num_frames"] == x.shape[0]
        assert r["channels"] == (x.shape[1] if x.ndim == 2 else 1)
        assert r["duration_s"] == pytest.approx(x.shape[0] / sr)
        raw = (messy / fid).read_bytes()
        assert r["sha256"] == hashlib.sha256(raw).hexdigest() and r["size_bytes"] == len(raw)
        assert r["peak_db"] == pytest.approx(20 * np.log10(0.5), abs=0.05)
        assert r["label"] is None and r["rt60_s"] is None
    assert rows["good/mono.wav"]["kind"] == "good" and rows["top.wav"]["kind"] is None
    # a 0.5-amplitude sine: -6 dBFS peak, -9 dBFS RMS, about -9 + 0.7 LUFS at 440 Hz
    assert -10.0 < rows["good/mono.wav"]["loudness_lufs"] < -7.0
    assert index_corpus(str(messy), kind="speech").manifest[0]["kind"] == "speech"


def test_index_with_workers_matches_serial(messy):
    serial = index_corpus(str(messy))
    threaded = index_corpus(str(messy), workers=3)
    assert threaded.manifest == serial.manifest and threaded.quarantine == serial.quarantine


def test_an_unexpected_error_is_quarantined_not_raised(messy, monkeypatch):
    def boom(x, sr):
        raise RuntimeError("meter exploded\nsecond line")

    monkeypatch.setattr(corpus, "loudness", boom)
    result = index_corpus(str(messy))
    assert result.manifest == []
    reasons = {q["id"]: q["reason"] for q in result.quarantine}
    assert reasons["good/mono.wav"] == "error: RuntimeError: meter exploded second line"
    assert reasons["bad/empty.wav"] == "empty: 0 bytes"


def test_write_index_writes_manifest_and_quarantine(messy, tmp_path):
    result = index_corpus(str(messy))
    out = tmp_path / "idx" / "corpus.parquet"
    m, q = write_index(result, str(out))
    assert q == str(tmp_path / "idx" / "corpus.quarantine.parquet") == quarantine_path(str(out))
    mt, qt = pq.read_table(m), pq.read_table(q)
    assert mt.schema.equals(MANIFEST_SCHEMA) and qt.schema.equals(QUARANTINE_SCHEMA)
    assert mt.num_rows == len(GOOD) and qt.num_rows == len(EXPECTED_REASONS)
    assert sorted(p.name for p in out.parent.iterdir()) == [
        "corpus.parquet",
        "corpus.quarantine.parquet",
    ]
    # a clean corpus still gets an (empty) quarantine table with the same schema
    write_index(index_corpus(str(messy / "good")), str(tmp_path / "clean.parquet"))
    empty = pq.read_table(tmp_path / "clean.quarantine.parquet")
    assert empty.num_rows == 0 and empty.schema.equals(QUARANTINE_SCHEMA)


def test_index_metadata_fills_extra_columns_and_is_checked(messy):
    meta = {"good/mono.wav": {"label": "tone", "text": "la", "rt60_s": 0.5, "drr_db": 3}}
    row = index_corpus(str(messy), metadata=meta).manifest[0]
    assert (row["label"], row["text"], row["rt60_s"], row["drr_db"]) == ("tone", "la", 0.5, 3.0)
    with pytest.raises(ValueError, match="unknown column.*'speaker'"):
        index_corpus(str(messy), metadata={"good/mono.wav": {"speaker": "x"}})
    with pytest.raises(ValueError, match="not among the audio files"):
        index_corpus(str(messy), metadata={"nope.wav": {"label": "x"}})
    with pytest.raises(FileNotFoundError, match="not a folder"):
        index_corpus(str(messy / "absent"))


def test_index_walks_fsspec_urls(messy, tmp_path):
    fs = fsspec.filesystem("memory")
    root = f"/pamflow-test-{tmp_path.name}"
    try:
        fs.pipe(f"{root}/a/one.wav", (messy / "good/mono.wav").read_bytes())
        fs.pipe(f"{root}/b/two.flac", (messy / "good/stereo.flac").read_bytes())
        fs.pipe(f"{root}/b/bad.wav", b"\x00junk")
        result = index_corpus(f"memory://{root}")
        assert [r["id"] for r in result.manifest] == ["a/one.wav", "b/two.flac"]
        assert [r["kind"] for r in result.manifest] == ["a", "b"]
        url = result.manifest[0]["path"]
        assert url.startswith("memory://") and load(url)[0].size == 16000
        assert [q["id"] for q in result.quarantine] == ["b/bad.wav"]
        write_index(result, f"memory://{root}/out/manifest.parquet")
        assert fs.exists(f"{root}/out/manifest.quarantine.parquet")
    finally:
        fs.rm(root, recursive=True)
    file_url = index_corpus(f"file://{messy}/good")
    assert [r["id"] for r in file_url.manifest] == ["mono.wav", "stereo.flac"]
    assert file_url.manifest[0]["path"] == str(messy / "good" / "mono.wav")


def test_flac_cut_short_is_not_indexed(tmp_path):
    raw = _wav(sine(440, 1.0, 16000), 16000, "PCM_16", "FLAC")
    (tmp_path / "cut.flac").write_bytes(raw[: len(raw) // 2])
    (reason,) = [q["reason"] for q in index_corpus(str(tmp_path)).quarantine]
    assert reason.startswith(("truncated:", "corrupt:")), reason


# ---------------------------------------------------------------- the demo corpus


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
