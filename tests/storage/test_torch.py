"""PyTorch datasets: random access, exact coverage over ranks x workers, shuffling, collate."""

from __future__ import annotations

import functools
from collections import Counter

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import DataLoader

from pamflow.storage import Column, Schema
from pamflow.storage.torch import ShardIterableDataset, ShardMapDataset, collate, partition
from pamflow.testing import write_dataset

SR = 16000
SIZES = (5, 3, 4, 1, 6)  # 19 rows in 5 shards: divides evenly by neither 2 nor 4
N = sum(SIZES)


def audio_for(i: int) -> np.ndarray:
    n = 1600 + 40 * i  # lengths differ, to exercise padding
    return (0.4 * np.sin(2 * np.pi * (120 + 53 * i) * np.arange(n) / SR)).astype(np.float32)


@pytest.fixture(scope="module")
def ds_path(tmp_path_factory):
    schema = Schema(
        [
            Column("reference", "audio"),
            Column("perturbed", "audio"),
            Column("strength", "float64"),
            Column("tag", "string", nullable=True),
        ]
    )
    rows = [
        {
            "index": i,
            "example_id": f"ex-{i}",
            "seed": i,
            "params": {"i": i},
            "reference": audio_for(i),
            "perturbed": 0.5 * audio_for(i),
            "strength": i / 4,
            "tag": None if i % 3 else "x",
        }
        for i in range(N)
    ]
    return write_dataset(
        tmp_path_factory.mktemp("torchds"),
        schema,
        rows,
        shard_sizes=SIZES,
        sample_rate=SR,
        row_group_size=2,
    )


def test_map_dataset_random_access(ds_path):
    ds = ShardMapDataset(ds_path, cache_row_groups=1)
    assert len(ds) == N
    for i in np.random.default_rng(0).permutation(N).tolist() + [N - 1, 0, -2]:
        item = ds[i]
        j = i % N
        assert item["index"] == j and item["example_id"] == f"ex-{j}"
        assert item["strength"] == j / 4 and item["params"] == f'{{"i": {j}}}'
        ref = item["reference"]
        assert isinstance(ref, torch.Tensor) and ref.dtype == torch.float32 and ref.ndim == 1
        assert torch.allclose(ref, torch.from_numpy(audio_for(j)), atol=1e-6)
        assert torch.allclose(item["perturbed"], 0.5 * torch.from_numpy(audio_for(j)), atol=1e-6)
    with pytest.raises(IndexError):
        ds[N]


def test_map_dataset_column_selection(ds_path):
    ds = ShardMapDataset(
        ds_path,
        columns=["index", "reference", "perturbed", "params"],
        audio_columns=["perturbed"],
        decode_json=True,
    )
    item = ds[7]
    assert set(item) == {"index", "reference", "perturbed", "params"}
    assert (
        isinstance(item["reference"], dict) and item["reference"]["path"] == "ex-7_reference.flac"
    )
    assert isinstance(item["perturbed"], torch.Tensor) and item["params"] == {"i": 7}
    with pytest.raises(ValueError, match="not selected audio"):
        ShardMapDataset(ds_path, columns=["index"], audio_columns=["reference"])


def test_map_dataset_through_dataloader_workers(ds_path):
    ds = ShardMapDataset(ds_path, columns=["index", "reference", "perturbed"])
    loader = DataLoader(
        ds,
        batch_size=4,
        shuffle=True,
        num_workers=2,
        multiprocessing_context="forkserver",
        generator=torch.Generator().manual_seed(0),
        collate_fn=functools.partial(collate, length=2000),
    )
    seen = []
    for batch in loader:
        assert batch["reference"].shape[1] == 2000
        for b, i in enumerate(batch["index"].tolist()):
            n = min(len(audio_for(i)), 2000)
            assert batch["reference_length"][b] == n
            assert torch.allclose(
                batch["reference"][b, :n], torch.from_numpy(audio_for(i)[:n]), atol=1e-6
            )
        seen += batch["index"].tolist()
    assert sorted(seen) == list(range(N))


def _indices(loader) -> list[int]:
    return [i for batch in loader for i in batch["index"].tolist()]


