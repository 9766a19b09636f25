"""The corpus index: measured files, quarantine with reasons, metadata, fsspec URLs."""

from __future__ import annotations

import hashlib
from pathlib import Path

import fsspec
import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from pamflow.audio import load
from pamflow.corpus import (
    MANIFEST_SCHEMA,
    QUARANTINE_SCHEMA,
    index_corpus,
    probe,
    quarantine_path,
    write_index,
)
from pamflow.testing import audio_bytes, sine

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
    valid = audio_bytes(sine(440, 1.0, 16000), 16000)
    (bad / "truncated.wav").write_bytes(valid[: len(valid) // 2])
    (bad / "zeros.wav").write_bytes(audio_bytes(np.zeros(16000, np.float32), 16000))
    nan = sine(440, 0.5, 16000)
    nan[100] = np.nan
    (bad / "nan.wav").write_bytes(audio_bytes(nan, 16000, "FLOAT"))
    (bad / "rate100.wav").write_bytes(audio_bytes(sine(10, 2.0, 100), 100))
    (bad / "text.flac").write_bytes(b"this is not audio, just a text file\n" * 20)
    (bad / "corrupt.mp3").write_bytes(rng.bytes(4000))
    (bad / "short.wav").write_bytes(audio_bytes(sine(440, 0.005, 16000), 16000))
    (bad / "noframes.wav").write_bytes(audio_bytes(np.zeros(0, np.float32), 16000))
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

    monkeypatch.setattr(probe, "loudness", boom)
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
    raw = audio_bytes(sine(440, 1.0, 16000), 16000, "PCM_16", "FLAC")
    (tmp_path / "cut.flac").write_bytes(raw[: len(raw) // 2])
    (reason,) = [q["reason"] for q in index_corpus(str(tmp_path)).quarantine]
    assert reason.startswith(("truncated:", "corrupt:")), reason


def test_files_indexed_in_blocks_measure_as_read_whole(messy):
    whole = index_corpus(str(messy))
    blocks = index_corpus(str(messy), stream_bytes=0)  # every local file in blocks
    assert [r["id"] for r in blocks.manifest] == [r["id"] for r in whole.manifest]
    for a, b in zip(whole.manifest, blocks.manifest, strict=True):
        for key in ("sha256", "size_bytes", "num_frames", "sample_rate", "channels"):
            assert a[key] == b[key], (a["id"], key)
        for key in ("loudness_lufs", "peak_db", "duration_s"):
            assert b[key] == pytest.approx(a[key], abs=1e-6), (a["id"], key)
    reasons = {q["id"]: q["reason"] for q in blocks.quarantine}
    assert set(reasons) == set(EXPECTED_REASONS)
    for fid, start in EXPECTED_REASONS.items():
        kind = start.split(":")[0]
        assert reasons[fid].split(":")[0] == kind, (fid, reasons[fid])


def test_a_big_file_is_indexed_in_bounded_memory(tmp_path):
    import tracemalloc

    rng = np.random.default_rng(0)

    def peak_of(seconds: int) -> tuple[int, int, dict]:
        folder = tmp_path / f"s{seconds}"
        folder.mkdir()
        with sf.SoundFile(folder / "long.wav", "w", 16000, 2, subtype="PCM_16") as f:
            for _ in range(seconds // 20):
                f.write(rng.uniform(-0.5, 0.5, (320000, 2)))
        index_corpus(str(folder), stream_bytes=1 << 20)  # warm imports and caches
        tracemalloc.start()
        (row,) = index_corpus(str(folder), stream_bytes=1 << 20).manifest
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        data = (folder / "long.wav").read_bytes()
        assert row["sha256"] == hashlib.sha256(data).hexdigest()
        assert row["num_frames"] == seconds * 16000 and row["size_bytes"] == len(data)
        return peak, len(data), row

    short_peak, _, _ = peak_of(60)
    long_peak, size, _ = peak_of(240)  # 15 MB of PCM (30 MB as float32, whole)
    # read whole, memory grows with the file (4x here); in blocks it does not
    assert long_peak < 1.3 * short_peak and long_peak < size / 2, (short_peak, long_peak, size)
