"""pamflow: training data and training flows for perceptual audio metrics."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from pamflow.sources import Sources

try:
    __version__ = version("pamflow")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"


def perturb(
    audio: np.ndarray,
    sample_rate: int,
    name: str,
    strength: float,
    seed: int = 0,
    sources: Sources | None = None,
) -> np.ndarray:
    """Apply the family ``name`` at ``strength`` in [0, 100] to mono float audio.

    Params are drawn from ``numpy.random.default_rng(seed)``, so the same call gives the same
    output. Families that need recordings (corpus noises, RIRs) use the demo corpus unless
    ``sources`` is given.
    """
    from pamflow import perturbations

    fam = perturbations.get(name)
    params = fam.sample(np.random.default_rng(seed), strength, sources)
    return fam.apply(audio, sample_rate, params, sources)


__all__ = ["__version__", "perturb"]
