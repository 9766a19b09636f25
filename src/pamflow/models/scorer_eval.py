"""The scorer's evaluation on ``domain`` datasets: the evaluator its registry entry declares
(:mod:`pamflow.models.training.scorer`), so ``pamflow eval CKPT --data DOMAIN`` and the
training flow run it.

Over the rows of the scorer's two domains (``--split eval``: the recordings its training
held out), each scored whole (3-s clips) or centre-cropped to ``clip_seconds``:
``accuracy`` (a clip is right when its score is on its domain's side of 0.5), the
``confusion`` matrix (true domain -> predicted domain -> clips), ``auc`` (the score as a
detector of ``domains[1]``), the ``mean_score`` of each domain, and ``recordings``, how
many recordings the clips come from (clips of one recording overlap). With ``figures``,
``scorer-saliency.png`` shows two clips of each domain: the spectrogram over the
scorer's class-activation map (paper Fig. 3; red: heard as cheap, blue: as good).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from pamflow.models.agreement import roc_auc
from pamflow.models.base import MetricModel
from pamflow.models.scorer import Scorer, db_per_neper
from pamflow.models.training.data import (
    BatchCollate,
    RowFilter,
    Split,
    epoch_batches,
    open_rows,
    to_device,
)

#: clips of each domain the saliency figure shows
SHOWN = 2


def in_domains(domains: Sequence[str]) -> RowFilter:
    """A row filter keeping the rows whose ``domain`` is one of ``domains``."""
    wanted = pa.array(list(domains), type=pa.string())

    def keep(table: pa.Table) -> np.ndarray:
        column = table.column("domain").cast(pa.string())
        return np.asarray(pc.is_in(column, value_set=wanted).to_numpy(zero_copy_only=False))

    return keep


@torch.no_grad()
def scores_of(
    model: Scorer,
    paths: Sequence[str],
    *,
    split: Split,
    train_cfg: Mapping[str, Any],
    batch_size: int,
    device: torch.device,
    clip_seconds: float | None,
) -> dict[str, list[Any]]:
    """The score, domain and recording of every kept row of the ``domain`` datasets."""
    sr = model.config.sample_rate
    rows = open_rows(
        paths,
        audio=("audio",),
        columns=("domain", "source_id"),
        sample_rate=sr,
        split=split,
        eval_fraction=train_cfg.get("eval_fraction", 0.0),
        split_key=train_cfg.get("split_key"),
        keep=in_domains(model.config.domains),
    )
    length = None if clip_seconds is None else round(clip_seconds * sr)
    collate = BatchCollate(length, ("audio",), "center")
    out: dict[str, list[Any]] = {"score": [], "domain": [], "source_id": [], "shown": []}
    counts = dict.fromkeys(model.config.domains, 0)
    for keys in epoch_batches(
        len(rows), batch_size, seed=0, epoch=0, shuffle=False, drop_last=False
    ):
        batch = to_device(collate([rows[k] for k in keys]), device)
        out["score"] += model.score(batch["audio"]).tolist()
        out["domain"] += list(batch["domain"])
        out["source_id"] += list(batch["source_id"])
        for x, d in zip(batch["audio"], batch["domain"], strict=True):
            if counts[d] < SHOWN:  # the first clips of each domain, for the figure
                counts[d] += 1
                out["shown"].append((d, x.cpu()))
    return out


def domain_metrics(out: Mapping[str, list[Any]], domains: Sequence[str]) -> dict[str, Any]:
    """Accuracy, confusion matrix, AUC and mean scores of :func:`scores_of`'s output."""
    score = np.asarray(out["score"], dtype=float)
    y = np.array([domains.index(d) for d in out["domain"]], dtype=int)
    pred = (score > 0.5).astype(int)
    confusion = {
        domains[t]: {domains[p]: int(np.sum((y == t) & (pred == p))) for p in (0, 1)}
        for t in (0, 1)
    }
    return {
        "n": int(len(y)),
        "recordings": len(set(out["source_id"])),
        "accuracy": float(np.mean(pred == y)) if len(y) else None,
        "auc": roc_auc(score, y) if len(y) else None,
        "confusion": confusion,
        "mean_score": {
            d: float(np.mean(score[y == i])) if np.any(y == i) else None
            for i, d in enumerate(domains)
        },
    }


def evaluate_domain(
    model: MetricModel,
    paths: Sequence[str],
    *,
    split: Split,
    train_cfg: Mapping[str, Any],
    batch_size: int,
    device: torch.device,
    clip_seconds: float | None,
    figures: Path | None = None,
) -> dict[str, Any]:
    """The scorer on ``domain`` datasets (its entry's evaluator; see the module docstring)."""
    if not isinstance(model, Scorer):
        raise TypeError(f"evaluate_domain: a Scorer is needed, got {type(model).__name__}")
    out = scores_of(
        model,
        paths,
        split=split,
        train_cfg=train_cfg,
        batch_size=batch_size,
        device=device,
        clip_seconds=clip_seconds,
    )
    results = {**domain_metrics(out, model.config.domains), "threshold": 0.5}
    if figures is not None and out["shown"]:
        results["figure"] = str(
            draw_saliency(model, out["shown"], Path(figures) / "scorer-saliency.png")
        )
    return results


def draw_saliency(model: Scorer, shown: list[tuple[str, torch.Tensor]], png: Path) -> Path:
    """One column a clip: its spectrogram (dB) over the scorer's class-activation map
    (paper Fig. 3), titled with its domain and score; into ``png``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from pamflow.storage.files import atomic_open

    cfg = model.config
    fig = Figure(figsize=(3.6 * len(shown), 6.0))
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, len(shown), squeeze=False)
    for col, (domain, x) in enumerate(shown):
        with torch.no_grad():
            spec = model.spectrogram(x[None])
            score = float(model.score_spectrogram(spec)[0])
        cam = model.cam(spec)[0].numpy()
        db = spec[0].numpy() * db_per_neper()
        extent = (0.0, db.shape[1] * cfg.hop_length / cfg.sample_rate, 0.0, cfg.sample_rate / 2000)
        lim = float(np.abs(cam).max()) or 1.0
        top, bottom = axes[0, col], axes[1, col]
        top.imshow(
            db,
            origin="lower",
            aspect="auto",
            cmap="magma",
            vmin=db.max() - 90,
            vmax=db.max(),
            extent=extent,
        )
        top.set_title(f"{domain}: score {score:.3f}", fontsize=9)
        bottom.imshow(
            cam, origin="lower", aspect="auto", cmap="coolwarm", vmin=-lim, vmax=lim, extent=extent
        )
        bottom.set_title("class activation (red: cheap)", fontsize=9)
        for ax in (top, bottom):
            ax.set_xlabel("time (s)", fontsize=8)
            ax.set_ylabel("kHz", fontsize=8)
            ax.tick_params(labelsize=7)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(str(png), "wb") as f:
        fig.savefig(f, format="png", dpi=90)
    return png


__all__ = ["domain_metrics", "draw_saliency", "evaluate_domain", "in_domains", "scores_of"]
