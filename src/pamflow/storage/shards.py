"""Writing Parquet shards: rows in, one complete file out, atomically.

A shard is written to ``shards/.part-00000.parquet.<random>.tmp`` and renamed to
``shards/part-00000.parquet`` once closed, so a shard under its final name is complete
(:func:`shard_done`). Audio columns are encoded whole files (FLAC 24-bit by default, or
float32 WAV) in the ``{bytes, path}`` struct; ``path`` is ``f"{example_id}_{column}.flac"``.
"""

from __future__ import annotations

import dataclasses
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import soundfile as sf

from pamflow.audio import encode
from pamflow.storage.files import (
    HashingWriter,
    abandoned_tmp,
    atomic_open,
    display,
    is_tmp_name,
    join,
    open_input,
    remove_quietly,
    resolve,
    sha256_file,
)
from pamflow.storage.schema import Schema, StorageError, audio_format, read_file_metadata

SHARDS_DIR = "shards"
#: the footer key of what a shard's writer noted after its rows (see write_shard)
NOTES_KEY = b"pamflow.notes"
#: A Parquet row group is the unit of random access (ShardMapDataset reads a whole one to
#: get one row), so groups are kept small: at most this many rows...
DEFAULT_ROW_GROUP_SIZE = 64
#: ...and closed once their audio reaches this many bytes (~7 JND rows of 2 x 2.5 s FLAC)
DEFAULT_ROW_GROUP_BYTES = 1 << 20
SHARD_RE = re.compile(r"^part-(\d{5,})\.parquet$")


@dataclasses.dataclass(frozen=True)
class ShardInfo:
    """A complete shard: ``path`` relative to the dataset root, row count, sha256, size."""

    index: int
    path: str
    rows: int
    sha256: str
    bytes: int
    skipped: bool = False  # True when write_shard found it complete and left it alone

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "path": self.path,
            "rows": self.rows,
            "sha256": self.sha256,
            "bytes": self.bytes,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ShardInfo:
        return cls(
            int(data["index"]),
            str(data["path"]),
            int(data["rows"]),
            str(data["sha256"]),
            int(data["bytes"]),
        )


def shard_name(shard_index: int) -> str:
    """``shards/part-00000.parquet`` (relative to the dataset root)."""
    if shard_index < 0:
        raise StorageError(f"shard index must be >= 0, got {shard_index}")
    return f"{SHARDS_DIR}/part-{shard_index:05d}.parquet"


def shard_done(out: str, shard_index: int) -> bool:
    """True when shard ``shard_index`` of dataset ``out`` exists under its final name."""
    fs, root = resolve(out)
    return bool(fs.exists(join(root, shard_name(shard_index))))


def list_shards(out: str) -> list[int]:
    """Indices of the complete shards in ``out`` (temporary files are not shards)."""
    fs, root = resolve(out)
    d = join(root, SHARDS_DIR)
    if not fs.exists(d):
        return []
    found = []
    for p in fs.ls(d, detail=False):
        m = SHARD_RE.match(p.rstrip("/").rpartition("/")[2])
        if m:
            found.append(int(m.group(1)))
    return sorted(found)


def clean_tmp(out: str) -> list[str]:
    """Remove temporary files (``.*.tmp``) of interrupted writes whose writer is gone (see
    :func:`pamflow.storage.files.abandoned_tmp`); return them. A temporary file of a
    process still running, here or on another machine, is left alone."""
    fs, root = resolve(out)
    removed = []
    for d in (root, join(root, SHARDS_DIR)):
        if not fs.exists(d):
            continue
        for p in fs.ls(d, detail=False):
            name = p.rstrip("/").rpartition("/")[2]
            if is_tmp_name(name) and abandoned_tmp(name):
                remove_quietly(fs, p)
                removed.append(display(fs, p))
    return removed


def shard_notes(out: str, shard_index: int) -> dict[str, Any]:
    """What the writer of a complete shard noted once its rows were made (``notes`` of
    :func:`write_shard`; ``{}`` when none), read from the footer alone."""
    fs, root = resolve(out)
    path = join(root, shard_name(shard_index))
    if not fs.exists(path):
        raise StorageError(f"{display(fs, path)}: shard {shard_index} is missing")
    return footer_notes(fs, path)


