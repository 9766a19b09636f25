"""The perturbation library: one module per family, a registry, and axes (chains).

>>> from pamflow import perturbations
>>> perturbations.names()            # every registered family
>>> fam = perturbations.get("mp3")
>>> params = fam.sample(numpy.random.default_rng(0), strength=40)
>>> y = fam.apply(x, 16000, params)

See ``docs/perturbations.md`` for each family's parameter, unit, range and mapping.

Every module of this package but the machinery (:data:`MACHINERY`) is a family module;
importing the package imports them all, and each registers its families by subclassing
:class:`Family`, so a new family is one new file here.
"""

import importlib
import pkgutil

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

#: the modules of this package that are not family modules
MACHINERY = frozenset({"axis", "base", "docs"})
for _module in pkgutil.iter_modules(__path__):
    if _module.name not in MACHINERY:
        importlib.import_module(f"{__name__}.{_module.name}")

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
