"""Reading datasets: Dataset.open, versions, verify, fsspec (memory://), derive_dataset."""

from __future__ import annotations

import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pamflow.storage import (
    SCHEMA_VERSION,
    Column,
    Dataset,
    Schema,
    SchemaVersionError,
    StorageError,
    derive_dataset,
    finalize_dataset,
    write_shard,
)

SR = 16000
SCHEMA = Schema(
    [
        Column("reference", "audio"),
        Column("strength", "float64"),
        Column("label", "int64", nullable=True),
    ]
)


def audio_for(i: int) -> np.ndarray:
    t = np.arange(2000) / SR
    return (0.4 * np.sin(2 * np.pi * (150 + 41 * i) * t)).astype(np.float32)


def make_dataset(out: str, sizes=(3, 2, 3)) -> None:
    start = 0
    for s, n in enumerate(sizes):
        rows = [
            {
                "index": i,
                "example_id": f"ex-{i}",
                "seed": i,
                "params": {"i": i},
                "reference": audio_for(i),
                "strength": i / 2,
                "label": None,
            }
            for i in range(start, start + n)
        ]
        write_shard(out, s, rows, SCHEMA, sample_rate=SR, row_group_size=2)
        start += n
    finalize_dataset(out, recipe="test", spec={"sizes": list(sizes)}, seed=3, num_shards=len(sizes))


@pytest.fixture
def ds_path(tmp_path):
    out = str(tmp_path / "ds")
    make_dataset(out)
    return out


def test_open_and_read(ds_path):
    ds = Dataset.open(ds_path)
    assert (ds.num_rows, len(ds.shards), ds.recipe, ds.seed) == (8, 3, "test", 3)
    assert ds.sample_rate == SR and ds.audio_columns == ["reference"]
    rows = list(ds.iter_rows())
    assert [r["index"] for r in rows] == list(range(8))
    assert rows[4]["params"] == {"i": 4}  # json parsed
    table = ds.to_table()
    assert "reference" not in table.column_names and table.num_rows == 8
    assert table.column("strength").to_pylist() == [i / 2 for i in range(8)]
    for i in (0, 2, 3, 4, 5, 7, -1):  # across row groups and shards
        row = ds.row(i)
        assert row["index"] == i % 8 and row["example_id"] == f"ex-{i % 8}"
        x, sr = ds.decode_audio(row["reference"])
        assert sr == SR and x.dtype == np.float32
        assert np.max(np.abs(x - audio_for(i % 8))) < 1e-6
    assert ds.row(6, columns=["strength"]) == {"strength": 3.0}
    with pytest.raises(IndexError, match="row 8 out of range"):
        ds.row(8)
    with pytest.raises(StorageError, match="no column 'nope'"):
        ds.to_table(["nope"])
    batches = list(ds.iter_batches(["index"], batch_size=2))
    assert sum(b.num_rows for b in batches) == 8


def test_unfinished_dataset_is_named(tmp_path):
    with pytest.raises(StorageError, match=r"dataset.json: not found.*not a finished"):
        Dataset.open(str(tmp_path))


def test_refuses_newer_schema_version(ds_path):
    path = f"{ds_path}/dataset.json"
    info = json.loads(open(path).read())
    info["schema_version"] = SCHEMA_VERSION + 1
    open(path, "w").write(json.dumps(info))
    with pytest.raises(SchemaVersionError) as e:
        Dataset.open(ds_path)
    msg = str(e.value)
    assert path in msg and f"version {SCHEMA_VERSION + 1}" in msg
    assert f"reads schema version {SCHEMA_VERSION}" in msg


def test_refuses_shard_with_newer_schema_version(ds_path):
    shard = f"{ds_path}/shards/part-00001.parquet"
    table = pq.read_table(shard)
    meta = dict(table.schema.metadata)
    entry = json.loads(meta[b"pamflow"])
    entry["schema_version"] = 99
    meta[b"pamflow"] = json.dumps(entry).encode()
    pq.write_table(table.replace_schema_metadata(meta), shard)
    ds = Dataset.open(ds_path)
    ds.row(0)  # shard 0 is fine
    with pytest.raises(SchemaVersionError, match=r"part-00001.parquet: schema version 99"):
        ds.row(3)


