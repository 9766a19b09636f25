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
