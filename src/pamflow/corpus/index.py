"""Index audio folders into a manifest and quarantine bad files.

:func:`index_corpus` walks a local folder or any fsspec URL, in sorted order, and reads
every file whose extension is in :data:`pamflow.audio.AUDIO_EXTENSIONS`. A good file
becomes a manifest row (columns of :data:`MANIFEST_SCHEMA`); a bad one goes to the
quarantine table (``id, path, reason``) with a one-line reason that starts with its class:

==================  ==========================================================
``empty:``          0 bytes, or a valid header with 0 audio frames
``unreadable:``     not an audio file any decoder accepts (or no decoder); not a
                    regular file (a FIFO, a device: never read); a link out of the
                    indexed folder
``name:``           a file name that is not valid UTF-8 (shown with U+FFFD)
``corrupt:``        the header parses but the audio data cannot be decoded
``truncated:``      the header promises more audio than the file holds
``non-finite:``     NaN or inf samples (float formats)
``bad sample rate:`` below :data:`MIN_SAMPLE_RATE` or above :data:`MAX_SAMPLE_RATE` Hz
``too short:``      shorter than :data:`MIN_DURATION_S` seconds
``silent:``         peak below :data:`SILENCE_PEAK_DB` dBFS (about 1 LSB of 16-bit)
``error:``          anything unexpected (the exception's type and text)
==================  ==========================================================

One bad file never stops the index. :func:`write_index` writes the manifest as Parquet
and the quarantine table beside it as ``<stem>.quarantine.parquet`` (always, possibly
empty), each atomically. The demo corpus (:mod:`pamflow.corpus.demo`) is indexed with the
same code.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import stat
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from pamflow.audio import AUDIO_EXTENSIONS
from pamflow.corpus.probe import (  # noqa: F401 (the limits are part of the index's API)
    MAX_SAMPLE_RATE,
    MIN_DURATION_S,
    MIN_SAMPLE_RATE,
    SILENCE_PEAK_DB,
    STREAM_BYTES,
    BadAudioFile,
    inspect_audio,
    inspect_audio_file,
)
from pamflow.storage.files import atomic_open

MANIFEST_NAME = "manifest.parquet"
QUARANTINE_SUFFIX = ".quarantine.parquet"
#: columns filled only from the ``metadata`` argument of :func:`index_corpus`
EXTRA_COLUMNS = ("label", "text", "rt60_s", "drr_db")

MANIFEST_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("path", pa.string()),
        ("kind", pa.string()),
        ("duration_s", pa.float64()),
        ("sample_rate", pa.int32()),
        ("channels", pa.int32()),
        ("num_frames", pa.int64()),
        ("loudness_lufs", pa.float64()),
        ("peak_db", pa.float64()),
        ("sha256", pa.string()),
        ("size_bytes", pa.int64()),
        ("label", pa.string()),
        ("text", pa.string()),
        ("rt60_s", pa.float64()),
        ("drr_db", pa.float64()),
    ]
)
QUARANTINE_SCHEMA = pa.schema([("id", pa.string()), ("path", pa.string()), ("reason", pa.string())])


@dataclass
class IndexResult:
    """What :func:`index_corpus` found: manifest rows and quarantined files, sorted by id."""

    manifest: list[dict[str, Any]] = field(default_factory=list)
    quarantine: list[dict[str, str]] = field(default_factory=list)

    @property
    def n_indexed(self) -> int:
        return len(self.manifest)

    @property
    def n_quarantined(self) -> int:
        return len(self.quarantine)

    @property
    def n_files(self) -> int:
        return self.n_indexed + self.n_quarantined

    def manifest_table(self) -> pa.Table:
        return pa.Table.from_pylist(self.manifest, schema=MANIFEST_SCHEMA)

    def quarantine_table(self) -> pa.Table:
        return pa.Table.from_pylist(self.quarantine, schema=QUARANTINE_SCHEMA)


def _one_line(text: str, limit: int = 300) -> str:
    """One line, at most ``limit`` characters, without memory addresses (ffmpeg prints
    ``[ctx @ 0x55d5...]``), so a rebuild writes the same quarantine table."""
    text = re.sub(r"\[[^\]]*@ 0x[0-9a-fA-F]+\]\s*", "", " ".join(str(text).split()))
    text = re.sub(r"0x[0-9a-fA-F]{8,}", "0x?", text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_local(fs: fsspec.AbstractFileSystem) -> bool:
    protocol = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    return "file" in protocol or "local" in protocol


def _check_metadata(metadata: Mapping[str, Mapping[str, Any]], ids: set[str]) -> None:
    for fid, extra in metadata.items():
        unknown = set(extra) - set(EXTRA_COLUMNS)
        if unknown:
            raise ValueError(
                f"metadata for {fid!r}: unknown column(s) {sorted(unknown)}; "
                f"allowed: {', '.join(EXTRA_COLUMNS)}"
            )
    missing = sorted(set(metadata) - ids)
    if missing:
        raise ValueError(
            f"metadata names {len(missing)} id(s) not among the audio files "
            f"found, e.g. {missing[:3]}"
        )


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a name the OS handed over with undecodable bytes
        return False
    return True


def _printable(text: str) -> str:
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _local_problem(path: str, real_root: str) -> str | None:
    """Why a local file must not be read, or None: only regular files inside the folder
    (a FIFO would block the read forever, a device never end; a link may point anywhere)."""
    try:
        st = os.stat(path)  # follows links: what would be read
    except OSError as e:
        return f"unreadable: {e.strerror}"
    if not stat.S_ISREG(st.st_mode):
        what = "a FIFO" if stat.S_ISFIFO(st.st_mode) else "a device or socket"
        return f"unreadable: not a regular file ({what})"
    real = os.path.realpath(path)
    if os.path.commonpath([real_root, real]) != real_root:
        return f"unreadable: a link out of the indexed folder (to {real})"
    return None


def index_corpus(
    src: str,
    kind: str | None = None,
    *,
    workers: int = 1,
    metadata: Mapping[str, Mapping[str, Any]] | None = None,
    relative_paths: bool = False,
    stream_bytes: int | None = STREAM_BYTES,
) -> IndexResult:
    """Index every audio file under ``src`` (a folder or fsspec URL), sorted by id.

    ``id`` is the path relative to ``src`` with ``/`` separators; ``path`` the absolute
    local path or the full URL (with ``relative_paths``, the id itself: for a manifest
    written at ``src``'s root, which :class:`pamflow.corpus.sources.Sources` resolves against the
    manifest's folder). ``kind`` is the given kind, else the file's top folder (null for
    files at the root). ``metadata`` maps ids to values of :data:`EXTRA_COLUMNS`.
    ``workers > 1`` reads files on a thread pool; rows come out in the same order.
    Each file is read whole into memory once (hash and decode share the bytes), except
    local files above ``stream_bytes`` that libsndfile reads (WAV, FLAC, AIFF, OGG...):
    those are hashed and decoded in blocks (:func:`inspect_audio_file`), in bounded
    memory, with the same checks and measurements.
    """
    fs, root = fsspec.core.url_to_fs(str(src))
    root = root.rstrip("/") or "/"
    if not fs.isdir(root):
        raise FileNotFoundError(f"index_corpus: {src!r} is not a folder")
    local = _is_local(fs)
    files = []
    for p in fs.find(root):
        ext = posixpath.splitext(p)[1].lower()
        if ext in AUDIO_EXTENSIONS:
            files.append((posixpath.relpath(p, root), p, ext))
    files.sort()
    metadata = metadata or {}
    _check_metadata(metadata, {f[0] for f in files})

    real_root = os.path.realpath(root) if local else root

    def one(item: tuple[str, str, str]) -> tuple[bool, dict[str, Any]]:
        fid, p, ext = item
        path = fid if relative_paths else (p if local else fs.unstrip_protocol(p))
        if not _utf8(fid):  # Parquet holds UTF-8 only: record the name, readably, and go on
            shown = _printable(fid)
            return False, {
                "id": shown,
                "path": _printable(path),
                "reason": "name: not valid UTF-8 (rename the file)",
            }
        if local:
            problem = _local_problem(p, real_root)
            if problem:
                return False, {"id": fid, "path": path, "reason": problem}
        try:
            streamed = None
            if local and stream_bytes is not None and os.path.getsize(p) > stream_bytes:
                try:  # big: decoded in blocks, never read whole
                    streamed = inspect_audio_file(p, fid, ext)
                except LookupError:
                    pass  # not for libsndfile: read whole, for ffmpeg
            if streamed is not None:
                info, digest, size = streamed
            else:
                try:
                    raw = fs.cat_file(p)
                except Exception as e:
                    raise BadAudioFile(
                        f"unreadable: cannot read the file ({type(e).__name__}: {e})"
                    ) from e
                info = inspect_audio(raw, fid, ext)
                digest, size = hashlib.sha256(raw).hexdigest(), len(raw)
        except BadAudioFile as e:
            return False, {"id": fid, "path": path, "reason": _one_line(str(e))}
        except Exception as e:
            return False, {
                "id": fid,
                "path": path,
                "reason": _one_line(f"error: {type(e).__name__}: {e}"),
            }
        top = fid.split("/", 1)[0] if "/" in fid else None
        row = {
            "id": fid,
            "path": path,
            "kind": kind if kind is not None else top,
            **info,
            "sha256": digest,
            "size_bytes": size,
        }
        extra = metadata.get(fid, {})
        for col in EXTRA_COLUMNS:
            value = extra.get(col)
            row[col] = (
                None
                if value is None
                else (str(value) if col in ("label", "text") else float(value))
            )
        return True, row

    if workers > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(one, files))
    else:
        results = [one(f) for f in files]
    out = IndexResult()
    for good, row in results:
        (out.manifest if good else out.quarantine).append(row)
    return out


def quarantine_path(out_manifest: str) -> str:
    """``<stem>.quarantine.parquet`` beside the manifest."""
    base = str(out_manifest)
    stem = base[: -len(".parquet")] if base.endswith(".parquet") else base
    return stem + QUARANTINE_SUFFIX


def _write_atomic(table: pa.Table, target: str) -> None:
    fs, path = fsspec.core.url_to_fs(target)
    parent = posixpath.dirname(path)
    if parent:
        fs.makedirs(parent, exist_ok=True)
    with atomic_open(path, "wb", fs=fs) as fh:
        pq.write_table(table, fh)


def write_index(result: IndexResult, out_manifest: str) -> tuple[str, str]:
    """Write the manifest to ``out_manifest`` and the quarantine table beside it (first,
    so a manifest that exists always has its quarantine). Returns both paths."""
    out_manifest = str(out_manifest)
    qpath = quarantine_path(out_manifest)
    _write_atomic(result.quarantine_table(), qpath)
    _write_atomic(result.manifest_table(), out_manifest)
    return out_manifest, qpath
