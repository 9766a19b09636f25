"""Parquet shards, ``dataset.json`` and readers (PyTorch datasets in ``pamflow.storage.torch``).

Layout of a dataset::

    DATASET/dataset.json                written last by finalize_dataset
    DATASET/shards/part-00000.parquet   written atomically by write_shard

Writing::

    schema = Schema([Column("reference", "audio"), Column("strength", "float64")])
    info = write_shard(out, 0, rows, schema, sample_rate=16000)   # FLAC 24-bit
    finalize_dataset(out, recipe="jnd", spec=spec, seed=0, num_shards=1, shard_infos=[info])

Reading::

    ds = Dataset.open(out)
    ds.verify().raise_if_failed()
    audio, sr = ds.decode_audio(ds.row(0)["reference"])

Storage knows nothing of recipes. Paths are local paths or fsspec URLs.
"""

from __future__ import annotations

from pamflow.storage.codec import decode_audio
from pamflow.storage.dataset import DATASET_JSON, Dataset, VerifyReport, finalize_dataset
from pamflow.storage.derive import derive_dataset
from pamflow.storage.pieces import join_pieces, piece_done, remove_empty_pieces_dir, write_piece
from pamflow.storage.schema import (
    SCHEMA_VERSION,
    Column,
    Schema,
    SchemaVersionError,
    StorageError,
)
from pamflow.storage.shards import (
    DEFAULT_ROW_GROUP_BYTES,
    DEFAULT_ROW_GROUP_SIZE,
    ShardInfo,
    clean_tmp,
    list_shards,
    read_shard_info,
    shard_done,
    shard_name,
    shard_notes,
    write_shard,
)

__all__ = [
    "join_pieces",
    "piece_done",
    "remove_empty_pieces_dir",
    "write_piece",
    "DATASET_JSON",
    "DEFAULT_ROW_GROUP_BYTES",
    "DEFAULT_ROW_GROUP_SIZE",
    "SCHEMA_VERSION",
    "Column",
    "Dataset",
    "Schema",
    "SchemaVersionError",
    "ShardInfo",
    "StorageError",
    "VerifyReport",
    "clean_tmp",
    "decode_audio",
    "derive_dataset",
    "finalize_dataset",
    "list_shards",
    "read_shard_info",
    "shard_notes",
    "shard_done",
    "shard_name",
    "write_shard",
]
