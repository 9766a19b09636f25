"""The package root: public names right after ``import pamflow``, in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import pamflow
from pamflow.testing import speech_like

FRESH = """
import sys
import pamflow
assert "pamflow.models" not in sys.modules   # loaded on first use, not by import pamflow
assert callable(pamflow.models.load) and callable(pamflow.storage.Dataset.open)
assert "mp3" in pamflow.perturbations.names()
try:
    pamflow.no_such_thing
except AttributeError as e:
    assert "no attribute 'no_such_thing'" in str(e)
else:
    raise AssertionError("missing attribute did not raise")
print("ok")
"""


def test_subpackages_are_attributes_of_the_package():
    done = subprocess.run(
        [sys.executable, "-c", FRESH], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"


def test_perturb_uses_the_demo_corpus_explicitly_and_families_do_not(demo_corpus):
    x = speech_like(seconds=1.0, sample_rate=16000, seed=4)
    y = pamflow.perturb(x, 16000, "reverb_drr", strength=60, seed=2)
    assert y.shape == x.shape and not np.array_equal(x, y)
    np.testing.assert_array_equal(y, pamflow.perturb(x, 16000, "reverb_drr", 60, seed=2))
    fam = pamflow.perturbations.get("reverb_drr")
    with pytest.raises(pamflow.perturbations.PerturbationError, match="Sources.demo()"):
        fam.sample(np.random.default_rng(0), 60)