@pytest.mark.parametrize("mode", ["shard", "row"])
def test_iterable_two_ranks_two_workers_cover_every_row_once(ds_path, mode):
    seen: Counter[int] = Counter()
    per_rank = []
    for rank in range(2):
        ds = ShardIterableDataset(
            ds_path,
            shuffle=True,
            seed=5,
            rank=rank,
            world_size=2,
            columns=["index", "reference"],
            partition=mode,
            buffer_size=4,
        )
        # forkserver: this test process runs threads (Prefect, Dask) that fork would copy
        loader = DataLoader(
            ds,
            batch_size=3,
            num_workers=2,
            collate_fn=collate,
            multiprocessing_context="forkserver",
        )
        got = _indices(loader)
        assert len(got) == len(ds)  # __len__ is this rank's share
        per_rank.append(len(got))
        seen.update(got)
    assert seen == Counter(range(N))  # no duplicates, no gaps
    if mode == "row":
        assert abs(per_rank[0] - per_rank[1]) <= 1


def test_iterable_shuffle_reproducible_and_per_epoch(ds_path):
    def order(seed: int, epoch: int, shuffle: bool = True) -> list[int]:
        ds = ShardIterableDataset(
            ds_path, shuffle=shuffle, seed=seed, columns=["index"], buffer_size=4
        )
        ds.set_epoch(epoch)
        return [row["index"] for row in ds]

    assert order(1, 0) == order(1, 0)
    assert sorted(order(1, 0)) == list(range(N))
    assert order(1, 0) != order(1, 1)
    assert order(1, 0) != order(2, 0)
    assert order(1, 0) != list(range(N))
    assert order(1, 0, shuffle=False) == order(9, 3, shuffle=False) == list(range(N))


def test_iterable_decodes_audio(ds_path):
    ds = ShardIterableDataset(ds_path, shuffle=False, rank=1, world_size=2, partition="row")
    items = list(ds)
    assert [it["index"] for it in items] == list(range(N // 2, N))
    for it in items:
        assert torch.allclose(it["reference"], torch.from_numpy(audio_for(it["index"])), atol=1e-6)
    with pytest.raises(ValueError, match="both rank and world_size"):
        ShardIterableDataset(ds_path, rank=0)


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(st.integers(0, 7), min_size=1, max_size=9),
    world=st.integers(1, 4),
    workers=st.integers(1, 3),
    mode=st.sampled_from(["shard", "row"]),
    seed=st.integers(0, 10),
)
def test_partition_is_exact_cover(rows, world, workers, mode, seed):
    order = np.random.default_rng(seed).permutation(len(rows)).tolist()
    seen: Counter[tuple[int, int]] = Counter()
    sizes = []
    for r in range(world):
        for w in range(workers):
            segs = partition(rows, order, r, world, w, workers, mode)
            sizes.append(sum(b - a for _, a, b in segs))
            for s, a, b in segs:
                assert 0 <= a < b <= rows[s]
                seen.update((s, k) for k in range(a, b))
    assert seen == Counter((s, k) for s, n in enumerate(rows) for k in range(n))
    if mode == "row":
        assert max(sizes) - min(sizes) <= 1


def test_collate_pads_crops_and_keeps_pairs_aligned():
    a = torch.arange(10, dtype=torch.float32)
    b = torch.arange(4, dtype=torch.float32)
    batch = [
        {"x": a, "y": a * 2, "n": 1, "s": "p", "f": 0.5},
        {"x": b, "y": b * 2, "n": 2, "s": None, "f": 1.0},
    ]
    out = collate(batch)
    assert out["x"].shape == (2, 10) and out["x_length"].tolist() == [10, 4]
    assert out["x"][1, 4:].eq(0).all() and out["n"].dtype == torch.int64
    assert out["s"] == ["p", None] and out["f"].tolist() == [0.5, 1.0]
    out = collate(batch, length=6, crop="center")
    assert out["x"][0].tolist() == [2, 3, 4, 5, 6, 7] and out["x_length"].tolist() == [6, 4]
    for seed in range(5):
        out = collate(batch, length=3, crop="random", generator=np.random.default_rng(seed))
        assert torch.equal(out["y"], 2 * out["x"])  # one offset per row for every audio column
    offsets = {
        int(
            collate(batch, length=3, crop="random", generator=torch.Generator().manual_seed(s))[
                "x"
            ][0, 0]
        )
        for s in range(20)
    }
    assert len(offsets) > 1
    with pytest.raises(ValueError, match="needs an explicit generator"):
        collate(batch, length=3, crop="random")
