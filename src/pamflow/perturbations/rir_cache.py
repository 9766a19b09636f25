"""The reverb families' per-process caches: small, bounded, least recently used first out.

A Dask worker applies the reverb families to many rows with few bank RIRs, so each bank RIR
is prepared (direct path aligned, unit gain) and analysed (its decay, the shape of its
late tail) once per recording and sample rate, not once per row; and a RIR built for one
set of params is kept for a while, because rows may share params (the contrastive recipe's
``acoustic`` pairs apply one chain to two clips). Both caches hold exactly what the
uncached code computes, so rows do not change.

:func:`recording_key` says which recording a loaded array is: ``Sources.load`` hands out
read-only arrays (which must not be modified) that stay the same object while cached, so
the array itself identifies them (checked through a weak reference, so a recycled ``id``
never matches); a writeable array is identified by a digest of its bytes, dtype and shape.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

import numpy as np

V = TypeVar("V")

#: bounds of the cache of prepared bank RIRs (one entry per recording and sample rate)
BANK_ENTRIES = 64
BANK_BYTES = 64 << 20
#: bounds of the cache of built RIRs (one entry per recording, sample rate and params)
BUILT_ENTRIES = 16
BUILT_BYTES = 64 << 20


class LRU(Generic[V]):
    """A thread-safe mapping bounded in entries and in bytes; the least recently used
    entries go first. Values are computed outside the lock (two threads may both compute
    a missing value; the result is the same)."""

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self.max_entries, self.max_bytes = int(max_entries), int(max_bytes)
        self._items: OrderedDict[Hashable, tuple[V, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: Hashable) -> V | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return item[0]

    def put(self, key: Hashable, value: V, nbytes: int) -> V:
        """Keep ``value`` (``nbytes`` large) under ``key``, unless it alone is over the byte
        bound; evict the oldest entries beyond the bounds. Returns ``value``."""
        if nbytes > self.max_bytes:
            return value
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            self._items[key] = (value, nbytes)
            self._bytes += nbytes
            while len(self._items) > self.max_entries or self._bytes > self.max_bytes:
                _, (_, size) = self._items.popitem(last=False)
                self._bytes -= size
        return value

    def get_or_make(self, key: Hashable, make: Callable[[], V], nbytes: Callable[[V], int]) -> V:
        found = self.get(key)
        if found is not None:
            return found
        value = make()
        return self.put(key, value, nbytes(value))

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0
            self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def nbytes(self) -> int:
        return self._bytes


_serial = itertools.count()


class Recording:
    """A cache key for a loaded recording (see the module docstring): equal keys mean the
    same samples. ``serial`` is unique to this key object; what is derived from the
    recording is keyed by it, so nothing outlives a recording's entry."""

    __slots__ = ("key", "ref", "serial")

    def __init__(self, key: Hashable, ref: Callable[[], Any] | None) -> None:
        self.key, self.ref, self.serial = key, ref, next(_serial)


_recordings: dict[Hashable, Recording] = {}
_recordings_lock = threading.Lock()


def recording_key(raw: np.ndarray) -> Recording:
    """The :class:`Recording` key of the loaded samples ``raw``."""
    if not raw.flags.writeable:
        key: Hashable = ("array", id(raw))
        with _recordings_lock:
            rec = _recordings.get(key)
            if rec is not None and rec.ref is not None and rec.ref() is raw:
                return rec
            # a new array, or a recycled id: forget the entries of the dead one
            for k in [k for k, r in _recordings.items() if r.ref is not None and r.ref() is None]:
                del _recordings[k]
            rec = _recordings[key] = Recording(key, weakref.ref(raw))
            return rec
    digest = hashlib.sha1(np.ascontiguousarray(raw).data, usedforsecurity=False).hexdigest()
    key = ("bytes", digest, raw.dtype.str, raw.shape)
    with _recordings_lock:
        rec = _recordings.get(key)
        if rec is None:
            if len(_recordings) > 4 * BANK_ENTRIES:  # digests of arrays no longer around
                for k in [k for k, r in _recordings.items() if r.ref is None]:
                    del _recordings[k]
            rec = _recordings[key] = Recording(key, None)
        return rec


def clear() -> None:
    """Empty every cache of this module (tests, or to free memory)."""
    BANKS.clear()
    BUILT.clear()
    SPECTRA.clear()
    with _recordings_lock:
        _recordings.clear()


def array_bytes(value: Any) -> int:
    """Bytes held by the arrays among ``value``'s attributes (or ``value`` itself)."""
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    fields = getattr(value, "__dict__", None) or {
        s: getattr(value, s) for s in getattr(value, "__slots__", ())
    }
    return sum(int(v.nbytes) for v in fields.values() if isinstance(v, np.ndarray)) + 256


#: prepared bank RIRs: (recording serial, sample rate) -> reverb's _Bank
BANKS: LRU[Any] = LRU(BANK_ENTRIES, BANK_BYTES)
#: built RIRs: (recording serial, sample rate, params) -> read-only float64 RIR
BUILT: LRU[np.ndarray] = LRU(BUILT_ENTRIES, BUILT_BYTES)
#: float32 spectra of a bank RIR's direct window and tail (reverb_drr's float32 engine):
#: (recording serial, sample rate, clip length) -> (direct, tail)
SPECTRA: LRU[tuple[np.ndarray, np.ndarray]] = LRU(BANK_ENTRIES, BANK_BYTES)
