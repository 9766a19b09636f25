"""The perturbation library: one module per family, a registry, and axes (chains).

>>> from pamflow import perturbations
>>> perturbations.names()            # every registered family
>>> fam = perturbations.get("mp3")
>>> params = fam.sample(numpy.random.default_rng(0), strength=40)
>>> y = fam.apply(x, 16000, params)

See ``docs/perturbations.md`` for each family's parameter, unit, range and mapping.

Every module of this package but the machinery (:data:`MACHINERY`) is a family module;
importing the package imports them all, and each registers its families by subclassing
:class:`Family`, so a new family is one new file here. :func:`from_audiomentations` and
:class:`AudiomentationsAdapter` (``interop``) bridge to audiomentations, both ways.
"""

import importlib
import pkgutil
from typing import Any

from pamflow.perturbations.axis import (
    Axis,
    Chain,
    Step,
    axis_cost,
    default_axis_families,
    sample_axis,
)
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
from pamflow.perturbations.interop import from_audiomentations

#: the modules of this package that are not family modules
MACHINERY = frozenset({"axis", "base", "docs", "interop", "lockstep"})
for _module in pkgutil.iter_modules(__path__):
    if _module.name not in MACHINERY:
        importlib.import_module(f"{__name__}.{_module.name}")


def __getattr__(name: str) -> Any:
    # AudiomentationsAdapter subclasses an audiomentations class: made on first access
    if name == "AudiomentationsAdapter":
        from pamflow.perturbations import interop

        return interop.AudiomentationsAdapter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AXIS_CATEGORIES",
    "CATEGORIES",
    "AudiomentationsAdapter",
    "Axis",
    "Chain",
    "Family",
    "Params",
    "PerturbationError",
    "Step",
    "axis_cost",
    "default_axis_families",
    "families",
    "from_audiomentations",
    "get",
    "names",
    "sample_axis",
]
