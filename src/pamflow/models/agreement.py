"""How well a metric's outputs agree with labels, as plain functions of arrays: ROC AUC,
the best threshold's accuracy, 2AFC accuracy, Spearman and Pearson correlations,
monotonicity within sequences, precision@K of a retrieval, and percentile bootstrap
intervals of any of them. :mod:`pamflow.models.evaluate` and the models' own
evaluations (``ModelEntry.evaluators``) read them."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats


def roc_auc(scores: ArrayLike, labels: ArrayLike) -> float | None:
    """ROC AUC of ``scores`` for detecting label 1, by the Mann-Whitney rank statistic
    (average ranks, so a tie between a positive and a negative counts 1/2). None unless both
    classes occur."""
    s, y = np.asarray(scores, dtype=float), np.asarray(labels).astype(bool)
    n1, n0 = int(y.sum()), int((~y).sum())
    if n1 == 0 or n0 == 0:
        return None
    ranks = stats.rankdata(s)
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def best_threshold_accuracy(scores: ArrayLike, labels: ArrayLike) -> tuple[float, float]:
    """The best accuracy of ``score > threshold`` as a predictor of label 1, and the threshold
    (midway between neighbouring scores; below all of them when predicting 1 everywhere)."""
    s, y = np.asarray(scores, dtype=float), np.asarray(labels).astype(int)
    if s.size == 0:
        raise ValueError("best_threshold_accuracy: no rows")
    u = np.unique(s)
    cuts = np.concatenate([[u[0] - 1.0], (u[:-1] + u[1:]) / 2, [u[-1] + 1.0]])
    accs = [float(np.mean((s > c).astype(int) == y)) for c in cuts]
    k = int(np.argmax(accs))
    return accs[k], float(cuts[k])


def two_afc_accuracy(d_a: ArrayLike, d_b: ArrayLike, labels: ArrayLike) -> float:
    """2AFC accuracy: 1 when the nearer of A and B (smaller distance) is the labelled one
    (0 = A, 1 = B), 1/2 on a tie."""
    a, b, y = (np.asarray(v, dtype=float) for v in (d_a, d_b, labels))
    picked_b = np.where(b < a, 1.0, np.where(b > a, 0.0, 0.5))
    return float(np.mean(np.where(y == 1, picked_b, 1.0 - picked_b)))


def spearman(x: ArrayLike, y: ArrayLike) -> float | None:
    """Spearman's rho, or None when undefined (fewer than 3 points or a constant input)."""
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if a.size < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    return float(stats.spearmanr(a, b).statistic)


def pearson(x: ArrayLike, y: ArrayLike) -> float | None:
    """Pearson's r, or None when undefined (fewer than 3 points or a constant input)."""
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if a.size < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    return float(stats.pearsonr(a, b).statistic)


def monotonicity(
    distance: ArrayLike, strength: ArrayLike, sequence: Sequence[Hashable], axis: Sequence[str]
) -> dict[str, Any]:
    """Spearman of distance against strength within each sequence: the mean over sequences,
    the mean per axis (``axis`` holds one name a row, e.g. "pink_noise+mp3"), and counts."""
    groups: dict[Hashable, list[int]] = defaultdict(list)
    for i, s in enumerate(sequence):
        groups[s].append(i)
    d, rho = np.asarray(distance, dtype=float), np.asarray(strength, dtype=float)
    per_axis: dict[str, list[float]] = defaultdict(list)
    values = []
    for rows in groups.values():
        r = spearman(rho[rows], d[rows])
        if r is not None:
            values.append(r)
            per_axis[axis[rows[0]]].append(r)
    return {
        "mean": float(np.mean(values)) if values else None,
        "sequences": len(values),
        "per_axis": {a: float(np.mean(v)) for a, v in sorted(per_axis.items())},
    }


def precision_at_k(distances: ArrayLike, labels: ArrayLike, k: int) -> np.ndarray:
    """Per query (each row of the ``[N, N]`` distance matrix), the share of its ``k``
    nearest *other* items that have its label: the retrieval's precision@K (the mean over
    queries is the papers' MP@K). Ties in distance are broken by index."""
    d = np.array(distances, dtype=float)
    y = np.asarray(labels)
    n = len(y)
    if d.shape != (n, n):
        raise ValueError(f"precision_at_k: distances {d.shape} for {n} labels")
    if not 1 <= k < n:
        raise ValueError(f"precision_at_k: need 1 <= k < {n} items, got k={k}")
    np.fill_diagonal(d, np.inf)
    nearest = np.argsort(d, axis=1, kind="stable")[:, :k]
    return np.mean(y[nearest] == y[:, None], axis=1)


def bootstrap_ci(
    statistic: Callable[[np.ndarray], float | None],
    n: int,
    *,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float] | None:
    """Percentile bootstrap interval of ``statistic(rows)``: ``n_boot`` resamples of the
    ``n`` row indices with replacement (one generator seeded by ``seed``, so the interval is
    reproducible); resamples where the statistic is undefined (None or NaN) are skipped.
    ``(low, high)`` at ``level``, or None when fewer than half the resamples are defined."""
    if n < 1:
        return None
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_boot):
        v = statistic(rng.integers(0, n, n))
        if v is not None and np.isfinite(v):
            values.append(float(v))
    if len(values) < n_boot / 2:
        return None
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


__all__ = [
    "best_threshold_accuracy",
    "bootstrap_ci",
    "precision_at_k",
    "monotonicity",
    "pearson",
    "roc_auc",
    "spearman",
    "two_afc_accuracy",
]
