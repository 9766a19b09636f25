"""Files: every path goes through fsspec (local, ``memory://``, ``s3://``...); atomic writes
(:func:`atomic_open`), hashing, Arrow input files."""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
from fsspec import AbstractFileSystem
from fsspec.core import url_to_fs
from fsspec.implementations.local import LocalFileSystem

_CHUNK = 8 * 1024 * 1024


def resolve(url: str | Any) -> tuple[AbstractFileSystem, str]:
    """``(filesystem, path)`` for a URL or local path (``os.PathLike`` accepted)."""
    fs, path = url_to_fs(str(url))
    return fs, path.rstrip("/") or "/"


def join(root: str, *parts: str) -> str:
    return "/".join([root.rstrip("/"), *parts])


def display(fs: AbstractFileSystem, path: str) -> str:
    """A path as users should read it in messages (with its protocol unless local)."""
    return path if isinstance(fs, LocalFileSystem) else fs.unstrip_protocol(path)


def tmp_name(path: str) -> str:
    """``dir/.name.<random>.tmp`` beside ``dir/name``: hidden, unique, clearly temporary."""
    head, _, name = path.rpartition("/")
    return f"{head}/.{name}.{secrets.token_hex(6)}.tmp"


@contextmanager
def atomic_open(
    target: str | os.PathLike[str],
    mode: str = "wb",
    *,
    fsync: bool = False,
    fs: AbstractFileSystem | None = None,
) -> Iterator[Any]:
    """A file object for ``target`` (a local path or fsspec URL) that appears under its name
    only once complete: it is written to :func:`tmp_name`'s hidden temporary name beside
    ``target``, then renamed; on any error the temporary file is removed and ``target`` is
    left as it was. ``fsync`` flushes the data to disk before the rename (local files).
    With ``fs``, ``target`` is a path on that filesystem.

    The one atomic-write helper: shards, ``dataset.json``, build markers, manifests,
    checkpoints and metric logs all go through it."""
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open: mode must be 'wb' or 'w', got {mode!r}")
    if fs is None:
        fs, path = resolve(target)
    else:
        path = str(target)
    tmp = tmp_name(path)
    try:
        with fs.open(tmp, mode) as f:
            yield f
            if fsync and isinstance(fs, LocalFileSystem):
                f.flush()
                os.fsync(f.fileno())
        fs.mv(tmp, path)
    except BaseException:
        remove_quietly(fs, tmp)
        raise


def atomic_write_bytes(fs: AbstractFileSystem, path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` of ``fs`` through :func:`atomic_open`."""
    with atomic_open(path, "wb", fs=fs) as f:
        f.write(data)


def remove_quietly(fs: AbstractFileSystem, path: str) -> None:
    try:
        if fs.exists(path):
            fs.rm(path)
    except OSError:  # pragma: no cover - best effort on an error path
        pass


def sha256_file(fs: AbstractFileSystem, path: str) -> tuple[str, int]:
    """``(hex sha256, size in bytes)`` of a file, read in chunks."""
    h = hashlib.sha256()
    n = 0
    with fs.open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
            n += len(chunk)
    return h.hexdigest(), n


def open_input(fs: AbstractFileSystem, path: str) -> pa.NativeFile:
    """A random-access Arrow file: memory-mapped when local, fsspec-backed otherwise."""
    if isinstance(fs, LocalFileSystem):
        return pa.memory_map(path, "r")
    return pafs.PyFileSystem(pafs.FSSpecHandler(fs)).open_input_file(path)


class HashingWriter:
    """A write-only file object that hashes and counts what passes through it."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.hash = hashlib.sha256()
        self.size = 0
        self.closed = False

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        self.size += len(data)
        self.raw.write(data)
        return len(data)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self.raw.flush()

    def close(self) -> None:  # the caller closes ``raw``
        self.closed = True

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False
