"""A finished dataset: ``dataset.json`` written last by :func:`finalize_dataset`, read by
:class:`Dataset`.

``dataset.json`` holds the spec, recipe, seed, pamflow and schema versions, the columns,
audio columns, sample rate and audio format, and the shard list with row counts and
sha256. A dataset without it is not finished (a build was interrupted or is running).
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

import pamflow
from pamflow.storage.codec import decode_audio
from pamflow.storage.files import (
    atomic_write_bytes,
    display,
    join,
    open_input,
    resolve,
    sha256_file,
)
from pamflow.storage.schema import (
    SCHEMA_VERSION,
    Schema,
    StorageError,
    check_schema_version,
    read_file_metadata,
)
from pamflow.storage.shards import (
    SHARD_RE,
    SHARDS_DIR,
    ShardInfo,
    clean_tmp,
    list_shards,
    shard_name,
)

DATASET_JSON = "dataset.json"
FORMAT_NAME = "pamflow-dataset"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def finalize_dataset(
    out: str,
    *,
    recipe: str,
    spec: Mapping[str, Any],
    seed: int,
    num_shards: int,
    shard_infos: Sequence[ShardInfo] | None = None,
    derived_from: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Check that shards ``0..num_shards-1`` exist and agree, then write ``dataset.json``.

    Row counts come from each shard's footer; sha256 from ``shard_infos`` (as returned by
    ``write_shard``) where given, else by reading the file. Every shard must share one
    schema, sample rate and audio format, and example ids must be unique. ``extra`` adds
    fields of the caller's (e.g. a quarantine list). Leftover temporary files are removed.
    ``dataset.json`` is written last, atomically; its content is returned.
    """
    fs, root = resolve(out)
    if hasattr(spec, "model_dump"):
        spec = spec.model_dump(mode="json")
    try:
        spec = json.loads(json.dumps(dict(spec), allow_nan=False))
    except (TypeError, ValueError) as e:
        raise StorageError(f"{display(fs, root)}: spec is not JSON-serialisable: {e}") from e
    present = list_shards(out)
    expected = list(range(num_shards))
    missing = sorted(set(expected) - set(present))
    if missing:
        raise StorageError(
            f"{display(fs, root)}: cannot finalize: {len(missing)} of {num_shards} shard(s) "
            f"missing: {[shard_name(i) for i in missing[:10]]}"
        )
    unexpected = sorted(set(present) - set(expected))
    if unexpected:
        raise StorageError(
            f"{display(fs, root)}: shards beyond num_shards={num_shards} exist: "
            f"{[shard_name(i) for i in unexpected[:10]]}; remove them or fix num_shards"
        )
    given = {s.index: s for s in shard_infos or ()}
    first: dict[str, Any] | None = None
    shards: list[ShardInfo] = []
    ids: list[pa.ChunkedArray] = []
    for i in expected:
        path = join(root, shard_name(i))
        where = display(fs, path)
        with open_input(fs, path) as f:
            pf = pq.ParquetFile(f)
            meta = read_file_metadata(pf.schema_arrow, where)
            rows = pf.metadata.num_rows
            ids.append(pf.read(columns=["example_id"]).column("example_id"))
        fixed = {k: meta.get(k) for k in ("columns", "sample_rate", "audio_format")}
        if first is None:
            first = fixed
        elif fixed != first:
            raise StorageError(
                f"{where}: columns, sample rate or audio format differ from "
                f"shard 0: {fixed} != {first}"
            )
        info = given.get(i)
        if info is None or info.rows != rows:
            digest, size = sha256_file(fs, path)
            info = ShardInfo(i, shard_name(i), rows, digest, size)
        shards.append(dataclasses.replace(info, skipped=False))
    all_ids = pa.chunked_array(ids, type=pa.string()) if ids else pa.chunked_array([], pa.string())
    if len(pc.unique(all_ids)) != len(all_ids):
        counts = pc.value_counts(all_ids).to_pylist()
        dup = [c["values"] for c in counts if c["counts"] > 1][:5]
        raise StorageError(f"{display(fs, root)}: duplicate example_id(s) across shards: {dup}")
    first = first or {"columns": Schema([]).to_dict(), "sample_rate": None, "audio_format": None}
    schema = Schema.from_dict(first["columns"])
    manifest = {
        "format": FORMAT_NAME,
        "schema_version": SCHEMA_VERSION,
        "pamflow_version": pamflow.__version__,
        "created_at": _now(),
        "recipe": recipe,
        "seed": int(seed),
        "spec": spec,
        "columns": schema.to_dict(),
        "audio_columns": schema.audio_columns,
        "sample_rate": first["sample_rate"],
        "audio_format": first["audio_format"],
        "num_rows": sum(s.rows for s in shards),
        "num_shards": len(shards),
        "shards": [s.to_dict() for s in shards],
        "derived_from": dict(derived_from) if derived_from else None,
    }
    clash = sorted(set(extra or {}) & set(manifest))
    if clash:
        raise StorageError(
            f"{display(fs, root)}: extra fields {clash} would replace fields "
            "finalize_dataset writes itself"
        )
    manifest.update(extra or {})
    try:
        text = json.dumps(manifest, indent=2, allow_nan=False) + "\n"
    except (TypeError, ValueError) as e:
        raise StorageError(
            f"{display(fs, root)}: extra fields are not JSON-serialisable: {e}"
        ) from e
    clean_tmp(out)
    atomic_write_bytes(fs, join(root, DATASET_JSON), text.encode(), fsync=True)
    return manifest