def test_verify_catches_corruption_and_missing(ds_path):
    ds = Dataset.open(ds_path)
    report = ds.verify()
    assert report.ok and report.checked == 3 and "all match" in str(report)
    report.raise_if_failed()
    path = f"{ds_path}/shards/part-00001.parquet"
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0xFF  # one flipped bit pattern in the middle of the file
    open(path, "wb").write(bytes(data))
    os.rename(f"{ds_path}/shards/part-00002.parquet", f"{ds_path}/shards/part-00003.parquet")
    report = Dataset.open(ds_path).verify()
    assert not report.ok and len(report.problems) == 3
    assert any("part-00001.parquet: sha256 mismatch" in p for p in report.problems)
    assert any("part-00002.parquet: missing" in p for p in report.problems)
    assert any("part-00003.parquet: not listed" in p for p in report.problems)
    with pytest.raises(StorageError, match="3 problem"):
        report.raise_if_failed()


def test_memory_filesystem():
    import fsspec

    url = "memory://pamflow-test/ds"
    fs = fsspec.filesystem("memory")
    if fs.exists("/pamflow-test"):
        fs.rm("/pamflow-test", recursive=True)
    try:
        make_dataset(url, sizes=(2, 2))
        assert fs.exists("/pamflow-test/ds/dataset.json")
        assert fs.exists("/pamflow-test/ds/shards/part-00001.parquet")
        assert not [p for p in fs.find("/pamflow-test") if p.endswith(".tmp")]
        ds = Dataset.open(url)
        assert ds.verify().ok and ds.num_rows == 4
        x, _ = ds.decode_audio(ds.row(3)["reference"])
        assert np.max(np.abs(x - audio_for(3))) < 1e-6
        assert ds.to_table(["index"]).column("index").to_pylist() == [0, 1, 2, 3]
        dst = derive_dataset(url, "memory://pamflow-test/relabelled", lambda t: t, note="copy")
        assert dst.info["derived_from"]["path"] == "memory:///pamflow-test/ds"
    finally:
        fs.rm("/pamflow-test", recursive=True)


def test_derive_dataset_relabels_without_touching_source(ds_path, tmp_path):
    src = Dataset.open(ds_path)
    before = open(f"{ds_path}/dataset.json").read()
    labels = {"ex-1": 1, "ex-6": 0}

    def update(t: pa.Table) -> pa.Table:
        ids = t.column("example_id").to_pylist()
        lab = pa.array([labels.get(i) for i in ids], pa.int64())
        t = t.set_column(t.column_names.index("label"), "label", lab)
        return t.append_column("label_source", pa.array(["human"] * len(ids), pa.string()))

    dst = derive_dataset(ds_path, str(tmp_path / "new"), update, note="votes.csv")
    assert open(f"{ds_path}/dataset.json").read() == before and src.verify().ok
    assert dst.info["derived_from"]["note"] == "votes.csv"
    assert dst.info["derived_from"]["shards_sha256"] == [s.sha256 for s in src.shards]
    assert (dst.recipe, dst.spec, dst.seed) == (src.recipe, src.spec, src.seed)
    assert dst.schema["label_source"].kind == "string" and dst.verify().ok
    table = dst.to_table(["example_id", "label", "label_source"])
    got = dict(
        zip(table.column("example_id").to_pylist(), table.column("label").to_pylist(), strict=True)
    )
    assert got["ex-1"] == 1 and got["ex-6"] == 0 and got["ex-0"] is None
    assert src.row(5)["reference"] == dst.row(5)["reference"]  # audio bytes copied as is
    with pytest.raises(StorageError, match="already holds a dataset"):
        derive_dataset(ds_path, str(tmp_path / "new"), update, note="again")
    with pytest.raises(StorageError, match="not the source"):
        derive_dataset(ds_path, ds_path, update, note="in place")
    with pytest.raises(StorageError, match="keep every row"):
        derive_dataset(ds_path, str(tmp_path / "bad"), lambda t: t.slice(1), note="drop")
    with pytest.raises(StorageError, match="reordered"):
        derive_dataset(
            ds_path,
            str(tmp_path / "bad2"),
            lambda t: t.take([1, 0] + list(range(2, t.num_rows))),
            note="swap",
        )