def footer_notes(fs: Any, path: str) -> dict[str, Any]:
    """The notes in the footer of the Parquet file at ``path`` (a shard or a piece of one;
    ``{}`` when none)."""
    with open_input(fs, path) as f:
        kv = pq.ParquetFile(f).metadata.metadata or {}
    if NOTES_KEY not in kv:
        return {}
    try:
        return dict(json.loads(kv[NOTES_KEY]))
    except ValueError as e:
        raise StorageError(
            f"{display(fs, path)}: {NOTES_KEY.decode()} is not valid JSON: {e}"
        ) from e


def read_shard_info(out: str, shard_index: int) -> ShardInfo:
    """Row count (from the footer) and sha256 (by reading the file) of a complete shard."""
    fs, root = resolve(out)
    rel = shard_name(shard_index)
    path = join(root, rel)
    where = display(fs, path)
    if not fs.exists(path):
        raise StorageError(f"{where}: shard {shard_index} is missing")
    with open_input(fs, path) as f:
        pf = pq.ParquetFile(f)
        read_file_metadata(pf.schema_arrow, where)
        rows = pf.metadata.num_rows
    digest, size = sha256_file(fs, path)
    return ShardInfo(shard_index, rel, rows, digest, size)


# -- rows to Arrow -------------------------------------------------------------------------


class _Encoder:
    """Turns row dicts into Arrow tables of a schema, encoding audio; names bad values."""

    def __init__(
        self, schema: Schema, sample_rate: int | None, fmt: str, subtype: str | None
    ) -> None:
        self.schema = schema
        self.fmt, self.subtype, self.ext = audio_format(fmt, subtype)
        if schema.audio_columns and not sample_rate:
            raise StorageError(
                f"columns {schema.audio_columns} are audio: pass sample_rate to write them"
            )
        #: 0 only for schemas without audio, where it is never read
        self.sample_rate = int(sample_rate or 0)

    def row(self, row: Mapping[str, Any], where: str) -> tuple[list[Any], int]:
        """One row's values in schema order, audio encoded; and its audio size in bytes."""
        eid = row.get("example_id")
        unknown = set(row) - set(self.schema.names)
        if unknown:
            raise StorageError(
                f"{where}: example {eid!r} has undeclared column(s) {sorted(unknown)}"
            )
        values, nbytes = [], 0
        for col in self.schema.columns:
            value = row.get(col.name)
            if value is None:
                if not col.nullable:
                    state = "missing" if col.name not in row else "None"
                    raise StorageError(
                        f"{where}: example {eid!r}: column {col.name!r} is {state} but not nullable"
                    )
            else:
                value = self._value(col.kind, col.name, value, eid, where)
                if col.kind == "audio":
                    nbytes += len(value["bytes"])
            values.append(value)
        return values, nbytes

    def table(self, rows: list[list[Any]], where: str) -> pa.Table:
        """A table of rows made by :meth:`row`; a bad value names its column."""
        arrays = []
        for k, col in enumerate(self.schema.columns):
            try:
                arrays.append(pa.array([r[k] for r in rows], type=col.arrow_type))
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError) as e:
                raise StorageError(f"{where}: column {col.name!r} ({col.kind}): {e}") from e
        return pa.Table.from_arrays(arrays, schema=self.schema.to_arrow())

    def tables(
        self, rows: Iterable[Mapping[str, Any]], where: str, max_rows: int, max_bytes: int
    ) -> Iterator[pa.Table]:
        """Row groups: up to ``max_rows`` rows, closed early once audio reaches ``max_bytes``."""
        group: list[list[Any]] = []
        size = 0
        for row in rows:
            values, nbytes = self.row(row, where)
            group.append(values)
            size += nbytes
            if len(group) >= max_rows or size >= max_bytes:
                yield self.table(group, where)
                group, size = [], 0
        if group:
            yield self.table(group, where)

    def _value(self, kind: str, name: str, value: Any, eid: Any, where: str) -> Any:
        if kind == "audio":
            return self._audio(name, value, eid, where)
        if kind == "json":
            return _json_text(value, f"{where}: example {eid!r}: column {name!r}")
        if kind == "list<string>" and isinstance(value, str):
            raise StorageError(f"{where}: example {eid!r}: column {name!r} wants a list of str")
        if isinstance(value, np.generic):
            return value.item()
        return value

    def _audio(self, name: str, value: Any, eid: Any, where: str) -> dict[str, Any]:
        label = f"{where}: example {eid!r}: audio column {name!r}"
        path = f"{eid}_{name}.{self.ext}"
        if isinstance(value, Mapping):
            path = value.get("path") or path
            value = value.get("bytes")
        if isinstance(value, bytes | bytearray | memoryview):
            data = bytes(value)
            try:
                info = sf.info(io.BytesIO(data))
            except (sf.LibsndfileError, RuntimeError) as e:
                raise StorageError(f"{label}: bytes are not a readable audio file: {e}") from e
            got = (info.format, info.subtype, info.samplerate)
            if got != (self.fmt, self.subtype, self.sample_rate):
                raise StorageError(
                    f"{label}: encoded as {got[0]}/{got[1]} at {got[2]} Hz, but this dataset "
                    f"holds {self.fmt}/{self.subtype} at {self.sample_rate} Hz"
                )
            return {"bytes": data, "path": path}
        x = np.asarray(value)
        if x.ndim != 1 or x.size == 0 or not np.issubdtype(x.dtype, np.floating):
            raise StorageError(
                f"{label}: expected a non-empty mono float array (n,), got {x.dtype} {x.shape}"
            )
        if not np.all(np.isfinite(x)):
            raise StorageError(f"{label}: holds NaN or inf samples")
        peak = float(np.max(np.abs(x)))
        if self.subtype.startswith("PCM") and peak > 1.0 + 2.0**-23:
            raise StorageError(
                f"{label}: peak {peak:.4f} exceeds full scale; {self.fmt}/{self.subtype} would "
                "clip it and hide part of the perturbation (normalise it or store float WAV)"
            )
        return {
            "bytes": encode(x, self.sample_rate, format=self.fmt, subtype=self.subtype),
            "path": path,
        }


