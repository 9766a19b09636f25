"""A batch sampler whose batches never hold two rows that share a key.

Contrastive losses (NT-Xent) take every other row of a batch as a negative; two rows cut
from the same recording would then be false negatives. Give each row a set of keys (the
recordings it was cut from, say) and :class:`DisjointBatchSampler` yields batches of row
indices in which no key appears twice::

    sampler = DisjointBatchSampler.from_dataset(
        path, key_columns=["anchor_source_id", "positive_source_id"], batch_size=16, seed=0)
    loader = DataLoader(ShardMapDataset(path), batch_sampler=sampler)
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        for batch in loader: ...

Packing, per epoch: the rows are shuffled by a generator seeded with ``(seed, epoch)``;
each batch is filled first from the rows deferred so far (oldest first), then from the
shuffled rows in order; a row whose keys clash with the batch is deferred to a later
batch. Every row is used exactly once per epoch and the order is reproducible from
``(seed, epoch)``. When clashes cannot be avoided (a key held by more rows than there are
batches, or too few distinct keys to fill a batch), the deferred rows end up in extra
batches at the end, shorter than ``batch_size`` but still disjoint: rows are never put
together against the rule, and the packing ends because every batch takes at least one
row (the oldest deferred row always fits an empty batch). ``drop_last=True`` leaves out
every batch shorter than ``batch_size`` (the last one and any such extra batch).

Rows without keys clash with nothing. Keys are compared as strings across columns: a
recording that is one row's anchor and another row's positive is the same key.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
from torch.utils.data import Sampler

from pamflow.storage.dataset import Dataset
from pamflow.storage.schema import StorageError

#: deferred rows looked at per batch, in units of batch_size: bounds the cost of a batch
#: when most deferred rows clash (a dominant key); the rest wait for a later batch
_SCAN_FACTOR = 64


class DisjointBatchSampler(Sampler[list[int]]):
    """Batches of row indices, no two rows of a batch sharing a key (see the module doc).

    ``keys_per_row[i]`` holds the keys of row ``i`` (any iterable of strings; ``None`` or
    empty for none). ``len(sampler)`` is the number of batches of the current epoch.
    """

    def __init__(
        self,
        keys_per_row: Sequence[Iterable[str] | None],
        batch_size: int,
        seed: int = 0,
        drop_last: bool = False,
        epoch: int = 0,
    ) -> None:
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        if int(seed) != seed or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
        self.keys = [frozenset(str(k) for k in (keys or ())) for keys in keys_per_row]
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.epoch = 0
        self._cache: tuple[int, list[list[int]]] | None = None
        self.set_epoch(epoch)

    @classmethod
    def from_dataset(
        cls,
        path: str,
        key_columns: Sequence[str],
        batch_size: int,
        seed: int = 0,
        drop_last: bool = False,
        epoch: int = 0,
    ) -> DisjointBatchSampler:
        """A sampler over the rows of the dataset at ``path`` (shard order, as
        ``ShardMapDataset`` indexes them), keyed by the values of ``key_columns`` (string,
        int or list columns; nulls are no key). Reads only those metadata columns."""
        if not key_columns:
            raise StorageError(f"{path}: key_columns must name at least one column")
        ds = Dataset.open(path)
        audio = [c for c in key_columns if c in ds.audio_columns]
        if audio:
            raise StorageError(
                f"{path}: key_columns {audio} are audio columns; use metadata columns"
            )
        table = ds.to_table(columns=list(key_columns))  # raises naming an unknown column
        columns = [table.column(c).to_pylist() for c in key_columns]
        keys = []
        for values in zip(*columns, strict=True):
            row: set[str] = set()
            for v in values:
                row.update(_as_keys(v))
            keys.append(row)
        return cls(keys, batch_size, seed=seed, drop_last=drop_last, epoch=epoch)

    def set_epoch(self, epoch: int) -> None:
        """Use the order of ``epoch`` from now on (call it before each epoch)."""
        if int(epoch) != epoch or epoch < 0:
            raise ValueError(f"epoch must be an integer >= 0, got {epoch!r}")
        self.epoch = int(epoch)

    def batches(self, epoch: int | None = None) -> list[list[int]]:
        """The batches of ``epoch`` (the current one by default), as yielded."""
        e = self.epoch if epoch is None else int(epoch)
        if self._cache is not None and self._cache[0] == e:
            return self._cache[1]
        out = self._pack(np.random.default_rng([self.seed, e]).permutation(len(self.keys)))
        if self.drop_last:
            out = [b for b in out if len(b) == self.batch_size]
        self._cache = (e, out)
        return out

    def _pack(self, order: np.ndarray) -> list[list[int]]:
        keys, size = self.keys, self.batch_size
        scan = _SCAN_FACTOR * size
        stream: Iterator[int] = iter(order.tolist())
        deferred: list[int] = []
        exhausted = False
        out: list[list[int]] = []
        while deferred or not exhausted:
            batch: list[int] = []
            used: set[str] = set()
            kept: list[int] = []
            for j, r in enumerate(deferred):
                if len(batch) == size or j >= scan:
                    kept.extend(deferred[j:])
                    break
                if used.isdisjoint(keys[r]):
                    batch.append(r)
                    used.update(keys[r])
                else:
                    kept.append(r)
            deferred = kept
            while len(batch) < size and not exhausted:
                nxt = next(stream, None)
                if nxt is None:
                    exhausted = True
                elif used.isdisjoint(keys[nxt]):
                    batch.append(nxt)
                    used.update(keys[nxt])
                else:
                    deferred.append(nxt)
            if batch:
                out.append(batch)
        return out

    def __iter__(self) -> Iterator[list[int]]:
        yield from (list(b) for b in self.batches())

    def __len__(self) -> int:
        return len(self.batches())


def _as_keys(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list | tuple | set | frozenset):
        return [str(v) for v in value if v is not None]
    return [str(value)]
