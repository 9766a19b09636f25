"""Files: every path goes through fsspec (local, ``memory://``, ``s3://``...); atomic writes
(:func:`atomic_open`), hashing, Arrow input files."""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import socket
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


#: ``.<name>.<host>-<pid>-<random>.tmp``: who wrote a temporary file, so that cleaning up
#: removes only files of writers that are gone
_TMP_RE = re.compile(r"^\.(?P<name>.+)\.(?P<host>[A-Za-z0-9_-]+)-(?P<pid>\d+)-[0-9a-f]+\.tmp$")


def host_tag() -> str:
    """This machine's name as temporary-file names carry it."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname())[:64] or "host"


def tmp_name(path: str) -> str:
    """``dir/.name.<host>-<pid>-<random>.tmp`` beside ``dir/name``: hidden, unique, clearly
    temporary, and naming its writer (see :func:`abandoned_tmp`)."""
    head, _, name = path.rpartition("/")
    return f"{head}/.{name}.{host_tag()}-{os.getpid()}-{secrets.token_hex(6)}.tmp"


def is_tmp_name(name: str) -> bool:
    """Whether a base name is a temporary file's (``.name....tmp``, see :func:`tmp_name`)."""
    return name.startswith(".") and name.endswith(".tmp")


def foreign_entries(fs: AbstractFileSystem, root: str) -> list[str]:
    """The base names in folder ``root`` besides temporary files (a folder holding only
    those counts as empty)."""
    names = [p.rstrip("/").rpartition("/")[2] for p in fs.ls(root, detail=False)]
    return [n for n in names if not is_tmp_name(n)]


def abandoned_tmp(name: str) -> bool:
    """Whether the temporary file ``name`` (a base name) belongs to a writer that is gone:
    one of this machine's processes that no longer runs. A file of a live process, of
    another machine (whose processes this one cannot see) or of an unknown writer is not
    abandoned: cleaning up never removes a temporary file that may still be written."""
    m = _TMP_RE.match(name)
    if m is None or m.group("host") != host_tag():
        return False
    pid = int(m.group("pid"))
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def create_exclusive(fs: AbstractFileSystem, path: str, data: bytes) -> bool:
    """Write ``data`` to ``path`` only if nothing is there; return whether this call did.

    On a local disk the claim is atomic (the complete file is hard-linked into place, which
    fails when the name exists), so of two processes racing exactly one wins, and readers
    never see a partial file. Other filesystems (object stores) have no exclusive create:
    there it is check-then-write, and two writers started in the same instant can both win.
    """
    if not isinstance(fs, LocalFileSystem):
        if fs.exists(path):
            return False
        atomic_write_bytes(fs, path, data)
        return True
    tmp = tmp_name(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        _fsync_dir(path)
        return True
    finally:
        remove_quietly(fs, tmp)


def _fsync_dir(path: str) -> None:
    """Make a rename or link in ``path``'s folder durable (local disks; best effort)."""
    try:
        fd = os.open(os.path.dirname(path) or ".", os.O_RDONLY)
    except OSError:  # pragma: no cover - a folder we cannot open: nothing to flush
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - filesystems without directory fsync
        pass
    finally:
        os.close(fd)


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
    left as it was. ``fsync`` flushes the data to disk before the rename and the folder
    after it (local files): once this returns, the file survives a power cut. With ``fs``,
    ``target`` is a path on that filesystem.

    The one atomic-write helper: shards, ``dataset.json``, manifests, checkpoints and
    metric logs all go through it (a build marker, which must also be exclusive, through
    :func:`create_exclusive`)."""
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
        if fsync and isinstance(fs, LocalFileSystem):
            _fsync_dir(path)
    except BaseException:
        remove_quietly(fs, tmp)
        raise


def atomic_write_bytes(
    fs: AbstractFileSystem, path: str, data: bytes, *, fsync: bool = False
) -> None:
    """Write ``data`` to ``path`` of ``fs`` through :func:`atomic_open`."""
    with atomic_open(path, "wb", fs=fs, fsync=fsync) as f:
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
