"""Figures with their sample size, a bootstrap interval and baselines beside them.

:func:`pamflow.models.evaluate.evaluate` calls :func:`attach` for every dataset kind it
scores: each headline figure becomes ``{"value", "ci95", "n", "baselines"}``, where
``ci95`` is the percentile bootstrap interval over rows (1000 resamples, seed 0;
:func:`pamflow.models.agreement.bootstrap_ci`) and each baseline (log-spectral distance,
multi-resolution STFT distance, SI-SDR and, where the ``pesq`` package is installed, PESQ:
:mod:`pamflow.measures.baselines`) gets its own figure and interval on the same rows, the
paired bootstrap interval of ``metric - baseline`` and a ``verdict``: ``"metric better"``
or ``"baseline better"`` when that interval excludes 0, else ``"not distinguishable"``.

- ``jnd``: ROC AUC of the distance (labelled rows); the baselines' distances likewise.
- ``triplet``: 2AFC accuracy (rows kept by ``min_agreement``).
- ``nmr``: preference accuracy and the Δ SI-SDR error (MAE, dB). The baselines are
  *full-reference*: each side scored against its own clean clip (``a_clean``,
  ``b_clean``), which NORESQA never sees; SI-SDR so scored defines the label (100 % by
  construction). The Δ error's baseline is the constant guess (the rows' mean |Δ|).
- ``mos``: Spearman of the negated distance with the MOS.
- ``levels`` (:func:`levels_evaluator`, declared by the models with an embedding):
  precision@K of quality-based retrieval (NORESQA 4.1, CDPAM 5: MP@K) from the cosine
  distance of the model's quality embedding (NORESQA: its temporal block's output, meaned
  over frames; CDPAM: the acoustic half), against the baselines on the clips' long-term
  spectra (LSD, multi-resolution) and the pairwise SI-SDR.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from pamflow.measures import baselines as bl
from pamflow.models.agreement import bootstrap_ci, precision_at_k, roc_auc, spearman
from pamflow.models.base import MetricModel
from pamflow.models.training.data import BatchCollate, epoch_batches, open_rows

#: K of the retrieval's precision@K (the papers report 10 and 25 / 20)
RETRIEVAL_K = (10, 25)
#: the audio each kind's baselines compare: (reference, test) pairs of columns
PAIRS: dict[str, tuple[tuple[str, str], ...]] = {
    "jnd": (("reference", "perturbed"),),
    "triplet": (("reference", "a"), ("reference", "b")),
    "nmr": (("a_clean", "a"), ("b_clean", "b")),
}

Stat = Callable[[np.ndarray], "float | None"]


def _ci(stat: Stat, n: int) -> list[float] | None:
    ci = bootstrap_ci(stat, n)
    return None if ci is None else [ci[0], ci[1]]


def figure(
    stat: Stat, n: int, baselines: Mapping[str, Stat] | None = None, *, higher: bool = True
) -> dict[str, Any]:
    """``stat`` over all ``n`` rows with its interval and, per baseline statistic on the same
    rows, its value, interval, the paired interval of the difference and the verdict
    (``higher``: whether a larger value is better)."""
    every = np.arange(n)
    out: dict[str, Any] = {"value": stat(every), "ci95": _ci(stat, n), "n": n}
    if baselines is None:
        return out
    out["baselines"] = {}
    for name, base in baselines.items():

        def diff(idx: np.ndarray, base: Stat = base) -> float | None:
            a, b = stat(idx), base(idx)
            return None if a is None or b is None else a - b

        d_ci = _ci(diff, n)
        verdict = "not distinguishable"
        if d_ci is not None and (d_ci[0] > 0 or d_ci[1] < 0):
            verdict = "metric better" if (d_ci[0] > 0) == higher else "baseline better"
        out["baselines"][name] = {
            "value": base(every),
            "ci95": _ci(base, n),
            "difference_ci95": d_ci,
            "verdict": verdict,
        }
    return out


# -- baselines on the evaluated rows -------------------------------------------------------


def baseline_rows(
    kind: str,
    paths: Sequence[str],
    *,
    sample_rate: int,
    split: Any,
    train_cfg: Mapping[str, Any],
    clip_seconds: float | None,
    pesq: bool | None = None,
) -> dict[str, np.ndarray]:
    """``name -> [rows, pairs]`` baseline distances over the rows ``run_rows`` reads (same
    split, order and centre crops), one column per pair of :data:`PAIRS`."""
    audio = tuple(dict.fromkeys(c for pair in PAIRS[kind] for c in pair))
    rows = open_rows(
        paths,
        audio=audio,
        columns=(),
        sample_rate=sample_rate,
        split=split,
        eval_fraction=train_cfg.get("eval_fraction", 0.0),
        split_key=train_cfg.get("split_key"),
    )
    length = None if clip_seconds is None else round(clip_seconds * sample_rate)
    collate = BatchCollate(length, audio, "center")
    fns = bl.baseline_distances(sample_rate, pesq=pesq)
    out = {name: np.zeros((len(rows), len(PAIRS[kind]))) for name in fns}
    for i in range(len(rows)):
        item = collate([rows[i]])
        for j, (ref, test) in enumerate(PAIRS[kind]):
            x, y = item[ref][0].numpy(), item[test][0].numpy()
            for name, fn in fns.items():
                out[name][i, j] = fn(x, y)
    return out


def _auc(d: np.ndarray, y: np.ndarray) -> Stat:
    return lambda idx: roc_auc(d[idx], y[idx])


def _mean(v: np.ndarray) -> Stat:
    return lambda idx: float(np.mean(v[idx]))


def _rho(d: np.ndarray, mos: np.ndarray) -> Stat:
    return lambda idx: spearman(-d[idx], mos[idx])


def _choice(d_a: np.ndarray, d_b: np.ndarray, label: np.ndarray) -> np.ndarray:
    """Per row, 1 when the nearer of A and B is the labelled one, 1/2 on a tie."""
    picked_b = np.where(d_b < d_a, 1.0, np.where(d_b > d_a, 0.0, 0.5))
    return np.where(label == 1, picked_b, 1.0 - picked_b)


def attach(
    kind: str,
    result: dict[str, Any],
    out: Mapping[str, list],
    base: Mapping[str, np.ndarray] | None,
) -> None:
    """Add the headline figure(s) of ``kind`` with intervals and baselines to ``result``
    (``out``: :func:`pamflow.models.evaluate.run_rows`' columns; ``base``:
    :func:`baseline_rows`, or None for intervals alone)."""
    if kind == "jnd":
        keep = np.array([v is not None for v in out["label"]], dtype=bool)
        y = np.array([0 if v is None else v for v in out["label"]])[keep]
        d = np.asarray(out["d"], dtype=float)[keep]
        bases = None if base is None else {k: _auc(v[keep, 0], y) for k, v in base.items()}
        result["auc_figure"] = figure(_auc(d, y), len(y), bases)
    elif kind == "triplet":
        keep = np.array([v is not None for v in out["label"]], dtype=bool)
        if result.get("min_agreement") is not None:
            agree = [-np.inf if a is None else a for a in out["agreement"]]
            keep &= np.asarray(agree, dtype=float) >= result["min_agreement"]
        y = np.array([0 if v is None else v for v in out["label"]])[keep]
        hit = _choice(np.asarray(out["d_a"])[keep], np.asarray(out["d_b"])[keep], y)
        bases = None
        if base is not None:
            bases = {k: _mean(_choice(v[keep, 0], v[keep, 1], y)) for k, v in base.items()}
        result["accuracy_figure"] = figure(_mean(hit), len(y), bases)
    elif kind == "nmr":
        label = np.asarray(out["preference"])
        hit = (np.asarray(out["pref"]) == label).astype(float)
        bases = None
        if base is not None:  # full reference: the side nearer its own clean is preferred
            bases = {
                k: _mean((np.where(v[:, 0] <= v[:, 1], 0, 1) == label).astype(float))
                for k, v in base.items()
            }
        result["preference_figure"] = figure(_mean(hit), len(label), bases)
        truth = np.abs(np.asarray(out["a_sisdr"], float) - np.asarray(out["b_sisdr"], float))
        err = np.abs(np.asarray(out["sisdr"], float) - truth)
        guess = np.abs(truth - truth.mean())
        result["sisdr_error_figure"] = figure(
            _mean(err), len(err), {"constant": _mean(guess)}, higher=False
        )


def mos_figure(
    dist: Sequence[float], mos: Sequence[float], base: Mapping[str, Sequence[float]] | None
) -> dict[str, Any]:
    """Spearman of the negated distance with MOS, interval and baselines (see :func:`attach`)."""
    d, m = np.asarray(dist, dtype=float), np.asarray(mos, dtype=float)
    bases = None if base is None else {k: _rho(np.asarray(v, float), m) for k, v in base.items()}
    return figure(_rho(d, m), len(m), bases)


# -- quality-based retrieval (levels datasets) ---------------------------------------------


@torch.no_grad()
def quality_embedding(model: MetricModel, x: torch.Tensor) -> torch.Tensor:
    """``[B, D]`` unit-norm quality embedding: ``model.embed(x)``, its first part where it
    returns several (CDPAM: acoustic, content), meaned over frames where it has them
    (NORESQA's ``[B, C, frames]``)."""
    e = model.embed(x)  # type: ignore[attr-defined]
    if isinstance(e, tuple):
        e = e[0]
    if e.dim() == 3:
        e = e.mean(dim=2)
    return F.normalize(e.reshape(e.shape[0], -1).double(), dim=1)


def levels_evaluator(
    model: MetricModel,
    paths: Sequence[str],
    *,
    split: Any,
    train_cfg: Mapping[str, Any],
    batch_size: int,
    device: torch.device,
    clip_seconds: float | None,
    figures: Path | None = None,
    baselines: bool = True,
) -> dict[str, Any]:
    """Precision@K (:data:`RETRIEVAL_K`, those below the row count) of retrieving clips of
    the query's level from the model's quality embedding, with intervals over queries and
    the baselines' retrievals (see the module docstring). ``figures``: none drawn."""
    sr = model.config.sample_rate
    rows = open_rows(
        paths,
        audio=("audio",),
        columns=("level",),
        sample_rate=sr,
        split=split,
        eval_fraction=train_cfg.get("eval_fraction", 0.0),
        split_key=train_cfg.get("split_key"),
    )
    length = None if clip_seconds is None else round(clip_seconds * sr)
    collate = BatchCollate(length, ("audio",), "center")
    emb, clips, levels = [], [], []
    for keys in epoch_batches(
        len(rows), batch_size, seed=0, epoch=0, shuffle=False, drop_last=False
    ):
        batch = collate([rows[k] for k in keys])
        emb.append(quality_embedding(model, batch["audio"].to(device)).cpu())
        clips += list(batch["audio"].numpy())
        levels += batch["level"].tolist()
    n, y = len(levels), np.asarray(levels)
    result: dict[str, Any] = {"n": n, "levels": len(set(levels))}
    if n < 2:
        return result
    e = torch.cat(emb).numpy()
    dists = {"metric": 1.0 - e @ e.T}
    if baselines:
        stack = np.stack(clips)
        dists |= {
            "lsd": bl.pairwise_lsd(stack),
            "mrstft": bl.pairwise_mrstft(stack),
            "sisdr": bl.pairwise_sisdr(stack),
        }
    for k in RETRIEVAL_K:
        if k >= n:
            continue
        per = {name: precision_at_k(d, y, k) for name, d in dists.items()}
        bases = {name: _mean(p) for name, p in per.items() if name != "metric"}
        result[f"precision_at_{k}"] = figure(_mean(per["metric"]), n, bases if baselines else None)
    return result
