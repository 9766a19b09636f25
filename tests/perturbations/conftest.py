"""Fixtures of the perturbation tests: the speech the families are applied to.

``clip`` is 2.5 s of speech-like audio at 16 kHz (seed 3); a module whose family needs
another clip (shorter, quieter) defines its own ``clip``, which takes precedence.
``speech_clip`` is the 2 s clip the checks over every family use.
"""

from __future__ import annotations

import numpy as np
import pytest

from pamflow.testing import speech_like


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    return speech_like(seconds=2.5, sample_rate=16000, seed=3)


@pytest.fixture(scope="session")
def speech_clip() -> np.ndarray:
    """2 s of speech-like audio at 16 kHz, made in code."""
    return speech_like(seconds=2.0, sample_rate=16000, seed=7)
