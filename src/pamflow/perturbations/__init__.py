"""The perturbation library: one module per family, a registry, and axes (chains).

>>> from pamflow import perturbations
>>> perturbations.names()            # every registered family
>>> fam = perturbations.get("mp3")
>>> params = fam.sample(numpy.random.default_rng(0), strength=40)
>>> y = fam.apply(x, 16000, params)

See ``docs/perturbations.md`` for each family's parameter, unit, range and mapping.
"""

from pamflow.perturbations import (  # noqa: F401  (importing registers the families)
    clipping,
    delay,
    dropouts,
    eq,
    freq_mask,
    gain,
    griffin_lim,
    mp3,
    mulaw,
    noise,
    pops,
    reverb,
)
from pamflow.perturbations.axis import Axis, Chain, Step, default_axis_families, sample_axis
from pamflow.perturbations.base import (
    AXIS_CATEGORIES,
    CATEGORIES,
    Family,
    Params,
    PerturbationError,
    families,
    get,
    names,
)

__all__ = [
    "AXIS_CATEGORIES",
    "CATEGORIES",
    "Axis",
    "Chain",
    "Family",
    "Params",
    "PerturbationError",
    "Step",
    "default_axis_families",
    "families",
    "get",
    "names",
    "sample_axis",
]
