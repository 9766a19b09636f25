"""Every seed pamflow derives, in one place (a leaf: imports nothing from pamflow).

Seeds are derived, never drawn from global state: NumPy's ``SeedSequence`` hashes integer
keys, so a seed depends only on its keys (the dataset seed and the example index, the run
seed, the epoch and the batch...), whatever the number of workers or the order of work.

- :func:`derive_seed`: a 63-bit seed from keys (dataset rows; fits int64 columns and JSON).
- :func:`derive_seed32`: a 32-bit seed from keys (training batches and epochs).
- :func:`draw_seed`: a 63-bit seed drawn from a caller's generator (a perturbation's apply
  step records it in its params and feeds it to its own generator).
"""

from __future__ import annotations

import numpy as np

#: seeds are kept below 2**63 so they survive int64 columns and JSON
SEED_HIGH = 2**63 - 1


def derive_seed(*keys: int) -> int:
    """A 63-bit seed from integer keys (NumPy SeedSequence hashing)."""
    state = np.random.SeedSequence([int(k) for k in keys]).generate_state(2, np.uint32)
    return int((int(state[0]) << 32 | int(state[1])) & SEED_HIGH)


def derive_seed32(*keys: int) -> int:
    """A 32-bit seed from integer keys (NumPy SeedSequence hashing)."""
    return int(np.random.SeedSequence([int(k) for k in keys]).generate_state(1)[0])


def draw_seed(rng: np.random.Generator) -> int:
    """A 63-bit seed for an apply step's own generator, drawn from the caller's generator."""
    return int(rng.integers(0, SEED_HIGH))


def example_seed(spec_seed: int, index: int) -> int:
    """The seed of example ``index`` of a dataset with seed ``spec_seed``."""
    return derive_seed(spec_seed, index)


__all__ = ["SEED_HIGH", "derive_seed", "derive_seed32", "draw_seed", "example_seed"]
