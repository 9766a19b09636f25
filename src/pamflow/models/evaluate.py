"""Evaluating a trained metric on pamflow datasets and MOS lists.

``evaluate(ckpt, data, mos_csv=..., min_agreement=...)`` scores the model on each dataset
by its kind (told by its columns) and returns a JSON-able dict:

- ``jnd`` (``reference``, ``perturbed``, ``label``, ``strength``, ``axis``, ``sequence``):
  ``auc``, the ROC AUC of the distance ``d(reference, perturbed)`` as a detector of label
  1 ("different"), by the rank statistic (ties count one half); ``accuracy``, the model's own
  JND classifier (DPAM, CDPAM; None for others); ``best_threshold_accuracy`` and its
  ``threshold`` on the distance. ``monotonicity``: the Spearman correlation of distance with
  strength within each ``sequence`` (one reference, one axis), as the mean over sequences and
  the mean per axis (axis families joined by "+"); sequences of fewer than 3 rows or a
  constant strength or distance are left out. Unlabelled rows count for monotonicity only.
  ``simulated_listener`` (rows labelled by a simulated listener, which record its
  ``distance`` and parameters): how predictable the labels are at all, to read the model's
  figures against. ``distance_auc`` and ``distance_best_threshold_accuracy``: the listener's
  own distance as a detector, with the threshold that suits these rows best (what a model
  that knew the listener's distance but not the listener would reach); ``expected_accuracy``:
  the mean over rows of ``max(p, 1 - p)``, ``p`` the row listener's probability of answering
  "different" (an ideal predictor that also knows which listener answered).
- ``triplet`` (``reference``, ``a``, ``b``, ``label`` 0 = A closer): ``accuracy``, the 2AFC
  accuracy (the nearer of A and B is the labelled one; a tie scores one half), over rows with
  ``agreement >= min_agreement`` when given.
- ``nmr`` (models trained on ``nmr`` data, NORESQA; ``a``, ``b``, ``preference``, ``a_sisdr``, ``b_sisdr``, SNRs):
  ``preference_accuracy`` of the preference head on ``model(a, b)``; ``sisdr_mae_db``, the mean
  absolute error of the score (predicted ``|Δ SI-SDR|``) against ``|a_sisdr - b_sisdr|``;
  ``snr_mae_db`` likewise from the SNR head where both SNRs are defined.
- ``mos`` (the MOS CSV of docs/formats.md): ``spearman`` and ``pearson`` between the
  *negated* distance and the MOS (higher is better for any metric), over ``n`` pairs.

Other recipes are evaluated by the models whose registry entry declares an evaluator for
them (``ModelEntry.evaluators``: recipe -> function), e.g. the scorer on ``domain`` datasets,
NORESQA and CDPAM on ``levels`` datasets (quality-based retrieval, :mod:`pamflow.models.measured`).

Every headline figure (jnd AUC, triplet 2AFC accuracy, nmr preference accuracy and Δ
error, mos Spearman) also comes as ``<name>_figure``: its sample size, a bootstrap
interval, and the baselines (LSD, multi-resolution STFT, SI-SDR, PESQ where installed)
computed on the same rows with their intervals and verdicts (:mod:`pamflow.models.measured`;
``baselines=False`` leaves the baselines out).

The distance of a pair is ``model.distance(test, reference)``, the interface every
registered model answers (for NORESQA its score against the one reference).
"""

from __future__ import annotations

import csv
import inspect
import json
import math
import os
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import torch
from torch import Tensor

from pamflow.audio import load as load_audio
from pamflow.datasets import get_recipe, recipe_names
from pamflow.measures import baselines as bl
from pamflow.models import measured, registry
from pamflow.models.agreement import (
    best_threshold_accuracy,
    monotonicity,
    pearson,
    roc_auc,
    spearman,
    two_afc_accuracy,
)
from pamflow.models.base import MetricModel, NMRHeads, is_model
from pamflow.models.checkpoint import load_checkpoint
from pamflow.models.training.data import (
    BatchCollate,
    Split,
    epoch_batches,
    float_column,
    open_rows,
    to_device,
)
from pamflow.storage import Dataset

