"""The JND recipe: rows replay from their params, simulated labels, strength sampling.

``jnd_local`` (a JND dataset built once per session) and ``jnd_spec`` (its spec) come from
tests/conftest.py."""

from __future__ import annotations

import numpy as np
import pytest

from pamflow import storage
from pamflow.datasets.base import get_recipe
from pamflow.datasets.jnd import replay
from pamflow.datasets.spec import SpecError
from pamflow.pipeline import build


def test_rows_replay_from_their_params(jnd_local, jnd_spec, demo_sources):
    out, _ = jnd_local
    ds = storage.Dataset.open(out)
    spec = get_recipe("jnd").parse(jnd_spec)
    for i in (0, 7, 29):
        row = ds.row(i)
        ref, per = replay(row, spec, demo_sources)
        stored_ref, _ = ds.decode_audio(row["reference"])
        stored_per, _ = ds.decode_audio(row["perturbed"])
        # equal within the 24-bit FLAC step
        assert np.max(np.abs(ref - stored_ref)) < 2e-7
        assert np.max(np.abs(per - stored_per)) < 2e-7


def test_simulated_labels_are_balanced(jnd_spec, tmp_path, demo_corpus):
    out = str(tmp_path / "balance")
    spec = {
        **jnd_spec,
        "num_examples": 120,
        "shard_size": 60,
        "queries_per_sequence": 10,
        "seed": 11,
    }
    summary = build.build_local("jnd", spec, out)
    assert 0.4 <= summary["share_different"] <= 0.6, summary


def test_uniform_strength_sampling_keeps_labels_but_not_the_staircase(
    jnd_spec, tmp_path, demo_corpus
):
    spec = {**jnd_spec, "num_examples": 20, "shard_size": 20, "queries_per_sequence": 10}

    def strengths_and_labels(**change) -> tuple[list, list]:
        out = str(tmp_path / "-".join(f"{k}{v}" for k, v in change.items()))
        build.build_local("jnd", {**spec, **change}, out)
        table = storage.Dataset.open(out).to_table(columns=["strength", "label"])
        return table.column("strength").to_pylist(), table.column("label").to_pylist()

    # uniform: the questions do not depend on the answers, so a harder-to-please panel
    # changes the labels only; the staircase follows the answers, so its strengths move too
    easy_s, easy_y = strengths_and_labels(strength_sampling="uniform", listener_threshold=0.2)
    hard_s, hard_y = strengths_and_labels(strength_sampling="uniform", listener_threshold=5.0)
    assert easy_s == hard_s and None not in easy_y
    assert sum(easy_y) > sum(hard_y)
    stair_easy, _ = strengths_and_labels(listener_threshold=0.2)
    stair_hard, _ = strengths_and_labels(listener_threshold=5.0)
    assert stair_easy != stair_hard
    with pytest.raises(SpecError, match="staircase"):
        build.prepare(
            "jnd",
            {**spec, "labels": "none", "strength_sampling": "staircase"},
            str(tmp_path / "bad"),
        )
