"""Deriving a dataset: relabelled columns, the source untouched, the refusals.

The source dataset is ``ds_path`` (tests/storage/conftest.py)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from pamflow.storage import Dataset, StorageError, derive_dataset


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
    with pytest.raises(StorageError, match="already holds a finished dataset"):
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


def test_derive_keeps_every_row_of_shards_with_many_row_groups(tmp_path):
    # issue 11: 2.5 s clips, 24 rows a shard (several 1 MiB row groups): a derive used to
    # keep only the first group (a 40-row dataset came out with 22 rows)
    import numpy as np
    import pyarrow.parquet as pq

    from pamflow.storage import Column
    from pamflow.testing import speech_like, write_dataset

    rows = [{"reference": speech_like(seconds=2.5, sample_rate=16000, seed=i)} for i in range(48)]
    src = write_dataset(tmp_path / "src", [Column("reference", "audio")], rows,
                        shard_sizes=[24, 24])  # fmt: skip
    assert pq.ParquetFile(f"{src}/shards/part-00000.parquet").metadata.num_row_groups > 1
    dst = derive_dataset(src, str(tmp_path / "dst"),
                         lambda t: t.append_column("vote", pa.array([1] * t.num_rows)),
                         note="votes")  # fmt: skip
    assert dst.num_rows == 48 and dst.verify().ok
    ids = dst.to_table(["example_id"]).column("example_id").to_pylist()
    assert ids == [f"test-{i}" for i in range(48)]
    last = dst.row(47)
    assert last["example_id"] == "test-47" and last["vote"] == 1
    audio, _ = dst.decode_audio(last["reference"])
    assert np.allclose(audio, rows[47]["reference"], atol=1e-5)  # FLAC 24-bit


def test_an_interrupted_derive_can_be_run_again_into_the_same_folder(ds_path, tmp_path):
    calls = []

    def failing(t: pa.Table) -> pa.Table:
        calls.append(t.num_rows)
        if len(calls) == 2:
            raise KeyboardInterrupt  # Ctrl-C after the first shard was written
        return t.append_column("vote", pa.array([1] * t.num_rows))

    dst = str(tmp_path / "dst")
    with pytest.raises(KeyboardInterrupt):
        derive_dataset(ds_path, dst, failing, note="votes.csv")
    assert (tmp_path / "dst" / "shards" / "part-00000.parquet").exists()
    # another source or note may not take the folder over
    with pytest.raises(StorageError, match="unfinished derive of"):
        derive_dataset(ds_path, dst, failing, note="other.csv")
    done = derive_dataset(ds_path, dst, lambda t: t.append_column(
        "vote", pa.array([2] * t.num_rows)), note="votes.csv")  # fmt: skip
    assert done.num_rows == 8 and done.verify().ok
    assert set(done.to_table(["vote"]).column("vote").to_pylist()) == {2}
    with pytest.raises(StorageError, match="already holds a finished dataset"):
        derive_dataset(ds_path, dst, failing, note="votes.csv")


def test_a_folder_of_other_files_is_refused(ds_path, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(StorageError, match="not empty and not a derived dataset"):
        derive_dataset(ds_path, str(tmp_path / "mine"), lambda t: t, note="n")
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]