#: the recipes any model is evaluated on, through ``distance`` alone; ``nmr`` evaluates models
#: trained on it (NORESQA's heads), other recipes the models whose registry entry declares an
#: evaluator for them (``ModelEntry.evaluators``)
BY_DISTANCE = ("jnd", "triplet")

#: columns the evaluations read when a dataset has them (monotonicity, the simulated
#: listener's reference figures, minimum agreement, the SNR head)
USED_IF_PRESENT = (
    "strength",
    "axis",
    "sequence",
    "distance",
    "params",
    "agreement",
    "a_snr",
    "b_snr",
)


# -- running the model -----------------------------------------------------------------------


def pair_distance(model: MetricModel, reference: Tensor, test: Tensor) -> Tensor:
    """Distance ``[B]`` of ``test`` from ``reference``: every registered model answers
    ``distance(test, reference)``."""
    return model.distance(test, reference)


def _entry(model: MetricModel) -> registry.ModelEntry | None:
    """``model``'s registry entry (None for an unregistered model)."""
    try:
        return registry.entry_of(model)
    except TypeError:
        return None


def kind_of(ds: Dataset) -> str:
    """The dataset's recipe, when the recipe declares columns a metric is evaluated on
    (``evaluated_on``: jnd, triplet, nmr) and the dataset has them and its labels."""
    recipe = get_recipe(ds.recipe)
    evaluable = [n for n in recipe_names() if get_recipe(n).evaluated_on]
    if not recipe.evaluated_on:
        raise ValueError(
            f"{ds.url}: cannot evaluate a metric on a {ds.recipe!r} dataset; "
            f"datasets of {', '.join(evaluable)} evaluate metrics"
        )
    missing = sorted(set(recipe.evaluated_on + recipe.label_columns) - set(ds.schema.names))
    if missing:
        raise ValueError(f"{ds.url}: a {ds.recipe!r} dataset without column(s) {missing}")
    return ds.recipe


@torch.no_grad()
def run_rows(
    model: MetricModel,
    paths: Sequence[str],
    kind: str,
    *,
    split: Split,
    train_cfg: Mapping[str, Any],
    batch_size: int,
    device: torch.device,
    clip_seconds: float | None,
) -> defaultdict[str, list[Any]]:
    """The model's outputs and the label columns over every row of the ``kind`` datasets."""
    recipe = get_recipe(kind)
    audio, columns = recipe.evaluated_on, recipe.label_columns
    ds0 = [Dataset.open(str(p)) for p in paths]
    optional = [c for c in USED_IF_PRESENT if all(c in d.schema.names for d in ds0)]
    sr = model.config.sample_rate
    rows = open_rows(
        paths,
        audio=audio,
        columns=(*columns, *optional),
        sample_rate=sr,
        split=split,
        eval_fraction=train_cfg.get("eval_fraction", 0.0),
        split_key=train_cfg.get("split_key"),
    )
    length = None if clip_seconds is None else round(clip_seconds * sr)
    collate = BatchCollate(length, audio, "center")
    out: defaultdict[str, list[Any]] = defaultdict(list)
    for keys in epoch_batches(
        len(rows), batch_size, seed=0, epoch=0, shuffle=False, drop_last=False
    ):
        batch = to_device(collate([rows[k] for k in keys]), device)
        if kind == "jnd":
            d = pair_distance(model, batch["reference"], batch["perturbed"])
            out["d"] += d.tolist()
            if hasattr(model, "classify_distance"):  # DPAM, CDPAM: their own JND classifier
                out["pred"] += model.classify_distance(d).argmax(1).tolist()
        elif kind == "triplet":
            out["d_a"] += pair_distance(model, batch["reference"], batch["a"]).tolist()
            out["d_b"] += pair_distance(model, batch["reference"], batch["b"]).tolist()
        else:  # nmr: evaluate() takes these only for a model trained on nmr data (NORESQA)
            nmr = cast(NMRHeads, model)
            o = nmr(batch["a"], batch["b"])
            out["pref"] += o["pref_logits"].argmax(1).tolist()
            out["sisdr"] += (o["sisdr_probs"] @ nmr.centres).tolist()
            out["snr"] += (o["snr_probs"] @ nmr.centres).tolist()
        for c in (*columns, *optional):
            v = batch[c]
            out[c] += v.tolist() if isinstance(v, Tensor) else list(v)
    return out


