"""Reading pamflow datasets for training and evaluation.

- :func:`open_rows`: the selected rows of one or more finished datasets as a map-style
  :class:`RowsDataset`, read row group by row group through
  :class:`pamflow.storage.torch.ShardMapDataset` (never a whole dataset in memory), audio
  resampled to the model's rate when the dataset's differs (each dataset records its rate).
- :func:`held_out`: the deterministic train / held-out split, by a hash of a grouping key
  (``source_id`` and the like), so that no recording has clips on both sides.
- :func:`epoch_batches`: the batches of one epoch, shuffled by ``(seed, epoch)`` alone, so a
  run resumed at batch ``k`` of an epoch sees exactly the batches an uninterrupted run saw;
  optionally with no grouping key (a source) twice in a batch (contrastive negatives).
- :class:`BatchCollate`: :func:`pamflow.storage.torch.collate` with a fixed length and the
  per-batch seed of its random crops, so crops do not depend on the DataLoader workers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import torch
from torch.utils.data import Dataset as TorchDataset

from pamflow.audio import resample
from pamflow.datasets import get_recipe
from pamflow.seeding import derive_seed32
from pamflow.storage import Dataset
from pamflow.storage.sampler import DisjointBatchSampler
from pamflow.storage.torch import ShardMapDataset, collate

#: columns tried, in order, as the split key when none is named: rows sharing the value
#: (one recording, one JND sequence) land on the same side of the split
SEED_KEY = "_batch_seed"

Split = Literal["all", "train", "eval"]
#: where a fixed-length crop of a longer clip starts (:func:`pamflow.storage.torch.collate`)
Crop = Literal["start", "center", "random"]
RowFilter = Callable[[pa.Table], np.ndarray]


def held_out(key: Any, fraction: float) -> bool:
    """Whether rows with split key ``key`` are held out: a stable hash of ``str(key)``
    (blake2b, the same in every process and Python version) mapped to [0, 1) is below
    ``fraction``."""
    digest = hashlib.blake2b(str(key).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64 < fraction


def not_null(*names: str) -> RowFilter:
    """A row filter keeping the rows where every column in ``names`` has a value."""

    def keep(table: pa.Table) -> np.ndarray:
        mask = np.ones(table.num_rows, dtype=bool)
        for name in names:
            mask &= table.column(name).is_valid().to_numpy(zero_copy_only=False)
        return mask

    return keep


def split_key_of(ds: Dataset, key: str | None) -> str:
    """The split key column of ``ds``: ``key`` when given (it must exist), else the one its
    recipe declares (:attr:`pamflow.datasets.base.Recipe.split_key`), or ``example_id``
    where the dataset lacks that column."""
    names = ds.schema.names
    if key is not None:
        if key not in names:
            raise ValueError(f"{ds.url}: split key {key!r} is not a column; columns are {names}")
        return key
    declared = get_recipe(ds.recipe).split_key
    return declared if declared in names else "example_id"


class RowsDataset(TorchDataset):
    """Selected rows of one or more datasets. ``ds[i]`` (or ``ds[(i, seed)]``) is a dict of
    the audio columns as float32 tensors ``[T]`` at ``sample_rate`` and the other columns as
    Python values; ``seed`` is passed on as ``_batch_seed`` for :class:`BatchCollate`.

    ``readers`` read the datasets, recorded at ``rates`` Hz; for each selected row, ``which``
    is its dataset and ``rows`` its global index there; ``groups`` (optional) holds a tuple
    of grouping values per row for :func:`epoch_batches`.
    """

    def __init__(
        self,
        readers: list[ShardMapDataset],
        rates: list[int],
        which: np.ndarray,
        rows: np.ndarray,
        audio: Sequence[str],
        sample_rate: int,
        groups: list[tuple[Any, ...]] | None = None,
    ) -> None:
        self.readers, self.rates = readers, rates
        self.which, self.rows = which, rows
        self.audio, self.sample_rate = tuple(audio), int(sample_rate)
        self.groups = groups

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        i, seed = key if isinstance(key, tuple) else (key, None)
        d = int(self.which[i])
        item = self.readers[d][int(self.rows[i])]
        for c in self.audio:
            x = item[c]
            if self.rates[d] != self.sample_rate:
                x = torch.from_numpy(resample(x.numpy(), self.rates[d], self.sample_rate))
            item[c] = x
        if seed is not None:
            item[SEED_KEY] = seed
        return item


def open_rows(
    paths: Sequence[str],
    *,
    audio: Sequence[str],
    columns: Sequence[str],
    sample_rate: int,
    split: Split = "all",
    eval_fraction: float = 0.0,
    split_key: str | None = None,
    keep: RowFilter | None = None,
    group_columns: Sequence[str] = (),
) -> RowsDataset:
    """The rows of the datasets at ``paths`` that a training or evaluation reads.

    Each dataset must hold the audio columns ``audio`` and the columns ``columns`` (an error
    names the dataset and what it lacks). ``keep`` (a function of the non-audio columns as
    an Arrow table, returning a boolean mask) drops rows, e.g. unlabelled ones. ``split``:
    ``"train"`` keeps the rows whose split key is not :func:`held_out`, ``"eval"`` the held-out
    ones, ``"all"`` every row. Only the small non-audio columns are read here.
    """
    if not paths:
        raise ValueError("no dataset paths given")
    if not 0.0 <= eval_fraction < 1.0:
        raise ValueError(f"eval_fraction must be in [0, 1), got {eval_fraction}")
    readers, rates, which, rows, groups = [], [], [], [], []
    for d, path in enumerate(paths):
        ds = Dataset.open(str(path))
        missing = [c for c in (*audio, *columns) if c not in ds.schema.names]
        if missing:
            raise ValueError(
                f"{path}: dataset (recipe {ds.recipe!r}) lacks column(s) {missing}; needed "
                f"here: audio {list(audio)} and columns {list(columns)}"
            )
        not_audio = [c for c in audio if c not in ds.audio_columns]
        if not_audio:
            raise ValueError(f"{path}: column(s) {not_audio} are not audio columns")
        if not ds.sample_rate:
            raise ValueError(f"{path}: dataset.json records no sample_rate")
        key = split_key_of(ds, split_key)
        meta_cols = list(dict.fromkeys([*columns, *group_columns, key]))
        meta = ds.to_table(meta_cols)
        mask = np.ones(meta.num_rows, dtype=bool) if keep is None else np.asarray(keep(meta))
        if split != "all":
            keys = meta.column(key).to_pylist()
            out = np.array([held_out(k, eval_fraction) for k in keys], dtype=bool)
            mask &= out if split == "eval" else ~out
        picked = np.flatnonzero(mask)
        readers.append(
            ShardMapDataset(
                str(path), columns=[*audio, *columns], audio_columns=list(audio), cache_row_groups=4
            )
        )
        rates.append(int(ds.sample_rate))
        which.append(np.full(len(picked), d, dtype=np.int64))
        rows.append(picked.astype(np.int64))
        if group_columns:
            values = [meta.column(c).to_pylist() for c in group_columns]
            groups += [tuple(v[i] for v in values) for i in picked]
    return RowsDataset(
        readers,
        rates,
        np.concatenate(which),
        np.concatenate(rows),
        audio,
        sample_rate,
        groups if group_columns else None,
    )


def batch_seed(seed: int, epoch: int, index: int | None = None) -> int:
    """The seed of batch ``index`` of ``epoch`` (its random crops), or with no index that of
    the epoch's order, from the run's seed (a non-negative int)."""
    return derive_seed32(seed, epoch, 0) if index is None else derive_seed32(seed, epoch, 1, index)


def epoch_batches(
    n: int,
    batch_size: int,
    *,
    seed: int,
    epoch: int,
    shuffle: bool = True,
    drop_last: bool = True,
    groups: Sequence[tuple[Any, ...]] | None = None,
) -> list[list[tuple[int, int]]]:
    """The batches of one epoch over ``n`` rows: lists of ``(row, batch seed)`` keys.

    The order is a permutation drawn from a ``torch.Generator`` seeded by ``(seed, epoch)``
    only (or rows in order, without ``shuffle``). With ``groups`` (one tuple of values per
    row, e.g. its source ids), the batches come from
    :class:`pamflow.storage.sampler.DisjointBatchSampler`, always in its order seeded by
    ``(seed, epoch)``: no value appears in two rows of a batch. ``drop_last`` drops the
    batches shorter than ``batch_size``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if groups is not None:
        if len(groups) != n:
            raise ValueError(f"groups: need one tuple per row ({n}), got {len(groups)}")
        keys = [[v for v in g if v is not None] for g in groups]
        sampler = DisjointBatchSampler(keys, batch_size, seed=seed, drop_last=drop_last)
        batches = sampler.batches(epoch)
    else:
        if shuffle:
            g = torch.Generator().manual_seed(batch_seed(seed, epoch))
            order = torch.randperm(n, generator=g).tolist()
        else:
            order = list(range(n))
        batches = [order[k : k + batch_size] for k in range(0, n, batch_size)]
        if drop_last:
            batches = [b for b in batches if len(b) == batch_size]
    return [[(i, batch_seed(seed, epoch, b)) for i in c] for b, c in enumerate(batches)]