@dataclasses.dataclass
class VerifyReport:
    """What :meth:`Dataset.verify` found: ``problems`` is empty when all shards match."""

    path: str
    checked: int
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        if self.ok:
            return f"{self.path}: {self.checked} shard(s) verified, all match dataset.json"
        lines = "\n".join(f"  - {p}" for p in self.problems)
        return f"{self.path}: {len(self.problems)} problem(s) in {self.checked} shard(s):\n{lines}"

    def raise_if_failed(self) -> None:
        if not self.ok:
            raise StorageError(str(self))


class Dataset:
    """A finished dataset, opened from its ``dataset.json`` (local path or fsspec URL)."""

    def __init__(self, url: str, info: dict[str, Any], *, verify: bool = True) -> None:
        self.url = str(url)
        self.info = info
        self.verify_reads = verify
        self.fs, self.root = resolve(self.url)
        where = display(self.fs, join(self.root, DATASET_JSON))
        self.schema = Schema.from_dict(info["columns"])
        self.shards = [ShardInfo.from_dict(s) for s in info["shards"]]
        for s in self.shards:
            self._check_path(s.path, where)
        total = sum(s.rows for s in self.shards)
        if total != info["num_rows"]:
            raise StorageError(
                f"{where}: num_rows is {info['num_rows']} but its shards list {total} rows"
            )
        self._offsets = np.cumsum([0] + [s.rows for s in self.shards]).tolist()
        self._files: dict[int, pq.ParquetFile] = {}

    def _check_path(self, rel: str, where: str) -> None:
        """Refuse a shard path that would read outside the dataset's folder: only
        ``shards/part-NNNNN.parquet`` names, and (on a local disk) no link out of it."""
        head, _, name = rel.partition("/")
        if head != SHARDS_DIR or not SHARD_RE.match(name):
            raise StorageError(
                f"{where}: shard path {rel!r} is not a shard of this dataset "
                f"({SHARDS_DIR}/part-NNNNN.parquet)"
            )
        if isinstance(self.fs, LocalFileSystem):
            root = os.path.realpath(self.root)
            real = os.path.realpath(join(self.root, rel))
            if os.path.commonpath([root, real]) != root:
                raise StorageError(
                    f"{where}: shard {rel!r} links outside the dataset folder (to {real})"
                )

    @classmethod
    def open(cls, url: str, *, verify: bool = True) -> Dataset:
        """Read ``url/dataset.json``; refuse a schema version this pamflow cannot read, shard
        paths leaving the folder and row counts that do not add up.

        With ``verify`` (the default) each shard's sha256 and row count are checked against
        ``dataset.json`` the first time this process opens it, so a damaged or replaced
        shard is refused, naming it, instead of being read; ``verify=False`` skips the
        hash (the row count is always checked)."""
        fs, root = resolve(url)
        path = join(root, DATASET_JSON)
        where = display(fs, path)
        if not fs.exists(path):
            raise StorageError(
                f"{where}: not found: {display(fs, root)} is not a finished "
                "pamflow dataset (finalize_dataset writes dataset.json last)"
            )
        try:
            with fs.open(path, "rb") as f:
                info = json.loads(f.read())
        except ValueError as e:
            raise StorageError(f"{where}: not valid JSON: {e}") from e
        check_schema_version(info.get("schema_version"), where)
        for key in ("columns", "shards", "num_rows"):
            if key not in info:
                raise StorageError(f"{where}: field {key!r} is missing")
        return cls(url, info, verify=verify)

    def __getstate__(self) -> dict[str, Any]:
        return {"url": self.url, "info": self.info, "verify": self.verify_reads}

    def __setstate__(self, state: dict[str, Any]) -> None:
        Dataset.__init__(self, state["url"], state["info"], verify=state.get("verify", True))

    def __len__(self) -> int:
        return self.num_rows

    def __repr__(self) -> str:
        return f"Dataset({self.url!r}, recipe={self.recipe!r}, rows={self.num_rows})"

    num_rows = property(lambda self: int(self.info["num_rows"]))
    recipe = property(lambda self: self.info.get("recipe"))
    spec = property(lambda self: self.info.get("spec"))
    seed = property(lambda self: self.info.get("seed"))
    sample_rate = property(lambda self: self.info.get("sample_rate"))
    audio_columns = property(lambda self: self.schema.audio_columns)

    def shard_path(self, i: int) -> str:
        return join(self.root, self.shards[i].path)

    def shard_file(self, i: int) -> pq.ParquetFile:
        """The open Parquet file of shard ``i`` (its pamflow metadata version checked)."""
        pf = self._files.get(i)
        if pf is None:
            shard = self.shards[i]
            path = self.shard_path(i)
            where = display(self.fs, path)
            if self.verify_reads:
                try:
                    digest, size = sha256_file(self.fs, path)
                except OSError as e:
                    raise StorageError(f"{where}: cannot read shard: {e}") from e
                if digest != shard.sha256:
                    raise StorageError(
                        f"{where}: sha256 mismatch ({size} bytes; dataset.json lists "
                        f"{shard.bytes}): the shard was changed after it was written; "
                        "`pamflow inspect` lists every damaged shard"
                    )
            try:
                pf = pq.ParquetFile(open_input(self.fs, path))
            except (OSError, pa.ArrowInvalid) as e:
                raise StorageError(f"{where}: cannot open shard: {e}") from e
            read_file_metadata(pf.schema_arrow, where)
            if pf.metadata.num_rows != shard.rows:
                raise StorageError(
                    f"{where}: {pf.metadata.num_rows} rows in the file, {shard.rows} in "
                    "dataset.json"
                )
            self._files[i] = pf
        return pf

    def locate(self, i: int) -> tuple[int, int]:
        """``(shard, row within shard)`` of global row ``i`` (negative counts from the end)."""
        n = self.num_rows
        if not -n <= i < n:
            raise IndexError(f"row {i} out of range for {n} rows in {self.url}")
        i %= n
        s = bisect.bisect_right(self._offsets, i) - 1
        return s, i - self._offsets[s]

    def verify(self) -> VerifyReport:
        """Recompute each shard's sha256; report missing, changed and unlisted shards."""
        problems = []
        for s in self.shards:
            path = join(self.root, s.path)
            where = display(self.fs, path)
            if not self.fs.exists(path):
                problems.append(f"{where}: missing")
                continue
            digest, size = sha256_file(self.fs, path)
            if digest != s.sha256:
                problems.append(
                    f"{where}: sha256 mismatch: dataset.json has {s.sha256}, "
                    f"file has {digest} ({size} bytes, expected {s.bytes})"
                )
        listed = {s.path for s in self.shards}
        for i in list_shards(self.url):
            if shard_name(i) not in listed:
                where = display(self.fs, join(self.root, shard_name(i)))
                problems.append(f"{where}: not listed in dataset.json")
        return VerifyReport(display(self.fs, self.root), len(self.shards), problems)

    def _columns(self, columns: Sequence[str] | None) -> list[str]:
        if columns is None:
            return self.schema.names
        for c in columns:
            self.schema[c]  # raises naming the unknown column
        return list(columns)

    def iter_batches(
        self, columns: Sequence[str] | None = None, batch_size: int = 256
    ) -> Iterator[pa.RecordBatch]:
        """Record batches over all shards in order (all columns by default)."""
        cols = self._columns(columns)
        for i in range(len(self.shards)):
            yield from self.shard_file(i).iter_batches(batch_size=batch_size, columns=cols)

    def iter_rows(
        self, columns: Sequence[str] | None = None, *, decode_json: bool = True
    ) -> Iterator[dict[str, Any]]:
        """Rows as dicts, in order; json columns parsed, audio left as ``{bytes, path}``."""
        for batch in self.iter_batches(columns, batch_size=64):
            yield from self._rows(batch, decode_json)

    def to_table(self, columns: Sequence[str] | None = None) -> pa.Table:
        """All rows of ``columns`` as one table; by default every column but the audio."""
        if columns is None:
            columns = [c for c in self.schema.names if c not in self.audio_columns]
        cols = self._columns(columns)
        tables = [self.shard_file(i).read(columns=cols) for i in range(len(self.shards))]
        if not tables:
            return self.schema.to_arrow().empty_table().select(cols)
        return pa.concat_tables(tables)

    def row(
        self, i: int, columns: Sequence[str] | None = None, *, decode_json: bool = True
    ) -> dict[str, Any]:
        """Global row ``i`` (position in shard order; equals ``index`` for recipe builds)."""
        s, r = self.locate(i)
        pf = self.shard_file(s)
        md = pf.metadata
        start = 0
        for g in range(md.num_row_groups):
            n = md.row_group(g).num_rows
            if r < start + n:
                table = pf.read_row_group(g, columns=self._columns(columns), use_threads=False)
                return next(self._rows(table.slice(r - start, 1), decode_json))
            start += n
        raise StorageError(
            f"{display(self.fs, self.shard_path(s))}: row {r} not found; "
            "footer row counts disagree with dataset.json"
        )

    def _rows(self, batch: pa.RecordBatch | pa.Table, decode_json: bool) -> Iterator[dict]:
        json_cols = [c for c in batch.column_names if c in self.schema.json_columns]
        for row in batch.to_pylist():
            if decode_json:
                for c in json_cols:
                    if row[c] is not None:
                        row[c] = json.loads(row[c])
            yield row

    def decode_audio(self, value: Mapping[str, Any] | bytes) -> tuple[np.ndarray, int]:
        """:func:`decode_audio`, checking the rate against the dataset's ``sample_rate``."""
        x, sr = decode_audio(value)
        if self.sample_rate and sr != self.sample_rate:
            raise StorageError(
                f"{self.url}: audio cell at {sr} Hz, dataset.json says {self.sample_rate} Hz"
            )
        return x, sr