def _json_text(value: Any, label: str) -> str:
    """JSON text for a json column: objects are dumped (keys sorted); a str must already be
    JSON text (it is stored as given)."""
    if isinstance(value, str):
        try:
            json.loads(value)
        except ValueError as e:
            raise StorageError(
                f"{label}: a str must already hold JSON text ({e}); to store a plain string "
                "pass json.dumps(value)"
            ) from e
        return value
    if hasattr(value, "to_dict"):
        value = value.to_dict()
    try:
        return json.dumps(value, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise StorageError(f"{label}: not JSON-serialisable: {e}") from e


# -- writing -------------------------------------------------------------------------------


def _writer_options(schema: Schema) -> dict[str, Any]:
    """Audio bytes are already compressed: store them plain, without statistics or
    dictionaries; compress the rest with zstd."""
    compression: dict[str, str] = {}
    for c in schema.columns:
        if c.kind == "audio":
            compression[f"{c.name}.bytes"] = "none"
            compression[f"{c.name}.path"] = "zstd"
        elif c.kind == "list<string>":
            compression[f"{c.name}.list.element"] = "zstd"
        else:
            compression[c.name] = "zstd"
    plain = [c.name for c in schema.columns if c.kind not in ("audio", "list<string>")]
    return {"compression": compression, "write_statistics": plain, "use_dictionary": plain}


def write_shard(
    out_dir: str,
    shard_index: int,
    rows: Iterable[Mapping[str, Any]] | pa.Table,
    schema: Schema,
    *,
    sample_rate: int | None = None,
    audio_format: str = "FLAC",
    audio_subtype: str | None = None,
    row_group_size: int = DEFAULT_ROW_GROUP_SIZE,
    row_group_bytes: int = DEFAULT_ROW_GROUP_BYTES,
    if_exists: Literal["skip", "overwrite", "error"] = "skip",
    extra_metadata: dict[str, Any] | None = None,
    notes: Callable[[], Mapping[str, Any]] | None = None,
    name: str | None = None,
) -> ShardInfo:
    """Write shard ``shard_index`` of the dataset at ``out_dir``, atomically (to ``name``,
    a path relative to ``out_dir``, instead of the shard's own when given: a piece of it).

    ``rows`` are dicts with the schema's columns (``index``, ``example_id``, ``seed``,
    ``params`` and the declared ones); audio values are mono float arrays at
    ``sample_rate`` Hz (encoded here), already-encoded bytes, or ``{bytes, path}`` dicts.
    They are consumed one row group at a time: a group closes at ``row_group_size`` rows or
    once its audio reaches ``row_group_bytes``. A ``pyarrow.Table`` of the schema's columns
    is written as it is (audio structs kept). When the shard already exists it is complete:
    ``if_exists="skip"`` returns its info (``skipped=True``) without reading ``rows``.
    ``notes()``, called once every row is written, gives what the footer should also say
    about them (JSON; read back with :func:`shard_notes`).
    """
    if row_group_size < 1 or row_group_bytes < 1:
        raise StorageError(
            f"row_group_size and row_group_bytes must be >= 1, got {row_group_size}, "
            f"{row_group_bytes}"
        )
    fs, root = resolve(out_dir)
    rel = name or shard_name(shard_index)
    final = join(root, rel)
    where = display(fs, final)
    if fs.exists(final):
        if if_exists == "skip" and name is None:
            return dataclasses.replace(read_shard_info(out_dir, shard_index), skipped=True)
        if if_exists == "skip":
            return ShardInfo(shard_index, rel, -1, "", 0, skipped=True)
        if if_exists == "error":
            raise StorageError(f"{where}: shard {shard_index} already exists")
    enc = _Encoder(schema, sample_rate, audio_format, audio_subtype)
    meta = schema.file_metadata(
        sample_rate=sample_rate,
        format=enc.fmt,
        subtype=enc.subtype,
        extra={"shard_index": shard_index, **(extra_metadata or {})},
    )
    arrow_schema = schema.to_arrow(meta)
    if isinstance(rows, pa.Table):
        table = _conform(rows, schema, where)
        audio = sum(table.column(c).combine_chunks().field("bytes").nbytes
                    for c in schema.audio_columns)  # fmt: skip
        per_row = audio / max(table.num_rows, 1)
        group = int(max(1, min(row_group_size, row_group_bytes // max(per_row, 1))))
        tables: Iterable[pa.Table] = (
            table.slice(k, group) for k in range(0, table.num_rows, group)
        )
    else:
        tables = enc.tables(rows, where, row_group_size, row_group_bytes)
    fs.makedirs(final.rpartition("/")[0], exist_ok=True)
    n = 0
    with atomic_open(final, "wb", fs=fs, fsync=True) as raw:
        sink = HashingWriter(raw)
        with pq.ParquetWriter(sink, arrow_schema, **_writer_options(schema)) as writer:
            for part in tables:  # not `table`: the slices above are taken from it lazily
                writer.write_table(part, row_group_size=max(part.num_rows, 1))
                n += part.num_rows
            said = dict(notes()) if notes is not None else {}
            if said:
                writer.add_key_value_metadata({NOTES_KEY: json.dumps(said, sort_keys=True)})
    return ShardInfo(shard_index, rel, n, sink.hash.hexdigest(), sink.size)


def _conform(table: pa.Table, schema: Schema, where: str) -> pa.Table:
    """``table`` with the schema's columns in order and types; nullability checked."""
    missing = [n for n in schema.names if n not in table.column_names]
    extra = [n for n in table.column_names if n not in schema]
    if missing or extra:
        raise StorageError(
            f"{where}: table columns differ from the schema: missing {missing}, undeclared {extra}"
        )
    table = table.select(schema.names)
    try:
        table = table.cast(schema.to_arrow())
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as e:
        raise StorageError(f"{where}: table does not fit the schema: {e}") from e
    for c in schema.columns:
        if not c.nullable and table.column(c.name).null_count:
            raise StorageError(f"{where}: column {c.name!r} holds nulls but is not nullable")
    return table
