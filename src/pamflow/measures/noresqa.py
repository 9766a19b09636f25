"""NORESQA's label math (paper 003, section 3.3), in numpy: the one source of truth.

The ``nmr`` recipe stores bins with it and :mod:`pamflow.models.losses` wraps it as tensors.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def delta_bins(delta: Any, num_classes: int = 40, delta_max: float = 40.0) -> np.ndarray:
    """Class index (0-based, int64) of ``|Δ|`` in dB: bin ``k`` holds
    ``[k Δmax/K, (k+1) Δmax/K)``; values at or above ``Δmax`` go to the last class."""
    if num_classes < 1 or delta_max <= 0:
        raise ValueError(
            f"delta_bins: need num_classes >= 1 and delta_max > 0, got {num_classes}, {delta_max}"
        )
    d = np.abs(np.asarray(delta, dtype=np.float64))
    if not np.all(np.isfinite(d)):
        raise ValueError("delta_bins: Δ must be finite (mask undefined rows instead)")
    idx = np.floor(d * (num_classes / delta_max)).astype(np.int64)
    return np.clip(idx, 0, num_classes - 1)


def smoothed_targets(idx: Any, num_classes: int = 40) -> np.ndarray:
    """NORESQA's smoothed labels (eq. 4), float32 ``[..., K]``: 0.6 on the class, 0.2 on each
    neighbour; at the first and last class (one neighbour) renormalised to 0.75 / 0.25."""
    idx = np.asarray(idx, dtype=np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= num_classes):
        raise ValueError(
            f"smoothed_targets: class indices must lie in [0, {num_classes}), "
            f"got {idx.min()}..{idx.max()}"
        )
    k = np.arange(num_classes)
    gap = np.abs(k - idx[..., None])
    t = np.where(gap == 0, 0.6, np.where(gap == 1, 0.2, 0.0))
    return (t / t.sum(-1, keepdims=True)).astype(np.float32)


def bin_centres(num_classes: int = 40, delta_max: float = 40.0) -> np.ndarray:
    """Centres ``(k + 1/2) Δmax / K`` (dB) of the bins (the paper's μ_k, eq. 6)."""
    return (np.arange(num_classes) + 0.5) * (delta_max / num_classes)
