"""Pieces: parts of one shard made by separate work units, then joined into the shard.

A build may split a shard into pieces (``pamflow.pipeline.build.plan_pieces``), so that
workers share the rows of a shard whose rows cost unevenly (a JND sequence drawing
Griffin-Lim costs 10 to 40 times another). Each piece is a complete Parquet file named by
its shard and rows, ``pieces/part-NNNNN.SSSSSSSSS-EEEEEEEEE.parquet`` (rows S to E-1),
written atomically as a shard is; a build resumed with another cut (more workers) makes the
pieces it lacks and never joins a piece of another cut. Once every piece of a
shard is there, :func:`join_pieces` streams their rows, in order, through
:func:`~pamflow.storage.shards.write_shard`: the shard gets the row groups it would have had
if one process had written it whole, so its bytes do not depend on the pieces. The pieces
are removed after the shard is in place; a build killed in between finds the shard complete
and the pieces gone or removable.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import pyarrow.parquet as pq

from pamflow.storage.files import (
    abandoned_tmp,
    display,
    is_tmp_name,
    join,
    open_input,
    remove_quietly,
    resolve,
)
from pamflow.storage.schema import Schema, StorageError
from pamflow.storage.shards import (
    ShardInfo,
    footer_notes,
    read_shard_info,
    shard_done,
    write_shard,
)

PIECES_DIR = "pieces"


def piece_name(shard_index: int, start: int, stop: int) -> str:
    """``pieces/part-00000.000000000-000000020.parquet`` (relative to the dataset root)."""
    if shard_index < 0 or not 0 <= start < stop:
        raise StorageError(f"piece of shard {shard_index}, rows {start}..{stop}: bad indices")
    return f"{PIECES_DIR}/part-{shard_index:05d}.{start:09d}-{stop:09d}.parquet"


def piece_done(out: str, shard_index: int, start: int, stop: int) -> bool:
    fs, root = resolve(out)
    return bool(fs.exists(join(root, piece_name(shard_index, start, stop))))


def write_piece(
    out: str,
    shard_index: int,
    start: int,
    stop: int,
    rows: Iterable[Mapping[str, Any]],
    schema: Schema,
    **options: Any,
) -> ShardInfo:
    """Write the piece of shard ``shard_index`` holding rows ``start .. stop-1`` (the
    options of ``write_shard``); one already there, or a shard already complete, is left
    alone (``skipped``)."""
    name = piece_name(shard_index, start, stop)
    if shard_done(out, shard_index):
        return ShardInfo(shard_index, name, -1, "", 0, skipped=True)
    return write_shard(out, shard_index, rows, schema, name=name, if_exists="skip", **options)


def _shard_pieces(fs: Any, root: str, shard_index: int) -> list[str]:
    """Every piece file of shard ``shard_index``, of any cut."""
    d = join(root, PIECES_DIR)
    if not fs.exists(d):
        return []
    prefix = f"part-{shard_index:05d}."
    return [
        p for p in fs.ls(d, detail=False) if p.rstrip("/").rpartition("/")[2].startswith(prefix)
    ]


def join_pieces(
    out: str, shard_index: int, spans: list[tuple[int, int]], schema: Schema, **options: Any
) -> ShardInfo | None:
    """Shard ``shard_index`` from its pieces, the row ranges ``spans`` in order (see the
    module docstring); then every piece of the shard is removed, those of another cut
    included. None while a piece is missing. The shard's notes join the pieces'
    (``quarantine`` entries once per id)."""
    fs, root = resolve(out)
    if any(a >= b for a, b in spans) or any(
        b != a2 for (_, b), (a2, _) in zip(spans, spans[1:], strict=False)
    ):
        raise StorageError(f"shard {shard_index}: pieces {spans} do not tile a row range")
    paths = [join(root, piece_name(shard_index, a, b)) for a, b in spans]
    if shard_done(out, shard_index):
        for p in _shard_pieces(fs, root, shard_index):
            remove_quietly(fs, p)
        info = read_shard_info(out, shard_index)
        return ShardInfo(info.index, info.path, info.rows, info.sha256, info.bytes, skipped=True)
    if not all(fs.exists(p) for p in paths):
        return None
    notes: dict[str, Any] = {}
    for p in paths:
        for key, value in footer_notes(fs, p).items():
            if key == "quarantine":
                seen = {q["id"]: q for q in notes.get(key, [])}
                seen.update({q["id"]: q for q in value if q["id"] not in seen})
                notes[key] = [seen[i] for i in sorted(seen)]
            else:
                notes.setdefault(key, value)

    def rows() -> Iterator[dict[str, Any]]:
        for p in paths:
            with open_input(fs, p) as f:
                pf = pq.ParquetFile(f)
                if pf.schema_arrow.names != schema.names:
                    raise StorageError(f"{display(fs, p)}: columns differ from the dataset's")
                for batch in pf.iter_batches(batch_size=16):
                    yield from batch.to_pylist()

    info = write_shard(out, shard_index, rows(), schema, notes=lambda: notes, **options)
    for p in _shard_pieces(fs, root, shard_index):
        remove_quietly(fs, p)
    return info


def remove_empty_pieces_dir(out: str) -> None:
    """Remove ``pieces/`` once every piece is joined (nothing but temporary files of
    writers that are gone is left in it)."""
    fs, root = resolve(out)
    d = join(root, PIECES_DIR)
    if not fs.exists(d):
        return
    for p in fs.ls(d, detail=False):
        name = p.rstrip("/").rpartition("/")[2]
        if not (is_tmp_name(name) and abandoned_tmp(name)):
            return
        remove_quietly(fs, p)
    fs.rmdir(d)
