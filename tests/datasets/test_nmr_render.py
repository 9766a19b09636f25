"""One side of an NMR pair: the strength search that hits a target SI-SDR, the SI-SDR meter."""

from __future__ import annotations

import numpy as np
import pytest

from pamflow import measures, perturbations
from pamflow.datasets.nmr_render import SEARCH_TOL_DB, search_strength, sisdr_meter
from pamflow.testing import speech_like

SR = 16000


def test_search_strength_reaches_or_refuses():
    x = speech_like(seconds=1.0, sample_rate=SR, seed=1)
    found = search_strength(x, SR, "clipping", 7, lambda lo, hi: 5.0)
    assert found is not None
    rho, params, value, target = found
    assert abs(value - 5.0) <= SEARCH_TOL_DB and 0 < rho < 100
    assert measures.si_sdr(
        x,
        perturbations.get("clipping").apply(
            x, SR, perturbations.get("clipping").params_from_dict(params)
        ),
    ) == pytest.approx(value)
    # clipping cannot reach -10 dB: the span it reports stays above it
    spans = []
    search_strength(x, SR, "clipping", 7, lambda lo, hi: spans.append((lo, hi)))
    assert spans[0][0] > -10 and spans[0][1] == np.inf


def test_sisdr_meter_matches_measures():
    x = speech_like(seconds=1.0, sample_rate=SR, seed=2)
    y = x + 0.05 * np.random.default_rng(0).standard_normal(x.size).astype(np.float32)
    assert sisdr_meter(x)(y) == pytest.approx(measures.si_sdr(x, y), abs=1e-9)
    assert sisdr_meter(x)(np.zeros_like(x)) == -np.inf  # si_sdr would say +inf
