"""What every recipe shares, checked over the whole registry: declarations that name real
columns, and rows that replay bit for bit from their params."""

from __future__ import annotations

import numpy as np
import pytest

from pamflow import storage
from pamflow.datasets import get_recipe, recipe_names
from pamflow.pipeline.build import build_local


@pytest.fixture(scope="module")
def tiny_builds(tmp_path_factory, demo_corpus):
    """A tiny float-WAV dataset of every recipe (float32 storage: exact round trip)."""
    out = {}
    for name in recipe_names():
        recipe = get_recipe(name)
        spec = recipe.parse(
            {
                "num_examples": 3,
                "shard_size": 2,
                "clip_seconds": 1.0,
                "audio_format": "wav",
                "seed": 5,
                **recipe.tiny_spec,
            }
        )
        path = str(tmp_path_factory.mktemp(name) / name)
        build_local(name, spec, path)
        out[name] = (spec, path)
    return out


@pytest.mark.parametrize("name", recipe_names())
def test_declared_columns_exist(name, tiny_builds):
    recipe = get_recipe(name)
    _, path = tiny_builds[name]
    columns = set(storage.Dataset.open(path).schema.names)
    declared = {
        *recipe.label_columns,
        *recipe.count_columns,
        *recipe.histogram_columns,
        recipe.split_key,
        *recipe.evaluated_on,
        *recipe.audio_columns,
    }
    assert declared <= columns, sorted(declared - columns)
    assert set(recipe.evaluated_on) <= set(recipe.audio_columns)
    assert recipe.label_columns, f"{name} declares no label column"


@pytest.mark.parametrize("name", recipe_names())
def test_every_row_replays_bit_for_bit(name, tiny_builds, demo_sources):
    recipe = get_recipe(name)
    spec, path = tiny_builds[name]
    ds = storage.Dataset.open(path)
    assert ds.num_rows == 3
    for i in range(ds.num_rows):
        row = ds.row(i)
        replayed = recipe.replay(row, spec, demo_sources)
        assert set(replayed) == set(recipe.audio_columns)
        for column, audio in replayed.items():
            stored, sr = ds.decode_audio(row[column])
            assert sr == spec.sample_rate
            assert audio.dtype == np.float32
            assert np.array_equal(audio, stored), f"{name} row {i} column {column}"


def test_replay_refuses_what_it_cannot_rebuild():
    recipe = get_recipe("jnd")
    spec = recipe.parse(recipe.tiny_spec)
    with pytest.raises(KeyError):
        recipe.replay({"params": "{}"}, spec)
