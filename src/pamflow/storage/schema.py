"""Declared schemas: the columns a dataset holds, mapped to Arrow/Parquet types.

A caller declares its columns with :class:`Column` and :class:`Schema`; every schema also
holds four base columns, first, in this order:

==============  =========  =====================================================
``index``       int64      global example index (0..N-1 over the whole dataset)
``example_id``  string     stable id, unique in the dataset
``seed``        int64      the seed that made the example
``params``      json       the exact params (JSON text)
==============  =========  =====================================================

Column kinds and their Parquet types:

================  ==================================  ================================
kind              Arrow type                          Python value written / read
================  ==================================  ================================
``audio``         struct{bytes: binary, path: string}  array (encoded), bytes or a dict
``string``        string                              str
``int64``         int64                               int
``float64``       float64                             float
``bool``          bool                                bool
``json``          string (JSON text)                  any JSON value / parsed back
``list<string>``  list<string>                        list of str
================  ==================================  ================================

Audio columns use the layout of Hugging Face ``datasets``' Audio feature, so shards load
there (and in DuckDB, Polars, Spark) without pamflow. Arrow fields are all nullable, as
``datasets`` expects; ``nullable=False`` is enforced by the writer instead.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pyarrow as pa

#: version of the on-disk layout; bump it when a reader of the old layout would misread
SCHEMA_VERSION = 1
#: key of pamflow's JSON entry in the Parquet (Arrow) schema metadata
METADATA_KEY = b"pamflow"
#: key Hugging Face ``datasets`` reads its features from
HF_METADATA_KEY = b"huggingface"

AUDIO_TYPE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
KINDS: dict[str, pa.DataType] = {
    "audio": AUDIO_TYPE,
    "string": pa.string(),
    "int64": pa.int64(),
    "float64": pa.float64(),
    "bool": pa.bool_(),
    "json": pa.string(),
    "list<string>": pa.list_(pa.string()),
}
_HF_VALUE = {"string": "string", "int64": "int64", "float64": "float64", "bool": "bool"}

#: audio encodings a dataset may use: (format, subtype) -> file extension. 16-bit PCM is
#: left out on purpose: its noise floor (~-98 dBFS) is too close to the mildest
#: perturbations (66 dB SNR) for a metric's training data.
AUDIO_FORMATS: dict[tuple[str, str], str] = {
    ("FLAC", "PCM_24"): "flac",
    ("WAV", "FLOAT"): "wav",
    ("WAV", "DOUBLE"): "wav",
    ("WAV", "PCM_24"): "wav",
    ("WAV", "PCM_32"): "wav",
}


class StorageError(ValueError):
    """Bad input to storage or a dataset that cannot be read; the message names the file."""


class SchemaVersionError(StorageError):
    """A file written by a newer pamflow, with a schema version this one does not know."""


def check_schema_version(found: Any, where: str) -> int:
    """Return ``found`` as an int, or raise naming ``where`` if this reader cannot read it."""
    if isinstance(found, bool) or not isinstance(found, int) or found < 1:
        raise StorageError(f"{where}: schema version missing or not a positive integer: {found!r}")
    if found > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"{where}: schema version {found} is not readable by this pamflow, which reads "
            f"schema version {SCHEMA_VERSION}; upgrade pamflow to read it"
        )
    return found


def audio_format(format: str = "FLAC", subtype: str | None = None) -> tuple[str, str, str]:
    """Normalise an audio encoding: return ``(format, subtype, extension)`` or raise."""
    fmt = format.upper()
    sub = (subtype or {"FLAC": "PCM_24", "WAV": "FLOAT"}.get(fmt, "")).upper()
    ext = AUDIO_FORMATS.get((fmt, sub))
    if ext is None:
        allowed = ", ".join(f"{f}/{s}" for f, s in AUDIO_FORMATS)
        raise StorageError(f"audio format {fmt}/{sub} is not supported; use one of {allowed}")
    return fmt, sub, ext


@dataclasses.dataclass(frozen=True)
class Column:
    """One declared column: ``name``, ``kind`` (see :data:`KINDS`) and ``nullable``."""

    name: str
    kind: str
    nullable: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or "." in self.name:
            raise StorageError(f"column name must be a non-empty string without '.': {self.name!r}")
        if self.kind not in KINDS:
            raise StorageError(
                f"column {self.name!r}: unknown kind {self.kind!r}; kinds are {sorted(KINDS)}"
            )

    @property
    def arrow_type(self) -> pa.DataType:
        return KINDS[self.kind]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "nullable": self.nullable}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Column:
        return cls(str(data["name"]), str(data["kind"]), bool(data.get("nullable", False)))

    def hf_feature(self, sample_rate: int | None) -> dict[str, Any]:
        """This column as a Hugging Face ``datasets`` feature (JSON form)."""
        if self.kind == "audio":
            return {"_type": "Audio", "sampling_rate": sample_rate}
        if self.kind == "list<string>":
            return {"_type": "Sequence", "feature": {"_type": "Value", "dtype": "string"}}
        return {"_type": "Value", "dtype": _HF_VALUE.get(self.kind, "string")}


BASE_COLUMNS: tuple[Column, ...] = (
    Column("index", "int64"),
    Column("example_id", "string"),
    Column("seed", "int64"),
    Column("params", "json"),
)
BASE_NAMES = frozenset(c.name for c in BASE_COLUMNS)


class Schema:
    """The declared columns of a dataset, with the four base columns prepended.

    >>> Schema([Column("reference", "audio"), Column("strength", "float64")]).names
    ['index', 'example_id', 'seed', 'params', 'reference', 'strength']
    """

    def __init__(self, columns: list[Column] | tuple[Column, ...]) -> None:
        cols = list(columns)
        if cols[: len(BASE_COLUMNS)] == list(BASE_COLUMNS):
            cols = cols[len(BASE_COLUMNS) :]  # already holds the base columns (from_dict)
        seen: set[str] = set()
        for c in cols:
            if not isinstance(c, Column):
                raise StorageError(f"schema entries must be Column, got {c!r}")
            if c.name in BASE_NAMES:
                raise StorageError(
                    f"column {c.name!r} is a base column every row has; do not declare it"
                )
            if c.name in seen:
                raise StorageError(f"column {c.name!r} is declared twice")
            seen.add(c.name)
        self.columns: tuple[Column, ...] = BASE_COLUMNS + tuple(cols)
        self._by_name = {c.name: c for c in self.columns}

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def audio_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.kind == "audio"]

    @property
    def json_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.kind == "json"]

    def __getitem__(self, name: str) -> Column:
        try:
            return self._by_name[name]
        except KeyError:
            raise StorageError(f"no column {name!r}; columns are {self.names}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Schema) and self.columns == other.columns

    def __hash__(self) -> int:
        return hash(self.columns)

    def __repr__(self) -> str:
        inner = ", ".join(f"{c.name}:{c.kind}{'?' if c.nullable else ''}" for c in self.columns)
        return f"Schema({inner})"

    def to_dict(self) -> list[dict[str, Any]]:
        return [c.to_dict() for c in self.columns]

    @classmethod
    def from_dict(cls, data: list[dict[str, Any]]) -> Schema:
        return cls([Column.from_dict(d) for d in data])

    def to_arrow(self, metadata: dict[bytes, bytes] | None = None) -> pa.Schema:
        """The Arrow schema (all fields nullable, see the module docstring)."""
        return pa.schema([pa.field(c.name, c.arrow_type) for c in self.columns], metadata=metadata)

    def file_metadata(
        self, *, sample_rate: int | None, format: str, subtype: str, extra: dict | None = None
    ) -> dict[bytes, bytes]:
        """Schema metadata for a shard: pamflow's entry and Hugging Face's features."""
        entry = {
            "schema_version": SCHEMA_VERSION,
            "columns": self.to_dict(),
            "audio_columns": self.audio_columns,
            "sample_rate": sample_rate,
            "audio_format": {"format": format, "subtype": subtype},
            **(extra or {}),
        }
        hf = {"info": {"features": {c.name: c.hf_feature(sample_rate) for c in self.columns}}}
        return {
            METADATA_KEY: json.dumps(entry, sort_keys=True).encode(),
            HF_METADATA_KEY: json.dumps(hf).encode(),
        }

    @classmethod
    def infer(cls, arrow_schema: pa.Schema, known: Schema | None = None) -> Schema:
        """A schema for an Arrow schema: columns in ``known`` keep their declaration, new
        ones get the kind their type maps to (``string`` for text, never ``json``) and are
        nullable."""
        by_type = [(t, k) for k, t in KINDS.items() if k != "json"]
        cols = []
        for f in arrow_schema:
            if f.name in BASE_NAMES:
                continue
            if known is not None and f.name in known:
                cols.append(known[f.name])
                continue
            kind = next((k for t, k in by_type if f.type.equals(t)), None)
            if kind is None:
                raise StorageError(
                    f"column {f.name!r}: Arrow type {f.type} has no pamflow kind; cast it "
                    f"to one of {[str(t) for t, _ in by_type]} or pass a schema"
                )
            cols.append(Column(f.name, kind, nullable=True))
        return cls(cols)


def read_file_metadata(arrow_schema: pa.Schema, where: str) -> dict[str, Any]:
    """pamflow's metadata entry of a shard's schema, its version checked."""
    meta = arrow_schema.metadata or {}
    if METADATA_KEY not in meta:
        raise StorageError(f"{where}: not a pamflow shard (no {METADATA_KEY!r} metadata key)")
    try:
        entry = json.loads(meta[METADATA_KEY])
    except ValueError as e:
        raise StorageError(f"{where}: pamflow metadata is not valid JSON: {e}") from e
    check_schema_version(entry.get("schema_version"), where)
    return entry
