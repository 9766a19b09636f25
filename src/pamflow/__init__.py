"""pamflow: training data and training flows for perceptual audio metrics.

The packages, bottom to top (see ``docs/architecture.md``): ``audio`` and ``measures``;
``storage``; ``corpus``; ``perturbations``; ``datasets``; ``pipeline`` and ``models``;
``flows``; the ``cli``. ``pamflow.perturbations``, ``pamflow.storage`` and
``pamflow.models`` are reachable as attributes right after ``import pamflow`` (loaded on
first use).
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from pamflow.corpus import Sources

try:
    __version__ = version("pamflow")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

#: subpackages loaded on first attribute access (``pamflow.models.load(...)``)
_LAZY = frozenset(
    {"audio", "corpus", "datasets", "measures", "models", "perturbations", "pipeline", "storage"}
)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return importlib.import_module(f"pamflow.{name}")
    raise AttributeError(f"module 'pamflow' has no attribute {name!r}")


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
    output. This convenience uses the embedded demo corpus (``Sources.demo()``, made on first
    use) for families that need recordings (corpus noises, RIRs) when ``sources`` is not
    given; the families themselves never do.
    """
    from pamflow import perturbations

    fam = perturbations.get(name)
    if sources is None and fam.needs_sources:
        from pamflow.corpus import Sources

        sources = Sources.demo()
    params = fam.sample(np.random.default_rng(seed), strength, sources)
    return fam.apply(audio, sample_rate, params, sources)


__all__ = ["__version__", "perturb"]
