"""Reading datasets: Dataset.open, versions, verify, fsspec (memory://).

The small dataset read here is made by ``make_dataset`` (tests/storage/conftest.py)."""

from __future__ import annotations

import json
import os

import numpy as np
import pyarrow.parquet as pq
import pytest

from pamflow.storage import (
    SCHEMA_VERSION,
    Dataset,
    SchemaVersionError,
    StorageError,
    derive_dataset,
)

SR = 16000


def test_open_and_read(ds_path, audio_for):
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
    ds = Dataset.open(ds_path, verify=False)  # the hash would refuse the edit first
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


def test_memory_filesystem(make_dataset, audio_for):
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


def _flip_bytes(path: str, count: int = 64) -> None:
    data = bytearray(open(path, "rb").read())
    mid = len(data) // 2
    for k in range(count):
        data[mid + k] ^= 0x5A
    open(path, "wb").write(bytes(data))


def _edit_json(ds_path: str, change) -> None:
    path = f"{ds_path}/dataset.json"
    info = json.load(open(path))
    change(info)
    json.dump(info, open(path, "w"))


def test_readers_refuse_a_damaged_shard_naming_it(ds_path):
    from pamflow.storage.torch import ShardIterableDataset, ShardMapDataset

    before = Dataset.open(ds_path).row(0)
    _flip_bytes(f"{ds_path}/shards/part-00001.parquet")
    ds = Dataset.open(ds_path)
    assert ds.row(0)["example_id"] == before["example_id"]  # shard 0 is intact
    with pytest.raises(StorageError, match=r"part-00001\.parquet: sha256 mismatch"):
        ds.row(4)
    with pytest.raises(StorageError, match=r"part-00001\.parquet: sha256 mismatch"):
        ShardMapDataset(ds_path)
    with pytest.raises(StorageError, match=r"part-00001\.parquet: sha256 mismatch"):
        list(ShardIterableDataset(ds_path, shuffle=False))
    # the explicit opt-out reads what is there (Parquet's own checks may still fail)
    assert Dataset.open(ds_path, verify=False).row(0)["example_id"] == "ex-0"


def test_row_counts_that_do_not_add_up_are_refused(ds_path):
    _edit_json(ds_path, lambda info: info.update(num_rows=info["num_rows"] - 1))
    with pytest.raises(StorageError, match="num_rows is 7 but its shards list 8 rows"):
        Dataset.open(ds_path)


def test_a_shard_row_count_edited_in_dataset_json_is_caught_on_open(ds_path):
    def shift(info):  # consistent totals: only the Parquet footer can tell
        info["shards"][0]["rows"] -= 1
        info["shards"][1]["rows"] += 1

    _edit_json(ds_path, shift)
    ds = Dataset.open(ds_path, verify=False)
    with pytest.raises(StorageError, match=r"part-00000\.parquet: 3 rows in the file, 2 in"):
        ds.row(1)


@pytest.mark.parametrize(
    "path",
    ["../outside/secret.parquet", "/etc/passwd", "shards/../../x.parquet", "secret.txt"],
)
def test_shard_paths_leaving_the_folder_are_refused(ds_path, tmp_path, path):
    outside = tmp_path / "outside"
    outside.mkdir(exist_ok=True)
    (outside / "secret.parquet").write_bytes(b"not yours")
    _edit_json(ds_path, lambda info: info["shards"][0].update(path=path))
    with pytest.raises(StorageError, match="is not a shard of this dataset"):
        Dataset.open(ds_path)


def test_a_shard_linking_out_of_the_folder_is_refused(ds_path, tmp_path):
    target = tmp_path / "elsewhere.parquet"
    os.rename(f"{ds_path}/shards/part-00002.parquet", target)
    os.symlink(target, f"{ds_path}/shards/part-00002.parquet")
    with pytest.raises(StorageError, match="links outside the dataset folder"):
        Dataset.open(ds_path)
