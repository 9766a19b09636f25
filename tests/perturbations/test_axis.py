from __future__ import annotations

import numpy as np
import pytest

from pamflow import perturbations
from pamflow.measures import log_spectral_distance
from pamflow.perturbations import Axis, Chain, sample_axis
from pamflow.perturbations.axis import DEFAULT_AXIS_FAMILIES

SR = 16000


def test_sample_axis_one_family_per_category_random_order():
    rng = np.random.default_rng(0)
    orders = set()
    sizes = []
    for _ in range(300):
        ax = sample_axis(rng)
        cats = [perturbations.get(f).category for f in ax.families]
        assert len(cats) == len(set(cats))
        assert set(ax.families) <= {f for fs in DEFAULT_AXIS_FAMILIES.values() for f in fs}
        assert max(ax.weights) == pytest.approx(1.0)
        orders.add(tuple(cats))
        sizes.append(len(ax.families))
    # each category on with p = 0.5 (at least one): mean size near 2.5 + a little
    assert 2.2 < np.mean(sizes) < 2.9
    assert 1 in sizes and 5 in sizes
    # orders are shuffled: both (reverb, additive) and (additive, reverb) occur
    pairs = {
        (o.index("reverb") < o.index("additive"))
        for o in orders
        if {"reverb", "additive"} <= set(o)
    }
    assert pairs == {True, False}


def test_axis_rejects_two_families_of_a_category():
    with pytest.raises(perturbations.PerturbationError, match="one family per category"):
        Axis(("white_noise", "pink_noise"), (1.0, 0.5), seed=1)


def test_moving_along_an_axis_changes_only_strengths(demo_sources):
    ax = Axis(("pops", "white_noise", "eq"), (1.0, 0.5, 0.8), seed=42)
    lo, hi = ax.chain(20, demo_sources), ax.chain(80, demo_sources)
    assert [s.strength for s in hi.steps] == pytest.approx([80, 40, 64])
    for a, b in zip(lo.steps, hi.steps, strict=True):
        assert a.params.get("seed") == b.params.get("seed")


def test_chain_replays_from_json_and_degrades_with_rho(demo_sources, speech_clip):
    rng = np.random.default_rng(11)
    lsd = {0: [], 50: [], 100: []}
    for _ in range(4):
        ax = sample_axis(rng, ["white_noise", "mp3", "eq", "pops", "reverb_drr"])
        for rho in lsd:
            chain = ax.chain(rho, demo_sources)
            y = chain.apply(speech_clip, SR, demo_sources)
            again = Chain.from_json(chain.to_json()).apply(speech_clip, SR, demo_sources)
            assert np.array_equal(y, again)
            lsd[rho].append(log_spectral_distance(speech_clip, y, SR))
    assert np.mean(lsd[0]) < np.mean(lsd[50]) < np.mean(lsd[100])