def jnd_metrics(out: dict) -> dict[str, Any]:
    d = np.asarray(out["d"], dtype=float)
    labelled = np.array([v is not None for v in out["label"]], dtype=bool)
    y = np.array([v if v is not None else -1 for v in out["label"]])[labelled]
    res: dict[str, Any] = {"n": len(d), "n_labelled": int(labelled.sum())}
    res["auc"] = roc_auc(d[labelled], y) if labelled.any() else None
    res["accuracy"] = (
        float(np.mean(np.asarray(out["pred"])[labelled] == y))
        if out["pred"] and labelled.any()
        else None
    )
    if labelled.any():
        res["best_threshold_accuracy"], res["threshold"] = best_threshold_accuracy(d[labelled], y)
    if out["strength"]:
        sequence = out["sequence"] or ["+".join(a) for a in out["axis"]]
        axis = ["+".join(a) for a in out["axis"]] if out["axis"] else ["all"] * len(d)
        strength = [np.nan if s is None else s for s in out["strength"]]
        res["monotonicity"] = monotonicity(d, strength, sequence, axis)
    if out["distance"]:
        res["simulated_listener"] = listener_reference(out["label"], out["distance"], out["params"])
    return res


def listener_reference(labels: list, distances: list, params: list) -> dict[str, Any] | None:
    """How well the simulated listener's own distance and psychometric function predict the
    labels of the rows that carry them (see the module docstring); None when no row does."""
    from pamflow.datasets.listener import SimulatedListener

    y, dist, p = [], [], []
    for label, distance, param in zip(
        labels, distances, params or [None] * len(labels), strict=True
    ):
        if label is None or distance is None or not math.isfinite(distance):
            continue
        y.append(int(label))
        dist.append(float(distance))
        info = json.loads(param) if isinstance(param, str) else param
        spec = (info or {}).get("listener")
        p.append(SimulatedListener.from_dict(spec).p_different(distance) if spec else math.nan)
    if not y:
        return None
    acc, threshold = best_threshold_accuracy(dist, y)
    probs = np.asarray(p, dtype=float)
    known = np.isfinite(probs)
    return {
        "n": len(y),
        "distance_auc": roc_auc(dist, y),
        "distance_best_threshold_accuracy": acc,
        "distance_threshold": threshold,
        "expected_accuracy": (
            float(np.mean(np.maximum(probs[known], 1 - probs[known]))) if known.any() else None
        ),
    }


def triplet_metrics(out: dict, min_agreement: float | None) -> dict[str, Any]:
    keep = np.array([v is not None for v in out["label"]], dtype=bool)
    if min_agreement is not None:
        if not out["agreement"]:
            raise ValueError("min_agreement: the triplet datasets have no 'agreement' column")
        agree = np.array([-np.inf if a is None else a for a in out["agreement"]], dtype=float)
        keep &= agree >= min_agreement
    pick = np.flatnonzero(keep)
    y = [out["label"][i] for i in pick]
    acc = (
        two_afc_accuracy(np.take(out["d_a"], pick), np.take(out["d_b"], pick), y)
        if len(pick)
        else None
    )
    return {"n": int(len(pick)), "accuracy": acc, "min_agreement": min_agreement}


