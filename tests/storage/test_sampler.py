"""DisjointBatchSampler: disjoint batches, every row once, reproducible, per-epoch order,
the impossible cases, and the path from a dataset to a DataLoader."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import DataLoader

from pamflow import storage
from pamflow.storage.sampler import DisjointBatchSampler
from pamflow.storage.torch import ShardMapDataset, collate
from pamflow.testing import write_dataset


def _keys(n: int = 200, sources: int = 40, seed: int = 0) -> list[set[str]]:
    rng = np.random.default_rng(seed)
    return [{f"s{rng.integers(sources)}", f"s{rng.integers(sources)}"} for _ in range(n)]


def _check(batches: list[list[int]], keys: list[set[str]]) -> None:
    for b in batches:
        held = [k for i in b for k in keys[i]]
        assert len(held) == len(set(held)), f"batch {b} repeats a key"


def test_batches_are_disjoint_and_use_every_row_once():
    keys = _keys()
    sampler = DisjointBatchSampler(keys, batch_size=8, seed=3)
    batches = list(sampler)
    _check(batches, keys)
    assert sorted(i for b in batches for i in b) == list(range(200))
    assert len(sampler) == len(batches)
    # keys are plentiful: batches are full but for a few at the end, once the rows run out
    short = [k for k, b in enumerate(batches) if len(b) < 8]
    assert len(short) <= 4 and all(k >= len(batches) - 5 for k in short)
    assert len(batches) <= 25 + 3


def test_order_is_reproducible_per_seed_and_changes_with_epoch():
    keys = _keys()
    a = DisjointBatchSampler(keys, batch_size=8, seed=3)
    assert list(a) == list(DisjointBatchSampler(keys, batch_size=8, seed=3))
    assert list(a) != list(DisjointBatchSampler(keys, batch_size=8, seed=4))
    first = list(a)
    a.set_epoch(1)
    second = list(a)
    assert first != second and sorted(map(sorted, first)) != sorted(map(sorted, second))
    assert second == list(DisjointBatchSampler(keys, batch_size=8, seed=3, epoch=1))
    a.set_epoch(0)
    assert list(a) == first


def test_a_dominant_key_gets_extra_short_batches_and_terminates():
    keys = [{"x", f"s{i}"} if i % 2 == 0 else {f"s{i}"} for i in range(60)]
    batches = list(DisjointBatchSampler(keys, batch_size=6, seed=0))
    _check(batches, keys)
    assert sorted(i for b in batches for i in b) == list(range(60))
    # 30 rows hold "x": at most one per batch, so at least 30 batches, some short
    assert len(batches) >= 30 and min(map(len, batches)) < 6
    # every row sharing one key: batches of one row each
    same = DisjointBatchSampler([{"k"}] * 5, batch_size=4, seed=0)
    assert sorted(map(tuple, same)) == [(0,), (1,), (2,), (3,), (4,)]


def test_drop_last_yields_only_full_batches_and_keyless_rows_never_clash():
    keys = [{"x"} if i < 10 else set() for i in range(40)]
    batches = list(DisjointBatchSampler(keys, batch_size=4, seed=1, drop_last=True))
    assert batches and all(len(b) == 4 for b in batches)
    _check(batches, keys)
    assert len({i for b in batches for i in b}) == sum(map(len, batches))
    plain = list(DisjointBatchSampler([None] * 10, batch_size=4, seed=1))
    assert list(map(len, plain)) == [4, 4, 2]


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(0, 80), pool=st.integers(1, 30), size=st.integers(1, 9), seed=st.integers(0, 5)
)
def test_invariants_hold_for_any_keys(n, pool, size, seed):
    keys = _keys(n, pool, seed)
    batches = list(DisjointBatchSampler(keys, batch_size=size, seed=seed))
    _check(batches, keys)
    assert sorted(i for b in batches for i in b) == list(range(n))
    assert all(1 <= len(b) <= size for b in batches)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="batch_size"):
        DisjointBatchSampler([{"a"}], batch_size=0)
    with pytest.raises(ValueError, match="epoch"):
        DisjointBatchSampler([{"a"}], batch_size=2).set_epoch(-1)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A 30-row dataset in two shards: audio plus anchor/positive source ids."""
    out = str(tmp_path_factory.mktemp("sampler") / "ds")
    schema = storage.Schema(
        [
            storage.Column("anchor", "audio"),
            storage.Column("anchor_source_id", "string"),
            storage.Column("positive_source_id", "string"),
        ]
    )
    rng = np.random.default_rng(0)
    rows = []
    for i in range(30):
        a, p = int(rng.integers(8)), int(rng.integers(8))
        rows.append(
            {
                "index": i,
                "example_id": f"t-{i}",
                "seed": i,
                "params": "{}",
                "anchor": np.full(160, i / 100, dtype=np.float32),
                "anchor_source_id": f"rec{a}",
                "positive_source_id": f"rec{p}",
            }
        )
    write_dataset(out, schema, rows, shard_sizes=(17, 13), sample_rate=16000)
    return out, rows


def test_from_dataset_feeds_a_dataloader(tiny):
    out, rows = tiny
    sampler = DisjointBatchSampler.from_dataset(
        out, key_columns=["anchor_source_id", "positive_source_id"], batch_size=3, seed=2
    )
    assert sampler.keys[20] == {rows[20]["anchor_source_id"], rows[20]["positive_source_id"]}
    loader = DataLoader(ShardMapDataset(out), batch_sampler=sampler, collate_fn=collate)
    seen = []
    for batch in loader:
        ids = [
            f"{a}|{p}"
            for a, p in zip(batch["anchor_source_id"], batch["positive_source_id"], strict=True)
        ]
        held = [k for pair in ids for k in set(pair.split("|"))]
        assert len(held) == len(set(held))
        # the rows are the ones indexed: audio carries the index
        assert torch.allclose(batch["anchor"][:, 0], batch["index"].float() / 100, atol=1e-6)
        seen.extend(batch["index"].tolist())
    assert sorted(seen) == list(range(30))
    assert len(loader) == len(sampler)


def test_from_dataset_refuses_unknown_and_audio_columns(tiny):
    out, _ = tiny
    with pytest.raises(storage.StorageError, match="nope"):
        DisjointBatchSampler.from_dataset(out, key_columns=["nope"], batch_size=2)
    with pytest.raises(storage.StorageError, match="audio"):
        DisjointBatchSampler.from_dataset(out, key_columns=["anchor"], batch_size=2)
    with pytest.raises(storage.StorageError, match="key_columns"):
        DisjointBatchSampler.from_dataset(out, key_columns=[], batch_size=2)
