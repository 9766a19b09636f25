"""PyTorch datasets over a finished pamflow dataset, and a padding/cropping collate.

- :class:`ShardMapDataset`: map-style, random access by global row index. It keeps an
  index of Parquet row groups (pamflow writes small ones: at most 64 rows and about
  1 MiB of audio), reads the row group that holds a row and caches the last few, so
  sequential access reads each group once and random access one small group per row.
- :class:`ShardIterableDataset`: streams shards, split across distributed ranks and
  DataLoader workers without duplicates or gaps, shuffled by ``seed`` and the epoch.

Each item is a dict: decoded audio columns as float32 tensors of shape ``[T]`` (mono,
at the dataset's ``sample_rate``), other columns as Python values (json columns as their
JSON text unless ``decode_json=True``).
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import torch
from torch.utils.data import Dataset as TorchDataset
from torch.utils.data import IterableDataset, get_worker_info

from pamflow.storage.dataset import Dataset
from pamflow.storage.schema import StorageError

Segment = tuple[int, int, int]  # (shard, first row, end row) within the shard


class _Reader:
    """What both datasets share: the dataset opened lazily once per process, column
    selection and row conversion."""

    def _setup(
        self,
        path: str,
        columns: Sequence[str] | None,
        audio_columns: Sequence[str] | None,
        decode_json: bool,
        verify: bool = True,
    ) -> Dataset:
        self.path = str(path)
        self.verify = verify
        ds = Dataset.open(self.path, verify=verify)
        self.columns = ds._columns(columns)
        present = [c for c in ds.audio_columns if c in self.columns]
        if audio_columns is None:
            self.audio_columns = present
        else:
            bad = [c for c in audio_columns if c not in present]
            if bad:
                raise StorageError(
                    f"{self.path}: audio_columns {bad} are not selected audio "
                    f"columns; selected audio columns are {present}"
                )
            self.audio_columns = list(audio_columns)
        self.decode_json = decode_json
        self._json = [c for c in ds.schema.json_columns if c in self.columns]
        self._ds: Dataset | None = ds
        self._pid = os.getpid()
        return ds

    def _dataset(self) -> Dataset:
        # reopen in a new process (DataLoader workers): file handles are not shared safely
        if self._ds is None or self._pid != os.getpid():
            self._ds = Dataset.open(self.path, verify=self.verify)
            self._pid = os.getpid()
        return self._ds

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_ds"] = None
        state.pop("_cache", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._cache: OrderedDict[int, pa.Table] = OrderedDict()

    def _convert(self, row: dict[str, Any]) -> dict[str, Any]:
        ds = self._dataset()
        for c in self.audio_columns:
            if row[c] is not None:
                x, _ = ds.decode_audio(row[c])
                row[c] = torch.from_numpy(x)
        if self.decode_json:
            for c in self._json:
                if row[c] is not None:
                    row[c] = json.loads(row[c])
        return row


class ShardMapDataset(_Reader, TorchDataset):
    """Map-style dataset: ``ds[i]`` is global row ``i`` (shard order), decoded.

    ``columns`` selects the columns read (all by default); ``audio_columns`` which of the
    selected audio columns are decoded to tensors (all by default; the others stay
    ``{bytes, path}`` dicts). ``cache_row_groups`` row groups stay in memory per process.
    ``verify`` (default on): each process checks a shard's sha256 against ``dataset.json``
    the first time it opens it (see :meth:`pamflow.storage.Dataset.open`).
    """

    def __init__(
        self,
        path: str,
        columns: Sequence[str] | None = None,
        audio_columns: Sequence[str] | None = None,
        *,
        decode_json: bool = False,
        cache_row_groups: int = 2,
        verify: bool = True,
    ) -> None:
        ds = self._setup(path, columns, audio_columns, decode_json, verify)
        self.cache_row_groups = max(1, int(cache_row_groups))
        self._cache: OrderedDict[int, pa.Table] = OrderedDict()
        starts, keys, offset = [], [], 0
        for s, shard in enumerate(ds.shards):
            md = ds.shard_file(s).metadata
            if md.num_rows != shard.rows:
                raise StorageError(
                    f"{ds.shard_path(s)}: {md.num_rows} rows in the file, "
                    f"{shard.rows} in dataset.json"
                )
            for g in range(md.num_row_groups):
                starts.append(offset)
                keys.append((s, g))
                offset += md.row_group(g).num_rows
        self._starts = np.asarray(starts, dtype=np.int64)
        self._keys = keys
        self._len = offset

    def __len__(self) -> int:
        return self._len

    def _group(self, k: int) -> pa.Table:
        table = self._cache.get(k)
        if table is None:
            s, g = self._keys[k]
            table = (
                self._dataset()
                .shard_file(s)
                .read_row_group(g, columns=self.columns, use_threads=False)
            )
            self._cache[k] = table
            while len(self._cache) > self.cache_row_groups:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(k)
        return table

    def __getitem__(self, i: int) -> dict[str, Any]:
        i = int(i)
        if not -self._len <= i < self._len:
            raise IndexError(f"row {i} out of range for {self._len} rows in {self.path}")
        i %= self._len
        k = int(np.searchsorted(self._starts, i, side="right")) - 1
        row = self._group(k).slice(i - int(self._starts[k]), 1).to_pylist()[0]
        return self._convert(row)


def partition(
    shard_rows: Sequence[int],
    order: Sequence[int],
    rank: int,
    world_size: int,
    worker: int,
    num_workers: int,
    mode: Literal["shard", "row"] = "shard",
) -> list[Segment]:
    """The segments ``(shard, start, end)`` one (rank, worker) reads, shards taken in ``order``.

    ``"shard"``: whole shards, round-robin: rank ``r`` takes ``order[r::world_size]`` and
    its worker ``w`` every ``num_workers``-th of those. Counts are uneven when shards do not
    divide evenly (a consumer may get none); with DDP, balance shards or use ``"row"``.
    ``"row"``: the rows of ``order`` laid end to end are cut into ``world_size`` contiguous
    ranges as equal as possible (sizes differ by at most one), each cut again among
    workers. Either way the union over all (rank, worker) is every row exactly once.
    """
    if not 0 <= rank < world_size or not 0 <= worker < num_workers:
        raise ValueError(
            f"need 0 <= rank < world_size and 0 <= worker < num_workers, got "
            f"rank={rank}, world_size={world_size}, worker={worker}, "
            f"num_workers={num_workers}"
        )
    if mode == "shard":
        mine = list(order)[rank::world_size][worker::num_workers]
        return [(s, 0, int(shard_rows[s])) for s in mine if shard_rows[s]]
    if mode != "row":
        raise ValueError(f"partition mode must be 'shard' or 'row', got {mode!r}")
    total = int(sum(shard_rows[s] for s in order))
    lo, hi = total * rank // world_size, total * (rank + 1) // world_size
    lo, hi = lo + (hi - lo) * worker // num_workers, lo + (hi - lo) * (worker + 1) // num_workers
    out, pos = [], 0
    for s in order:
        n = int(shard_rows[s])
        a, b = max(lo, pos), min(hi, pos + n)
        if a < b:
            out.append((s, a - pos, b - pos))
        pos += n
    return out


class ShardIterableDataset(_Reader, IterableDataset):
    """Streams rows, split over ranks and DataLoader workers, shuffled per epoch.

    Ranks come from ``rank``/``world_size`` when both are given, else from
    ``torch.distributed`` when it is initialised, else rank 0 of 1; workers from
    ``torch.utils.data.get_worker_info()``. See :func:`partition` for how rows are split
    (``partition="shard"`` by default). With ``shuffle``, the shard order is permuted by
    ``(seed, epoch)`` (the same on every rank and worker), row groups within a shard are
    visited in random order and rows pass through a shuffle buffer of ``buffer_size``
    rows, from a generator seeded by ``(seed, epoch, rank, worker)``: the same seed, epoch
    and layout give the same order. Call :meth:`set_epoch` before each epoch (with
    ``persistent_workers=True`` the workers keep the epoch they started with). ``verify``
    as for :class:`ShardMapDataset`.
    """

    def __init__(
        self,
        path: str,
        shuffle: bool = True,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
        columns: Sequence[str] | None = None,
        audio_columns: Sequence[str] | None = None,
        *,
        buffer_size: int = 256,
        partition: Literal["shard", "row"] = "shard",
        decode_json: bool = False,
        verify: bool = True,
    ) -> None:
        if (rank is None) != (world_size is None):
            raise ValueError("give both rank and world_size, or neither")
        if partition not in ("shard", "row"):
            raise ValueError(f"partition must be 'shard' or 'row', got {partition!r}")
        ds = self._setup(path, columns, audio_columns, decode_json, verify)
        self.shuffle = shuffle
        self.seed = int(seed)
        self.rank, self.world_size = rank, world_size
        self.buffer_size = max(1, int(buffer_size))
        self.mode = partition
        self.epoch = 0
        self._rows = [s.rows for s in ds.shards]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _rank_world(self) -> tuple[int, int]:
        if self.rank is not None and self.world_size is not None:
            return int(self.rank), int(self.world_size)
        dist = torch.distributed
        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
        return 0, 1

    def shard_order(self) -> list[int]:
        """The shard order of the current epoch (identical on every rank and worker)."""
        n = len(self._rows)
        if not self.shuffle:
            return list(range(n))
        return np.random.default_rng([self.seed, self.epoch]).permutation(n).tolist()

    def segments(self, worker: int = 0, num_workers: int = 1) -> list[Segment]:
        """What this rank's ``worker`` reads this epoch (all its workers' when 0 of 1)."""
        rank, world = self._rank_world()
        return partition(
            self._rows, self.shard_order(), rank, world, worker, num_workers, self.mode
        )

    def __len__(self) -> int:
        """Rows this rank reads this epoch, over all its workers."""
        return sum(b - a for _, a, b in self.segments())

    def _raw_rows(self, segments: list[Segment], rng: np.random.Generator):
        ds = self._dataset()
        for s, a, b in segments:
            pf = ds.shard_file(s)
            spans, start = [], 0
            for g in range(pf.metadata.num_row_groups):
                n = pf.metadata.row_group(g).num_rows
                if start < b and start + n > a:
                    spans.append((g, start))
                start += n
            if self.shuffle:
                spans = [spans[j] for j in rng.permutation(len(spans))]
            for g, g0 in spans:
                table = pf.read_row_group(g, columns=self.columns, use_threads=False)
                lo, hi = max(a, g0), min(b, g0 + table.num_rows)
                yield from table.slice(lo - g0, hi - lo).to_pylist()

    def __iter__(self):
        info = get_worker_info()
        worker, num_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        rank, _ = self._rank_world()
        rng = np.random.default_rng([self.seed, self.epoch, rank, worker])
        rows = self._raw_rows(self.segments(worker, num_workers), rng)
        if not self.shuffle:
            for row in rows:
                yield self._convert(row)
            return
        buf: list[dict[str, Any]] = []
        for row in rows:
            if len(buf) < self.buffer_size:
                buf.append(row)
                continue
            j = int(rng.integers(len(buf)))
            out, buf[j] = buf[j], row
            yield self._convert(out)
        for j in rng.permutation(len(buf)):
            yield self._convert(buf[j])


def collate(
    batch: Sequence[dict[str, Any]],
    *,
    length: int | None = None,
    audio_columns: Sequence[str] | None = None,
    crop: Literal["start", "center", "random"] = "start",
    generator: np.random.Generator | torch.Generator | None = None,
) -> dict[str, Any]:
    """Stack a list of items into a batch, audio padded/cropped to ``length`` samples.

    Audio columns (by default every 1-D float tensor) become ``[B, length]`` float32
    tensors, zero-padded at the end; ``length=None`` pads to the longest in the batch.
    Longer clips are cropped at the start, center or a random offset (drawn from
    ``generator``, which ``crop="random"`` requires); a row's audio columns share one
    offset, so pairs (reference, perturbed) stay aligned. ``f"{column}_length"`` holds
    the valid samples of each row. Ints, floats and bools become tensors; anything else
    (strings, dicts, None) stays a list. Use ``functools.partial`` to set options.
    """
    if not batch:
        raise ValueError("collate: empty batch")
    keys = list(batch[0])
    for row in batch:
        if list(row) != keys:
            raise ValueError(f"collate: rows differ in columns: {keys} vs {list(row)}")
    if audio_columns is None:
        audio_columns = [k for k in keys if _is_audio(batch[0][k])]
    audio = list(audio_columns)
    if crop == "random" and generator is None:
        raise ValueError("collate: crop='random' needs an explicit generator")
    if crop not in ("start", "center", "random"):
        raise ValueError(f"collate: crop must be 'start', 'center' or 'random', got {crop!r}")
    for c in audio:
        if any(not _is_audio(row[c]) for row in batch):
            raise ValueError(
                f"collate: audio column {c!r} holds a value that is not a 1-D "
                "float tensor (null or undecoded)"
            )
    target = length or max((row[c].shape[0] for row in batch for c in audio), default=0)
    out: dict[str, Any] = {}
    offsets = []
    for row in batch:
        shortest = min((row[c].shape[0] for c in audio), default=0)
        spare = max(0, shortest - target)
        if crop == "start" or spare == 0:
            offsets.append(0)
        elif crop == "center":
            offsets.append(spare // 2)
        elif isinstance(generator, torch.Generator):
            offsets.append(int(torch.randint(spare + 1, (1,), generator=generator)))
        elif generator is not None:  # checked above: crop="random" has a generator
            offsets.append(int(generator.integers(spare + 1)))
    for c in audio:
        name = f"{c}_length"
        if name in keys:
            raise ValueError(f"collate: column {name!r} clashes with the lengths of {c!r}")
        x = torch.zeros(len(batch), target, dtype=torch.float32)
        lengths = torch.zeros(len(batch), dtype=torch.int64)
        for b, (row, off) in enumerate(zip(batch, offsets, strict=True)):
            seg = row[c][off : off + target]
            x[b, : seg.shape[0]] = seg
            lengths[b] = seg.shape[0]
        out[c], out[name] = x, lengths
    for k in keys:
        if k not in out:
            out[k] = _stack([row[k] for row in batch])
    return out


def _is_audio(v: Any) -> bool:
    return isinstance(v, torch.Tensor) and v.ndim == 1 and v.is_floating_point()


def _stack(values: list[Any]) -> Any:
    if all(isinstance(v, bool) for v in values):
        return torch.tensor(values, dtype=torch.bool)
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return torch.tensor(values, dtype=torch.int64)
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return torch.tensor(values, dtype=torch.float64)
    if all(isinstance(v, torch.Tensor) for v in values):
        try:
            return torch.stack(values)
        except RuntimeError:
            return values
    return values
