"""Recordings that perturbations and recipes draw from: speech, noise, RIRs, music.

A :class:`Sources` wraps a corpus manifest (the table ``pamflow index`` writes). Each row
has a stable ``id`` (the file's path relative to the corpus root), a ``kind`` (speech,
noise, rir, music, instrument) and, where known, a ``label`` (noise type, speaker,
instrument) and measured ``rt60_s`` / ``drr_db`` for RIRs. Params of corpus-based
perturbations record the ``id`` they used, so an example replays from (params, sources).

``Sources.demo()`` (or ``default_sources()``) is the embedded demo corpus, made on first
use in the user's cache folder (``$PAMFLOW_CACHE`` or ``~/.cache/pamflow``) and reused
afterwards (:mod:`pamflow.corpus.demo`). Nothing uses it behind the caller's back:
perturbation families that need recordings refuse to run without sources.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import fsspec
import numpy as np

from pamflow.audio import AudioError, load
from pamflow.corpus.demo import ensure_demo_corpus
from pamflow.corpus.index import MANIFEST_NAME
from pamflow.corpus.probe import MIN_DURATION_S, SILENCE_PEAK_DB

#: the columns a manifest must have for sources to be drawn from it
MANIFEST_COLUMNS = frozenset({"id", "path", "kind", "duration_s"})


class SourcesError(ValueError):
    """Sources that cannot serve a request: an unknown id, no recording of a kind."""


class BadSource(SourcesError):
    """A recording that cannot be used as indexed: unreadable, changed since indexing
    (sha256, or length where the manifest has no sha256), too short or silent.

    ``source_id`` names it and ``reason`` says why in one line (``unreadable:``,
    ``changed:``, ``too short:``, ``silent:``); a build quarantines it and draws the rows
    that met it again from the other recordings."""

    def __init__(self, source_id: str, path: str, reason: str) -> None:
        super().__init__(f"{source_id} ({path}): {reason}")
        self.source_id, self.path, self.reason = source_id, path, reason


class Sources:
    """Recordings listed in a manifest, loaded on demand and kept in a small LRU cache."""

    def __init__(
        self, rows: Iterable[Mapping[str, Any]], *, root: str | None = None, cache_size: int = 256
    ) -> None:
        self._rows: dict[str, dict[str, Any]] = {}
        for r in rows:
            row = dict(r)
            if "id" not in row or "path" not in row:
                raise SourcesError(f"manifest row without id/path: {row!r}")
            self._rows[str(row["id"])] = row
        self.root = root
        self._cache: OrderedDict[tuple[str, int], np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self._bad: dict[str, BadSource] = {}  # found unusable on load: fail fast next time
        self._ids: dict[tuple[str | None, str | None], list[str]] = {}  # ids() by query

    @classmethod
    def from_manifest(cls, manifest: str | os.PathLike[str]) -> Sources:
        """Sources from a manifest Parquet file written by ``pamflow index``."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(str(manifest))
        except (OSError, pa.ArrowException) as e:
            raise SourcesError(f"{manifest}: not a readable manifest (Parquet): {e}") from None
        missing = sorted(MANIFEST_COLUMNS - set(table.column_names))
        if missing:
            raise SourcesError(
                f"{manifest}: manifest lacks column(s) {missing} (has {table.column_names}); "
                "`pamflow index` writes manifests"
            )
        root = str(Path(manifest).resolve().parent)
        rows = table.to_pylist()
        for r in rows:  # relative paths are relative to the manifest's folder
            p = str(r["path"])
            if "://" not in p and not os.path.isabs(p):
                r["path"] = os.path.join(root, p)
        return cls(rows, root=root)

    @classmethod
    def from_tables(cls, *manifests: str | os.PathLike[str]) -> Sources:
        rows: list[dict[str, Any]] = []
        for m in manifests:
            rows.extend(cls.from_manifest(m)._rows.values())
        return cls(rows)

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, source_id: object) -> bool:
        return source_id in self._rows

    def __getstate__(self) -> dict[str, Any]:
        # ship the manifest, not the cache or the lock (Dask pickles Sources to workers)
        return {
            "rows": list(self._rows.values()),
            "root": self.root,
            "cache_size": self._cache_size,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        Sources.__init__(self, state["rows"], root=state["root"], cache_size=state["cache_size"])

    def ids(self, kind: str | None = None, label: str | None = None) -> list[str]:
        """Sorted ids of the recordings of ``kind`` (and ``label``, if given)."""
        found = self._ids.get((kind, label))
        if found is None:  # the rows never change: each query is answered once
            found = self._ids[(kind, label)] = sorted(
                i
                for i, r in self._rows.items()
                if (kind is None or r.get("kind") == kind)
                and (label is None or r.get("label") == label)
            )
        return list(found)

    def labels(self, kind: str) -> list[str]:
        return sorted(
            {
                str(r["label"])
                for r in self._rows.values()
                if r.get("kind") == kind and r.get("label") is not None
            }
        )

    def entry(self, source_id: str) -> dict[str, Any]:
        try:
            return self._rows[source_id]
        except KeyError:
            raise SourcesError(f"unknown source id {source_id!r}") from None

    def rows(self, kind: str | None = None) -> list[dict[str, Any]]:
        return [self._rows[i] for i in self.ids(kind)]

    def choose(self, rng: np.random.Generator, kind: str, label: str | None = None) -> str:
        """Draw one id of ``kind`` (and ``label``) with ``rng``."""
        ids = self.ids(kind, label)
        if not ids:
            what = f"{kind} recordings" + (f" labelled {label!r}" if label else "")
            raise SourcesError(f"the sources hold no {what}")
        return ids[int(rng.integers(len(ids)))]

    def load(self, source_id: str, sample_rate: int) -> np.ndarray:
        """Mono float32 audio of ``source_id`` at ``sample_rate`` (cached; do not modify).

        The first load checks the recording against its manifest entry: the file's sha256
        (where the manifest has one, else its decoded length against ``duration_s``), and
        that it decodes, lasts at least :data:`~pamflow.corpus.index.MIN_DURATION_S` and is
        not silent. An unusable recording raises :class:`BadSource` (then and on every later
        load, without reading it again)."""
        key = (source_id, int(sample_rate))
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
            if source_id in self._bad:
                raise self._bad[source_id]
        entry = self.entry(source_id)
        try:
            audio = self._read_checked(source_id, entry, sample_rate)
        except BadSource as e:
            with self._lock:
                self._bad[source_id] = e
            raise
        audio.setflags(write=False)
        with self._lock:
            self._cache[key] = audio
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return audio

    @staticmethod
    def _read_checked(source_id: str, entry: Mapping[str, Any], sample_rate: int) -> np.ndarray:
        path = str(entry["path"])
        name = f"{source_id} ({path})"

        def bad(reason: str) -> BadSource:
            return BadSource(source_id, path, reason)

        try:
            with fsspec.open(path, "rb") as fh:
                raw = fh.read()
        except OSError as e:
            raise bad(f"unreadable: {e}") from e
        expected = entry.get("sha256")
        if expected and hashlib.sha256(raw).hexdigest() != expected:
            raise bad(
                f"changed: {len(raw)} bytes whose sha256 differs from the manifest's "
                "(changed since it was indexed; index the corpus again)"
            )
        try:
            audio, _ = load(raw, sample_rate, name=name)
        except (AudioError, ValueError, RuntimeError) as e:
            raise bad(f"unreadable: {str(e).removeprefix(name + ': ')}") from e
        seconds = audio.size / sample_rate
        if seconds < MIN_DURATION_S:
            raise bad(f"too short: {1000 * seconds:.2f} ms < {1000 * MIN_DURATION_S:g} ms")
        peak = float(np.max(np.abs(audio)))
        if peak < 10.0 ** (SILENCE_PEAK_DB / 20.0):
            raise bad(f"silent: peak below {SILENCE_PEAK_DB:g} dBFS")
        indexed = entry.get("duration_s")
        if not expected and indexed and abs(seconds - float(indexed)) > 0.01 + 0.01 * indexed:
            raise bad(f"changed: lasts {seconds:.3f} s, the manifest says {float(indexed):.3f} s")
        return audio

    @property
    def bad(self) -> list[dict[str, str]]:
        """``{id, path, reason}`` of the recordings found unusable on load so far."""
        with self._lock:
            found = sorted(self._bad.items())
        return [{"id": i, "path": e.path, "reason": e.reason} for i, e in found]

    def without(self, ids: Iterable[str]) -> Sources:
        """These sources less the recordings ``ids`` (quarantined ones, say); the loaded
        audio and what is known to be unusable are shared, not read again."""
        drop = set(ids)
        other = Sources(
            [r for i, r in self._rows.items() if i not in drop],
            root=self.root,
            cache_size=self._cache_size,
        )
        other._cache, other._lock, other._bad = self._cache, self._lock, self._bad
        return other

    def check_files(self) -> list[dict[str, str]]:
        """``{id, path, reason}`` of every recording whose file is missing or whose size is
        not the manifest's ``size_bytes`` (a quick look: one ``stat`` each; the content is
        checked against the manifest's sha256 when a recording is loaded)."""
        bad = []
        for sid, r in sorted(self._rows.items()):
            path = str(r["path"])
            try:
                fs, p = fsspec.core.url_to_fs(path)
                size = fs.size(p)
            except (OSError, ValueError) as e:
                bad.append({"id": sid, "path": path, "reason": f"missing: {e}"})
                continue
            expected = r.get("size_bytes")
            if expected is not None and size != expected:
                bad.append(
                    {
                        "id": sid,
                        "path": path,
                        "reason": f"changed: {size} bytes, the manifest says {expected}",
                    }
                )
        return bad

    def duration_s(self, source_id: str) -> float:
        """Duration of a recording (s): the manifest's ``duration_s`` or, without it,
        measured (the recording is then loaded and cached at 16 kHz)."""
        value = self.entry(source_id).get("duration_s")
        if value is not None and np.isfinite(value) and value > 0:
            return float(value)
        ref_rate = 16000
        return self.load(source_id, ref_rate).size / ref_rate

    @classmethod
    def demo(cls) -> Sources:
        """The embedded demo corpus (:func:`default_sources`), made on first use."""
        return default_sources()


_default: Sources | None = None
_default_lock = threading.Lock()


def default_sources() -> Sources:
    """The embedded demo corpus as :class:`Sources` (made on first use, then shared)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Sources.from_manifest(ensure_demo_corpus() / MANIFEST_NAME)
        return _default
