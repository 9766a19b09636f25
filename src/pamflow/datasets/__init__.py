"""Dataset recipes: JND pairs, 2AFC triplets, contrastive pairs, NMR pairs, codec pairs, domain,
levels.

Each recipe turns a validated spec into examples that carry the exact params and seed that
made them. Helpers shared by recipes live beside them: :mod:`pamflow.datasets.psychometric`
(the active-learning JND sampler of DPAM section 2.1) and :mod:`pamflow.datasets.listener`
(a simulated listener that answers same/different from the audio pair itself).
"""

from pamflow.datasets import codec, contrastive, domain, jnd, levels, nmr, triplet  # noqa: F401  (registers the recipes)
from pamflow.datasets.base import Recipe, get_recipe, recipe_names

__all__ = ["Recipe", "get_recipe", "recipe_names"]
