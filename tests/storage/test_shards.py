"""Writing shards and dataset.json: encoding fidelity, atomicity, interop, finalizing."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf

import pamflow
from pamflow.storage import (
    SCHEMA_VERSION,
    Column,
    Schema,
    StorageError,
    clean_tmp,
    decode_audio,
    finalize_dataset,
    list_shards,
    shard_done,
    write_shard,
)
from pamflow.storage.files import host_tag

SR = 16000


def audio_for(i: int, n: int = 4000) -> np.ndarray:
    t = np.arange(n) / SR
    return (0.5 * np.sin(2 * np.pi * (100 + 37 * i) * t)).astype(np.float32)


SCHEMA = Schema(
    [
        Column("reference", "audio"),
        Column("perturbed", "audio"),
        Column("strength", "float64"),
        Column("label", "int64", nullable=True),
        Column("axis", "list<string>"),
        Column("ok", "bool"),
    ]
)


def rows_for(start: int, n: int) -> list[dict]:
    return [
        {
            "index": i,
            "example_id": f"ex-{i:04d}",
            "seed": 1000 + i,
            "params": {"i": i},
            "reference": audio_for(i),
            "perturbed": 0.5 * audio_for(i),
            "strength": float(i),
            "label": (i % 2) or None,
            "axis": ["noise", "reverb"][: i % 3],
            "ok": i % 2 == 0,
        }
        for i in range(start, start + n)
    ]


def make_dataset(out: str, sizes=(3, 3, 2), **kw) -> list:
    infos, start = [], 0
    for s, n in enumerate(sizes):
        infos.append(write_shard(out, s, rows_for(start, n), SCHEMA, sample_rate=SR, **kw))
        start += n
    finalize_dataset(
        out, recipe="test", spec={"n": start}, seed=7, num_shards=len(sizes), shard_infos=infos
    )
    return infos


def snr_db(ref: np.ndarray, test: np.ndarray) -> float:
    ref = ref.astype(np.float64)
    err = test.astype(np.float64) - ref
    return 10 * np.log10(np.sum(ref**2) / max(np.sum(err**2), 1e-300))


def test_dataset_json_and_checksums(tmp_path):
    out = str(tmp_path / "ds")
    infos = make_dataset(out)
    info = json.loads((tmp_path / "ds" / "dataset.json").read_text())
    assert info["schema_version"] == SCHEMA_VERSION
    assert info["pamflow_version"] == pamflow.__version__
    assert (info["recipe"], info["spec"], info["seed"]) == ("test", {"n": 8}, 7)
    assert info["num_rows"] == 8 and info["num_shards"] == 3
    assert info["audio_columns"] == ["reference", "perturbed"]
    assert info["sample_rate"] == SR
    assert info["audio_format"] == {"format": "FLAC", "subtype": "PCM_24"}
    created = dt.datetime.fromisoformat(info["created_at"].replace("Z", "+00:00"))
    assert created.tzinfo is not None
    assert abs((dt.datetime.now(dt.UTC) - created).total_seconds()) < 600
    for s, written in zip(info["shards"], infos, strict=True):
        data = (tmp_path / "ds" / s["path"]).read_bytes()
        assert s["sha256"] == hashlib.sha256(data).hexdigest() == written.sha256
        assert s["bytes"] == len(data) and s["rows"] == written.rows
    assert [s["rows"] for s in info["shards"]] == [3, 3, 2]
    # pamflow's entry in the Parquet metadata
    meta = json.loads(
        pq.read_schema(tmp_path / "ds/shards/part-00001.parquet").metadata[b"pamflow"]
    )
    assert meta["schema_version"] == SCHEMA_VERSION and meta["sample_rate"] == SR
    assert meta["audio_columns"] == ["reference", "perturbed"]
    assert meta["audio_format"] == {"format": "FLAC", "subtype": "PCM_24"}


def test_huggingface_features_metadata(tmp_path):
    make_dataset(str(tmp_path), sizes=(1,))
    hf = json.loads(pq.read_schema(tmp_path / "shards/part-00000.parquet").metadata[b"huggingface"])
    feats = hf["info"]["features"]
    assert feats["reference"] == {"_type": "Audio", "sampling_rate": SR}
    assert feats["strength"] == {"_type": "Value", "dtype": "float64"}
    assert feats["axis"]["_type"] == "Sequence"


def test_flac_24bit_round_trip_is_far_below_perturbations(tmp_path):
    rng = np.random.default_rng(0)
    x = (0.3 * rng.standard_normal(SR)).clip(-1, 1).astype(np.float32)
    schema = Schema([Column("a", "audio")])
    write_shard(
        str(tmp_path),
        0,
        [{"index": 0, "example_id": "e", "seed": 0, "params": {}, "a": x}],
        schema,
        sample_rate=SR,
    )
    cell = pq.read_table(tmp_path / "shards/part-00000.parquet").column("a")[0].as_py()
    info = sf.info(io.BytesIO(cell["bytes"]))
    assert (info.format, info.subtype, info.samplerate) == ("FLAC", "PCM_24", SR)
    y, sr = decode_audio(cell)
    assert sr == SR and y.dtype == np.float32
    assert snr_db(x, y) > 120.0  # 16-bit PCM gives ~ 90 dB here, too close to 66 dB pairs
    assert np.max(np.abs(y - x)) < 2.0**-23 + 1e-9
    assert cell["path"] == "e_a.flac"


def test_float_wav_is_exact_and_holds_overs(tmp_path):
    rng = np.random.default_rng(1)
    x = (0.6 * rng.standard_normal(4000)).astype(np.float32)  # peaks above full scale
    assert np.abs(x).max() > 1.0
    schema = Schema([Column("a", "audio")])
    row = {"index": 0, "example_id": "e", "seed": 0, "params": {}, "a": x}
    write_shard(str(tmp_path), 0, [row], schema, sample_rate=SR, audio_format="WAV")
    cell = pq.read_table(tmp_path / "shards/part-00000.parquet").column("a")[0].as_py()
    y, sr = sf.read(io.BytesIO(cell["bytes"]), dtype="float32")
    assert sr == SR and np.array_equal(y, x) and cell["path"] == "e_a.wav"
    # FLAC 24-bit would clip the overs: refused with the column and example named
    with pytest.raises(StorageError, match=r"'e'.*'a'.*peak .* exceeds full scale"):
        write_shard(str(tmp_path / "f"), 0, [row], schema, sample_rate=SR)


def test_plain_soundfile_reads_struct_bytes(tmp_path):
    make_dataset(str(tmp_path), sizes=(2,))
    table = pq.read_table(tmp_path / "shards/part-00000.parquet")  # no pamflow involved
    for row in table.to_pylist():
        y, sr = sf.read(io.BytesIO(row["perturbed"]["bytes"]), dtype="float32")
        assert sr == SR
        assert snr_db(0.5 * audio_for(row["index"]), y) > 120.0
        assert row["perturbed"]["path"] == f"{row['example_id']}_perturbed.flac"


def test_duckdb_reads_shards_and_bytes(tmp_path):
    duckdb = pytest.importorskip("duckdb")
    make_dataset(str(tmp_path))
    q = (
        f"SELECT index, example_id, reference.bytes AS b, reference.path AS p "
        f"FROM read_parquet('{tmp_path}/shards/*.parquet') ORDER BY index"
    )
    rows = duckdb.sql(q).fetchall()
    assert [r[0] for r in rows] == list(range(8))
    for i, eid, b, p in rows:
        assert p == f"{eid}_reference.flac"
        y, _ = sf.read(io.BytesIO(bytes(b)), dtype="float32")
        assert snr_db(audio_for(i), y) > 120.0
    assert (
        duckdb.sql(
            f"SELECT json_extract(params, '$.i')::INT FROM read_parquet("
            f"'{tmp_path}/shards/*.parquet') WHERE index = 5"
        ).fetchall()[0][0]
        == 5
    )


def test_atomic_write_tmp_ignored_and_cleaned(tmp_path):
    out = str(tmp_path)
    shards = tmp_path / "shards"
    shards.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a writer that is gone: its pid runs no more
    host = host_tag()
    leftover = shards / f".part-00000.parquet.{host}-{dead.pid}-dead00.tmp"
    leftover.write_bytes(b"half a parquet file")
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    # another writer still at work here, one on another machine, one of unknown origin
    others = [
        shards / f".part-00001.parquet.{host}-{live.pid}-beef01.tmp",
        shards / f".part-00002.parquet.otherhost-{dead.pid}-beef02.tmp",
        tmp_path / ".dataset.json.cafe.tmp",
    ]
    for p in others:
        p.write_bytes(b"being written")
    assert not shard_done(out, 0) and list_shards(out) == []
    info = write_shard(out, 0, rows_for(0, 2), SCHEMA, sample_rate=SR)
    assert shard_done(out, 0) and list_shards(out) == [0] and not info.skipped

    def must_not_run():
        raise AssertionError("rows of a complete shard were generated again")
        yield  # pragma: no cover

    again = write_shard(out, 0, must_not_run(), SCHEMA, sample_rate=SR)
    assert again.skipped and again.sha256 == info.sha256 and again.rows == 2
    with pytest.raises(StorageError, match="already exists"):
        write_shard(out, 0, rows_for(0, 2), SCHEMA, sample_rate=SR, if_exists="error")
    assert leftover.exists()  # writers leave other writers' temporaries alone
    try:
        finalize_dataset(out, recipe="t", spec={}, seed=0, num_shards=1)
        assert not leftover.exists()  # the dead writer's temporary is cleaned up
        assert all(p.exists() for p in others)  # nobody else's
        assert clean_tmp(out) == []
    finally:
        live.kill()
        live.wait()
    assert clean_tmp(out) == [str(others[0])]  # its writer is gone now


def test_failed_write_leaves_nothing(tmp_path):
    def rows():
        yield from rows_for(0, 3)
        raise RuntimeError("worker died")

    with pytest.raises(RuntimeError, match="worker died"):
        write_shard(str(tmp_path), 0, rows(), SCHEMA, sample_rate=SR, row_group_size=2)
    assert not shard_done(str(tmp_path), 0)
    assert list((tmp_path / "shards").iterdir()) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"strength": None}, r"'ex-0000'.*'strength' is None but not nullable"),
        ({"extra": 1}, r"undeclared column\(s\) \['extra'\]"),
        ({"params": "not json"}, r"'params'.*must already hold JSON text"),
        ({"params": {"x": float("nan")}}, r"'params'.*not JSON-serialisable"),
        ({"strength": "loud"}, r"column 'strength' \(float64\)"),
        ({"reference": np.zeros((10, 2), np.float32)}, r"mono float array"),
        ({"reference": b"RIFF garbage"}, r"not a readable audio file"),
    ],
)
def test_bad_rows_are_named(tmp_path, change, message):
    row = {**rows_for(0, 1)[0], **change}
    with pytest.raises(StorageError, match=message):
        write_shard(str(tmp_path), 0, [row], SCHEMA, sample_rate=SR)
    assert not shard_done(str(tmp_path), 0)


def test_encoded_bytes_must_match_dataset_format(tmp_path):
    row = rows_for(0, 1)[0]
    row["reference"] = pamflow.audio.encode(audio_for(0), 8000)
    with pytest.raises(StorageError, match=r"at 8000 Hz, but this dataset holds FLAC/PCM_24"):
        write_shard(str(tmp_path), 0, [row], SCHEMA, sample_rate=SR)
    row["reference"] = {"bytes": pamflow.audio.encode(audio_for(0), SR), "path": "mine.flac"}
    write_shard(str(tmp_path), 0, [row], SCHEMA, sample_rate=SR)
    cell = pq.read_table(tmp_path / "shards/part-00000.parquet").column("reference")[0].as_py()
    assert cell["path"] == "mine.flac"


def test_finalize_refuses_missing_extra_and_duplicate(tmp_path):
    out = str(tmp_path)
    write_shard(out, 0, rows_for(0, 2), SCHEMA, sample_rate=SR)
    write_shard(out, 2, rows_for(2, 2), SCHEMA, sample_rate=SR)
    with pytest.raises(StorageError, match=r"1 of 3 shard\(s\) missing: \['shards/part-00001"):
        finalize_dataset(out, recipe="t", spec={}, seed=0, num_shards=3)
    with pytest.raises(StorageError, match=r"beyond num_shards=1 exist: \['shards/part-00002"):
        finalize_dataset(out, recipe="t", spec={}, seed=0, num_shards=1)
    write_shard(out, 1, rows_for(1, 2), SCHEMA, sample_rate=SR)  # ex-0002 twice
    with pytest.raises(StorageError, match=r"duplicate example_id.*ex-0002"):
        finalize_dataset(out, recipe="t", spec={}, seed=0, num_shards=3)
    assert not Path(out, "dataset.json").exists()


def test_finalize_refuses_mixed_sample_rates(tmp_path):
    out = str(tmp_path)
    write_shard(out, 0, rows_for(0, 1), SCHEMA, sample_rate=SR)
    write_shard(out, 1, rows_for(1, 1), SCHEMA, sample_rate=8000)
    with pytest.raises(StorageError, match=r"part-00001.*differ from shard 0"):
        finalize_dataset(out, recipe="t", spec={}, seed=0, num_shards=2)


def test_row_groups_close_at_row_count_or_audio_bytes(tmp_path):
    write_shard(str(tmp_path / "a"), 0, rows_for(0, 5), SCHEMA, sample_rate=SR, row_group_size=2)
    md = pq.ParquetFile(tmp_path / "a/shards/part-00000.parquet").metadata
    assert [md.row_group(g).num_rows for g in range(md.num_row_groups)] == [2, 2, 1]
    # a group closes as soon as its audio reaches row_group_bytes
    for name, budget, groups in (("b", 1, [1] * 5), ("c", 10**9, [5])):
        write_shard(
            str(tmp_path / name), 0, rows_for(0, 5), SCHEMA, sample_rate=SR, row_group_bytes=budget
        )
        md = pq.ParquetFile(tmp_path / f"{name}/shards/part-00000.parquet").metadata
        assert [md.row_group(g).num_rows for g in range(md.num_row_groups)] == groups


def test_same_rows_give_byte_identical_shards(tmp_path):
    a = write_shard(str(tmp_path / "a"), 3, rows_for(0, 4), SCHEMA, sample_rate=SR)
    b = write_shard(str(tmp_path / "b"), 3, rows_for(0, 4), SCHEMA, sample_rate=SR)
    assert a.sha256 == b.sha256 and a.bytes == b.bytes
    c = write_shard(str(tmp_path / "c"), 3, rows_for(1, 4), SCHEMA, sample_rate=SR)
    assert c.sha256 != a.sha256


def test_a_table_of_several_row_groups_keeps_every_row(tmp_path):
    """Issue 11: a table written in several row groups (more audio than one group holds) kept
    only the first group's rows, so every derived dataset of real-sized shards lost rows."""
    import pyarrow as pa

    from pamflow.storage import Column, Schema, write_shard
    from pamflow.testing import speech_like

    schema = Schema([Column("audio", "audio"), Column("k", "int64")])
    first = tmp_path / "first"
    rows = [
        {
            "index": i,
            "example_id": f"e{i}",
            "seed": i,
            "params": "{}",
            "audio": speech_like(seconds=0.5, sample_rate=16000, seed=i),
            "k": i,
        }
        for i in range(24)
    ]
    write_shard(str(first), 0, rows, schema, sample_rate=16000, row_group_bytes=64_000)
    table = pa.parquet.read_table(str(first / "shards" / "part-00000.parquet"))
    assert pa.parquet.ParquetFile(str(first / "shards" / "part-00000.parquet")).num_row_groups > 2
    out = tmp_path / "again"
    info = write_shard(str(out), 0, table, schema, sample_rate=16000, row_group_bytes=64_000)
    again = pa.parquet.read_table(str(out / "shards" / "part-00000.parquet"))
    assert info.rows == again.num_rows == 24
    assert again.column("k").to_pylist() == list(range(24))
    assert again.column("audio").to_pylist() == table.column("audio").to_pylist()
