"""Declared schemas: the base columns, Arrow types, round trips and refusals."""

from __future__ import annotations

import pyarrow as pa
import pytest

from pamflow.storage import Column, Schema, StorageError


def test_schema_base_columns_and_arrow_types():
    s = Schema([Column("a", "audio"), Column("j", "json", nullable=True)])
    assert s.names == ["index", "example_id", "seed", "params", "a", "j"]
    arrow = s.to_arrow()
    assert arrow.field("a").type == pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    assert arrow.field("params").type == pa.string()
    assert s.audio_columns == ["a"] and s.json_columns == ["params", "j"]
    assert Schema.from_dict(s.to_dict()) == s
    with pytest.raises(StorageError, match="base column"):
        Schema([Column("seed", "int64")])
    with pytest.raises(StorageError, match="declared twice"):
        Schema([Column("x", "bool"), Column("x", "bool")])
    with pytest.raises(StorageError, match="unknown kind 'float32'"):
        Column("x", "float32")