def nmr_metrics(out: dict) -> dict[str, Any]:
    pref = np.asarray(out["pref"])
    d_sdr = (float_column(out["a_sisdr"]) - float_column(out["b_sisdr"])).abs().numpy()
    res = {
        "n": len(pref),
        "preference_accuracy": float(np.mean(pref == np.asarray(out["preference"]))),
        "sisdr_mae_db": float(np.mean(np.abs(np.asarray(out["sisdr"]) - d_sdr))),
        "snr_mae_db": None,
        "n_snr": 0,
    }
    if out["a_snr"]:
        d_snr = (float_column(out["a_snr"]) - float_column(out["b_snr"])).abs().numpy()
        ok = np.isfinite(d_snr)
        res["n_snr"] = int(ok.sum())
        if ok.any():
            res["snr_mae_db"] = float(np.mean(np.abs(np.asarray(out["snr"])[ok] - d_snr[ok])))
    return res


@torch.no_grad()
def mos_metrics(
    model: MetricModel, mos_csv: str | os.PathLike, device: torch.device, baselines: bool = True
) -> dict:
    """Correlations of the negated distance with MOS over the pairs of ``mos_csv``."""
    path = Path(mos_csv)
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        lines = [(reader.line_num, r) for r in reader if r and any(c.strip() for c in r)]
    for number, row in lines or [(0, [])]:
        if len(row) < 3:
            where = f"line {number}" if number else "no rows"
            raise ValueError(f"{path}: {where}: need reference path, test path, MOS")
    try:
        float(lines[0][1][2])
    except ValueError:
        lines = lines[1:]  # a header: its MOS column is not a number
    sr, dist, mos = model.config.sample_rate, [], []
    fns = bl.baseline_distances(sr) if baselines else {}
    base: dict[str, list[float]] = {name: [] for name in fns}
    for number, row in lines:
        if not re.fullmatch(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*", row[2]):
            raise ValueError(f"{path}: line {number}: MOS {row[2]!r} is not a number")
        score = float(row[2])
        ref_p, test_p = (
            p if os.path.isabs(p) else str(path.parent / p)
            for p in (row[0].strip(), row[1].strip())
        )
        ref, _ = load_audio(ref_p, sample_rate=sr)
        test, _ = load_audio(test_p, sample_rate=sr)
        n = min(len(ref), len(test))
        pair = [torch.from_numpy(a[:n])[None].to(device) for a in (ref, test)]
        dist.append(float(pair_distance(model, *pair)[0]))
        mos.append(score)
        for name, fn in fns.items():
            base[name].append(fn(ref[:n], test[:n]))
    neg = [-d for d in dist]
    return {
        "n": len(mos),
        "spearman": spearman(neg, mos),
        "pearson": pearson(neg, mos),
        "spearman_figure": measured.mos_figure(dist, mos, base if baselines else None),
    }


def evaluate(
    ckpt: str | os.PathLike | MetricModel,
    data: Sequence[str] = (),
    *,
    mos_csv: str | os.PathLike | None = None,
    min_agreement: float | None = None,
    device: str = "cpu",
    batch_size: int = 16,
    clip_seconds: float | None = None,
    split: Literal["all", "eval"] = "all",
    figures: str | os.PathLike | None = None,
    baselines: bool = True,
) -> dict[str, Any]:
    """Evaluate the metric in checkpoint ``ckpt`` (or a model: anything with
    ``config.sample_rate`` whose ``distance(test, reference)`` returns distances ``[B]``) on
    the datasets ``data`` (grouped by kind) and the MOS list ``mos_csv``; see the module
    docstring for the metrics. Audio is resampled to the model's rate; ``clip_seconds`` crops
    the centre of every row (whole rows by default). ``split="eval"`` keeps only the rows
    the training run in ``ckpt`` held out (its ``eval_fraction`` and ``split_key``).
    ``figures``: a folder where a model's own evaluators draw their figures (PNG).
    ``baselines``: compute the baselines beside each figure (False: intervals only)."""
    train_cfg: dict[str, Any] = {}
    if is_model(ckpt):  # an nn.Module, else a checkpoint path
        model = ckpt
    else:
        model = registry.load_model(ckpt)
        train_cfg = load_checkpoint(ckpt).get("extra", {}).get("train_config", {})
    if split == "eval" and not train_cfg.get("eval_fraction"):
        raise ValueError("split='eval' needs a training checkpoint that held rows out")
    dev = torch.device(device)
    model = model.to(dev).eval()
    by_kind: dict[str, list[str]] = defaultdict(list)
    for p in data:
        by_kind[kind_of(Dataset.open(str(p)))].append(str(p))
    entry = _entry(model)
    trained = entry.recipes if entry else ()
    own = dict(entry.evaluators) if entry else {}  # recipes the model evaluates itself
    for kind, paths in by_kind.items():
        if kind not in (*BY_DISTANCE, *own) and not (kind == "nmr" and kind in trained):
            raise ValueError(
                f"{paths}: {kind} datasets evaluate models trained on {kind} "
                f"data only ({[n for n in registry.names() if kind in registry.get(n).recipes]})"
            )
    results: dict[str, Any] = {
        "model": type(model).__name__,
        "sample_rate": model.config.sample_rate,
    }
    for kind, paths in by_kind.items():
        if kind in own:  # e.g. the scorer on domain datasets (its entry's evaluators)
            takes = inspect.signature(own[kind]).parameters  # levels: baselines=
            results[kind] = own[kind](
                model,
                paths,
                split=split,
                train_cfg=train_cfg,
                batch_size=batch_size,
                device=dev,
                clip_seconds=clip_seconds,
                figures=None if figures is None else Path(figures),
                **({"baselines": baselines} if "baselines" in takes else {}),
            )
            results[kind]["datasets"] = paths
            continue
        out = run_rows(
            model,
            paths,
            kind,
            split=split,
            train_cfg=train_cfg,
            batch_size=batch_size,
            device=dev,
            clip_seconds=clip_seconds,
        )
        if kind == "jnd":
            results["jnd"] = jnd_metrics(out)
        elif kind == "triplet":
            results["triplet"] = triplet_metrics(out, min_agreement)
        else:
            results["nmr"] = nmr_metrics(out)
        base = None
        if baselines:
            base = measured.baseline_rows(
                kind,
                paths,
                sample_rate=model.config.sample_rate,
                split=split,
                train_cfg=train_cfg,
                clip_seconds=clip_seconds,
            )
        measured.attach(kind, results[kind], out, base)
        results[kind]["datasets"] = paths
    if mos_csv is not None:
        results["mos"] = {**mos_metrics(model, mos_csv, dev, baselines), "csv": str(mos_csv)}
    return results


def format_table(results: dict[str, Any]) -> str:
    """A short text table of the numbers in ``results``, one line a metric (dotted names)."""
    rows: list[tuple[str, str]] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}", v)
        elif isinstance(value, int) and not isinstance(value, bool):
            rows.append((prefix, f"{value:d}"))
        elif isinstance(value, float) and math.isfinite(value):
            rows.append((prefix, f"{value:.4g}"))
        elif prefix.endswith(".verdict"):
            rows.append((prefix, str(value)))
        elif prefix.endswith("ci95") and isinstance(value, list):
            rows.append((prefix, "[" + ", ".join(f"{v:.4g}" for v in value) + "]"))

    for key, value in results.items():
        if isinstance(value, dict):
            walk(key, value)
    width = max([len("metric"), *(len(name) for name, _ in rows)])
    lines = [f"{'metric':<{width}}  {'value':>10}"]
    lines += [f"{name:<{width}}  {value:>10}" for name, value in rows]
    return "\n".join(lines)