class BatchCollate:
    """:func:`pamflow.storage.torch.collate` to ``length`` samples (``None``: the longest
    in the batch) with ``crop`` = ``"random"``, ``"center"`` or ``"start"``; random crops
    come from ``numpy.random.default_rng`` of the batch seed the rows carry."""

    def __init__(self, length: int | None, audio: Sequence[str], crop: Crop = "center") -> None:
        self.length, self.audio, self.crop = length, list(audio), crop

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        seeds = {item.pop(SEED_KEY, None) for item in items}
        gen = None
        if self.crop == "random":
            if len(seeds) != 1 or None in seeds:
                raise ValueError("random crops need one batch seed shared by the batch's rows")
            gen = np.random.default_rng(seeds.pop())
        return collate(
            items, length=self.length, audio_columns=self.audio, crop=self.crop, generator=gen
        )


def float_column(values: Any) -> torch.Tensor:
    """A collated float column as a float64 tensor, ``None`` (null) as NaN."""
    if isinstance(values, torch.Tensor):
        return values.to(torch.float64)
    return torch.tensor([np.nan if v is None else float(v) for v in values], dtype=torch.float64)


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """Tensors of ``batch`` moved to ``device`` (asynchronously from pinned memory)."""
    return {
        k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v
        for k, v in batch.items()
    }
