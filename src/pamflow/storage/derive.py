"""Derived datasets: a new dataset made from an old one with columns replaced or added
(relabelling, e.g. ``pamflow labels import``), never touching the source."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pamflow.storage.dataset import DATASET_JSON, Dataset, finalize_dataset
from pamflow.storage.files import (
    create_exclusive,
    display,
    foreign_entries,
    join,
    open_input,
    resolve,
)
from pamflow.storage.schema import Schema, StorageError
from pamflow.storage.shards import (
    DEFAULT_ROW_GROUP_BYTES,
    DEFAULT_ROW_GROUP_SIZE,
    SHARDS_DIR,
    write_shard,
)

_STANDARD_KEYS = frozenset(
    {
        "format",
        "schema_version",
        "pamflow_version",
        "created_at",
        "recipe",
        "seed",
        "spec",
        "columns",
        "audio_columns",
        "sample_rate",
        "audio_format",
        "num_rows",
        "num_shards",
        "shards",
        "derived_from",
    }
)


def derive_dataset(
    src: str,
    dst: str,
    update: Callable[[pa.Table], pa.Table],
    note: str,
    *,
    schema: Schema | None = None,
    row_group_size: int = DEFAULT_ROW_GROUP_SIZE,
    row_group_bytes: int = DEFAULT_ROW_GROUP_BYTES,
) -> Dataset:
    """Write a new dataset at ``dst``: each shard of ``src`` passed through ``update``.

    ``update`` gets one shard's full table (audio included) and returns a table with the
    same rows in the same order (checked by ``example_id``), with columns replaced or
    added; it is called once per shard, in order. The new columns' kinds are inferred from
    their Arrow types (new columns nullable), unless ``schema`` (the declared columns of
    the result) is given. Audio bytes are copied, never re-encoded. ``dst`` must be new or
    empty (its ``derive.json`` claims it), or hold an interrupted derive of the same source
    and ``note``, which is then done again from the start;
    its ``dataset.json`` keeps the source's recipe, spec and seed and records
    ``derived_from`` (source path, its created_at, shard sha256s and ``note``).
    """
    source = Dataset.open(src)
    fs, root = resolve(dst)
    sfs, sroot = resolve(src)
    where = display(fs, root)
    if type(fs) is type(sfs) and root == sroot:
        raise StorageError(f"{where}: derive_dataset needs a new directory, not the source")
    _claim(fs, root, where, source, display(sfs, sroot), note)
    fmt = source.info.get("audio_format") or {}
    infos = []
    declared = schema
    for i, shard in enumerate(source.shards):
        shard_where = display(source.fs, source.shard_path(i))
        table = source.shard_file(i).read()
        new = update(table)
        if not isinstance(new, pa.Table):
            raise StorageError(
                f"{shard_where}: update returned {type(new).__name__}, not a pyarrow.Table"
            )
        if new.num_rows != table.num_rows or "example_id" not in new.column_names:
            raise StorageError(
                f"{shard_where}: update must keep every row and example_id "
                f"({table.num_rows} rows in, {new.num_rows} out)"
            )
        if not new.column("example_id").equals(table.column("example_id")):
            raise StorageError(f"{shard_where}: update changed or reordered example_id values")
        shard_schema = declared or Schema.infer(new.schema, known=source.schema)
        if declared is None:
            declared = shard_schema
        elif shard_schema != declared:
            raise StorageError(
                f"{shard_where}: update gave columns {shard_schema}, unlike the "
                f"earlier shards' {declared}"
            )
        info = write_shard(
            dst,
            shard.index,
            new,
            shard_schema,
            sample_rate=source.sample_rate,
            audio_format=fmt.get("format", "FLAC"),
            audio_subtype=fmt.get("subtype"),
            row_group_size=row_group_size,
            row_group_bytes=row_group_bytes,
            if_exists="error",
        )
        # count what reached the disk, not what was handed over: the file's own footer
        written = pq.read_metadata(open_input(fs, join(root, info.path))).num_rows
        if info.rows != table.num_rows or written != table.num_rows:
            raise StorageError(
                f"{display(fs, join(root, info.path))}: {written} row(s) written of "
                f"{table.num_rows}; the derived dataset is not finalized"
            )
        infos.append(info)
    derived_from: Mapping[str, Any] = {
        "path": display(sfs, sroot),
        "created_at": source.info.get("created_at"),
        "pamflow_version": source.info.get("pamflow_version"),
        "shards_sha256": [s.sha256 for s in source.shards],
        "note": note,
    }
    extra = {k: v for k, v in source.info.items() if k not in _STANDARD_KEYS}
    finalize_dataset(
        dst,
        recipe=source.recipe,
        spec=source.spec or {},
        seed=source.seed or 0,
        num_shards=len(source.shards),
        shard_infos=infos,
        derived_from=derived_from,
        extra=extra,
    )
    return Dataset.open(dst)


#: the claim of a derived dataset's folder: what it is derived from, written first
DERIVE_JSON = "derive.json"


def _claim(fs: Any, root: str, where: str, source: Dataset, source_path: str, note: str) -> None:
    """Claim ``root`` for this derive, or take up an interrupted one of the same source and
    note (its shards, which that derive wrote, are removed and written again); refuse a
    finished dataset, another derive's folder, and a non-empty folder pamflow did not make."""
    marker = join(root, DERIVE_JSON)
    claim = {
        "source": source_path,
        "source_shards_sha256": [s.sha256 for s in source.shards],
        "note": note,
    }
    if fs.exists(join(root, DATASET_JSON)):
        raise StorageError(f"{where}: already holds a finished dataset; choose a new path")
    if not fs.exists(marker):
        if fs.exists(root) and foreign_entries(fs, root):
            raise StorageError(
                f"{where}: not empty and not a derived dataset pamflow started; choose a new path"
            )
        fs.makedirs(root, exist_ok=True)
        if create_exclusive(fs, marker, json.dumps(claim, indent=2).encode()):
            return
    with fs.open(marker, "r") as f:
        old = json.load(f)
    if old != claim:
        raise StorageError(
            f"{where}: holds an unfinished derive of {old.get('source')!r} "
            f"({old.get('note')!r}); choose a new path"
        )
    shards = join(root, SHARDS_DIR)  # an interrupted run of this same derive: start over
    if fs.exists(shards):
        fs.rm(shards, recursive=True)
