"""The contrastive recipe: acoustic and content pairs, the mix, replay, determinism, and
batches without false negatives through DisjointBatchSampler + ShardMapDataset."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

import pamflow.datasets.contrastive as contrastive
from pamflow import storage
from pamflow.datasets.base import get_recipe
from pamflow.datasets.spec import SpecError
from pamflow.pipeline import build
from pamflow.storage.sampler import DisjointBatchSampler
from pamflow.storage.torch import ShardMapDataset, collate
from pamflow.testing import row_digests

FAMILIES = ["white_noise", "pink_noise", "reverb_drr", "mp3", "mulaw", "eq", "pops", "dropouts"]
SPEC = {
    "num_examples": 100,
    "shard_size": 40,
    "clip_seconds": 0.5,
    "families": FAMILIES,
    "seed": 11,
}


@pytest.fixture(scope="module")
def built(tmp_path_factory, demo_corpus):
    out = str(tmp_path_factory.mktemp("contrastive") / "ds")
    summary = build.build_local("contrastive", SPEC, out)
    return out, summary, list(storage.Dataset.open(out).iter_rows())


def test_rows_follow_the_columns(built):
    out, summary, rows = built
    ds = storage.Dataset.open(out)
    assert ds.verify().ok and ds.num_rows == 100
    names = {n for n, _, _ in get_recipe("contrastive").columns(None)}
    assert names | {"index", "example_id", "seed", "params"} == set(rows[0])
    for r in rows[:10]:
        for c in ("anchor", "positive"):
            x, sr = ds.decode_audio(r[c])
            assert sr == 16000 and x.shape == (8000,) and x.dtype == np.float32
    assert [r["group"] for r in rows] == list(range(100))
    assert summary["acoustic"] + summary["content"] == 100


def test_acoustic_pairs_share_params_and_differ_in_content(built, demo_sources):
    out, _, rows = built
    ds = storage.Dataset.open(out)
    acoustic = [r for r in rows if r["pair_kind"] == "acoustic"]
    assert acoustic
    for r in acoustic:
        assert r["anchor_chain"] == r["positive_chain"] and r["anchor_chain"]
        assert r["params"]["anchor_chain"] == r["params"]["positive_chain"]
        assert r["anchor_source_id"] != r["positive_source_id"]
        # the demo corpus labels speakers: the two utterances come from two of them
        assert (
            demo_sources.entry(r["anchor_source_id"])["label"]
            != demo_sources.entry(r["positive_source_id"])["label"]
        )
    a, _ = ds.decode_audio(acoustic[0]["anchor"])
    p, _ = ds.decode_audio(acoustic[0]["positive"])
    assert not np.allclose(a, p)


def test_content_pairs_share_the_clip_and_differ_in_params(built):
    _, _, rows = built
    content = [r for r in rows if r["pair_kind"] == "content"]
    assert content
    for r in content:
        p = r["params"]
        assert r["anchor_source_id"] == r["positive_source_id"]
        assert p["anchor_clip"] == p["positive_clip"]
        assert r["anchor_chain"] != r["positive_chain"]
        assert p["axes"][0]["seed"] != p["axes"][1]["seed"]


def test_mix_follows_acoustic_share(built):
    _, summary, rows = built
    share = sum(r["pair_kind"] == "acoustic" for r in rows) / len(rows)
    assert abs(share - 0.5) <= 0.1 and summary["share_acoustic"] == share
    for want in (0.0, 0.2, 0.75, 1.0):
        spec = get_recipe("contrastive").parse({**SPEC, "acoustic_share": want})
        kinds = [contrastive.pair_kind(spec, i) for i in range(100)]
        assert abs(kinds.count("acoustic") / 100 - want) <= 0.03
        # any run of 20 rows holds the share to within 2 rows (low discrepancy)
        assert abs(kinds[40:60].count("acoustic") - 20 * want) <= 2


def test_rows_replay_and_do_not_depend_on_shard_size(built, tmp_path, demo_sources):
    out, _, rows = built
    ds = storage.Dataset.open(out)
    spec = get_recipe("contrastive").parse(SPEC)
    kinds = {r["pair_kind"]: r["index"] for r in rows}
    for i in kinds.values():  # one row of each kind
        row = ds.row(i)
        anchor, positive = contrastive.replay(row, spec, demo_sources)
        assert np.max(np.abs(anchor - ds.decode_audio(row["anchor"])[0])) < 2e-7
        assert np.max(np.abs(positive - ds.decode_audio(row["positive"])[0])) < 2e-7
    small = {**SPEC, "num_examples": 20}
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    build.build_local("contrastive", {**small, "shard_size": 20}, a)
    build.build_local("contrastive", {**small, "shard_size": 6}, b)
    assert row_digests(a) == row_digests(b)
    # row i depends on (seed, i) alone: a longer build starts with the same rows
    assert row_digests(a) == {i: d for i, d in row_digests(out).items() if i < 20}


def test_loader_batches_hold_no_shared_recording(built):
    out, _, _ = built
    sampler = DisjointBatchSampler.from_dataset(
        out, key_columns=["anchor_source_id", "positive_source_id"], batch_size=8, seed=0
    )
    ds = ShardMapDataset(
        out, columns=["index", "anchor", "positive", "anchor_source_id", "positive_source_id"]
    )
    loader = DataLoader(ds, batch_sampler=sampler, collate_fn=collate)
    seen = []
    for batch in loader:
        assert batch["anchor"].shape[1] == 8000 and batch["anchor"].dtype == torch.float32
        ids = list(batch["anchor_source_id"]) + [
            p
            for p, a in zip(batch["positive_source_id"], batch["anchor_source_id"], strict=True)
            if p != a
        ]
        assert len(ids) == len(set(ids))
        seen.extend(batch["index"].tolist())
    assert sorted(seen) == list(range(100))


def test_acoustic_pairs_need_two_recordings(tmp_path, demo_sources):
    from pamflow.corpus.sources import Sources

    recipe = get_recipe("contrastive")
    one = Sources([demo_sources.entry(demo_sources.ids("speech")[0])])
    with pytest.raises(SpecError, match="acoustic_share"):
        recipe.check(recipe.parse(SPEC), one)
    recipe.check(recipe.parse({**SPEC, "acoustic_share": 0.0}), one)  # content pairs only: fine
    with pytest.raises(SpecError, match="acoustic_share"):
        build.build_local("contrastive", {**SPEC, "acoustic_share": 1.5}, str(tmp_path / "x"))


def test_the_default_spec_on_the_demo_corpus_fills_cdpam_batches(demo_sources):
    """`pamflow train cdpam` on the README's demo datasets works with the defaults: the
    contrastive stage's batches hold no recording twice, so the default clip length must
    leave enough demo recordings for a full default batch of acoustic pairs (2 each)."""
    from pamflow.datasets.base import long_enough
    from pamflow.models.training.cdpam import CDPAMTrainConfig

    spec = get_recipe("contrastive").parse({})
    batch = CDPAMTrainConfig().batch_size
    pool = long_enough(demo_sources, "speech", spec.clip_seconds)
    assert len(pool) >= 2 * batch + 8, (len(pool), batch)
    # and the sampler does fill batches from rows drawn like the recipe's (half acoustic)
    rng = np.random.default_rng(0)
    keys = []
    for i in range(int(0.85 * spec.num_examples)):  # the training split
        a = pool[int(rng.integers(len(pool)))]
        keys.append([a, pool[(pool.index(a) + 1 + int(rng.integers(len(pool) - 1))) % len(pool)]]
                    if i % 2 == 0 else [a])  # fmt: skip
    batches = DisjointBatchSampler(keys, batch, seed=0, drop_last=True).batches(0)
    assert sum(len(b) for b in batches) >= 0.8 * len(keys)
