"""Adaptive EQ against a learned scorer (Verma & Berger, paper 004, section III).

For an input with log-magnitude spectrogram ``X`` (the scorer's front end,
:meth:`pamflow.models.scorer.Scorer.spectrogram`), learn an additive mask ``M`` (natural-log
units: 1 = 8.69 dB) for that input alone::

    M = argmin  L_c(X + M) + alpha * mean(M^2) + beta * Var(M)

``L_c`` is the scorer's verdict on ``X + M``: by default ``-ln(1 - score)``, the
cross-entropy of its score (0 = good, 1 = cheap) against the good domain; ``loss:
score`` takes the score itself, the paper's literal ``L_c``, whose gradient vanishes where a
well-trained scorer is sure (the sigmoid's slope at a score of 0.997 is 0.003: measured on
the demo, 100 steps of block masks then move a cheap clip's score by less than 0.001), while
the cross-entropy's slope there is ~1, and both are the score to first order near 0.
``mean(M^2)`` is the paper's
``||X - X_t||^2`` with ``X_t = X + M``, as a mean over the bins and frames so that
``alpha`` does not depend on the clip's length; ``Var(M)`` is the variance of the mask over
its cells. The output is resynthesised with the input's phase: ``S * exp(M)``, ``S`` the
input's STFT, through the inverse STFT (an additive log-magnitude mask is a filter, a
time-varying EQ). The scores printed after are measured on the output waveform, analysed
again.

Initialisation (:class:`EnhanceConfig` ``init``):

- ``block`` (the paper's): rectangular blocks of ``block_bins`` x ``block_frames`` cells
  ("sticky notes on the spectrogram"), tiling the spectrogram (``blocks: null``) or
  ``blocks`` of them at seeded random places; each block's gain is drawn in
  ``[-gain_db, gain_db]``. The blocks' gains are what is optimised; the mask is their sum
  smoothed by a ``smooth_bins`` x ``smooth_frames`` moving average, so it stays smooth.
- ``random`` (the paper's ablation): every cell of ``M`` is its own parameter, started from
  Gaussian noise of ``random_std_db``, and nothing smooths it: the scorer's gradient is free
  to write the noisy, adversarial masks of the paper's Fig. 1 (set ``alpha = beta = 0`` for
  the paper's exact ablation).

Everything random (block places, gains, noise) comes from a generator seeded by ``seed``,
so an input enhances the same way every time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from pamflow.measures import log_spectral_distance
from pamflow.models.scorer import Scorer, db_per_neper

Init = Literal["block", "random"]


@dataclass(frozen=True)
class EnhanceConfig:
    """How :func:`enhance` learns a mask (see the module docstring)."""

    init: Init = field(
        default="block",
        metadata={"description": "block: smoothed rectangular blocks; random: per-cell noise"},
    )
    loss: Literal["cross_entropy", "score"] = field(
        default="cross_entropy",
        metadata={
            "description": "L_c: cross_entropy, -ln(1 - score), the score's cross-entropy "
            "against the good domain; or score, the paper's literal L_c (flat where the "
            "scorer is sure)"
        },
    )
    steps: int = field(default=100, metadata={"description": "Adam steps per input"})
    lr: float = field(default=0.05, metadata={"description": "Adam learning rate (nepers)"})
    alpha: float = field(
        default=0.1, metadata={"description": "weight of mean(M^2), closeness to the input"}
    )
    beta: float = field(default=0.1, metadata={"description": "weight of Var(M)"})
    blocks: int | None = field(
        default=None,
        metadata={"description": "how many blocks, at seeded random places"},
    )
    block_bins: int = field(default=16, metadata={"description": "block height, FFT bins"})
    block_frames: int = field(default=50, metadata={"description": "block width, frames"})
    gain_db: float = field(
        default=3.0, metadata={"description": "initial block gains drawn in [-gain_db, gain_db]"}
    )
    smooth_bins: int = field(default=9, metadata={"description": "smoothing, bins (odd)"})
    smooth_frames: int = field(default=9, metadata={"description": "smoothing, frames (odd)"})
    random_std_db: float = field(
        default=3.0, metadata={"description": "random init: std of each cell, dB"}
    )
    seed: int = field(default=0, metadata={"description": "block places, gains and noise"})

    def __post_init__(self) -> None:
        checks = {
            "init": self.init in ("block", "random"),
            "loss": self.loss in ("cross_entropy", "score"),
            "steps": self.steps >= 0,
            "lr": self.lr > 0,
            "alpha": self.alpha >= 0,
            "beta": self.beta >= 0,
            "blocks": self.blocks is None or self.blocks >= 1,
            "block_bins": self.block_bins >= 1,
            "block_frames": self.block_frames >= 1,
            "gain_db": self.gain_db >= 0,
            "smooth_bins": self.smooth_bins >= 1 and self.smooth_bins % 2 == 1,
            "smooth_frames": self.smooth_frames >= 1 and self.smooth_frames % 2 == 1,
            "random_std_db": self.random_std_db >= 0,
        }
        bad = {k: getattr(self, k) for k, ok in checks.items() if not ok}
        if bad:
            raise ValueError(f"EnhanceConfig: invalid value(s) {bad}")


Block = tuple[int, int, int, int]  # f0, f1, t0, t1 (half-open)


def block_layout(
    n_bins: int, n_frames: int, cfg: EnhanceConfig, gen: torch.Generator
) -> list[Block]:
    """Where the blocks sit: a tiling of the ``n_bins x n_frames`` grid, or ``cfg.blocks``
    blocks at places drawn from ``gen`` (each inside the grid)."""
    h, w = min(cfg.block_bins, n_bins), min(cfg.block_frames, n_frames)
    if cfg.blocks is None:
        return [
            (f, min(f + h, n_bins), t, min(t + w, n_frames))
            for f in range(0, n_bins, h)
            for t in range(0, n_frames, w)
        ]
    f0 = torch.randint(0, n_bins - h + 1, (cfg.blocks,), generator=gen).tolist()
    t0 = torch.randint(0, n_frames - w + 1, (cfg.blocks,), generator=gen).tolist()
    return [(f, f + h, t, t + w) for f, t in zip(f0, t0, strict=True)]


def smooth(mask: Tensor, bins: int, frames: int) -> Tensor:
    """A ``bins x frames`` moving average of masks ``[B, F, T]`` (same size; at the edges
    the mean of the cells inside)."""
    if bins == 1 and frames == 1:
        return mask
    out = F.avg_pool2d(
        mask.unsqueeze(1),
        (bins, frames),
        stride=1,
        padding=(bins // 2, frames // 2),
        count_include_pad=False,
    )
    return out.squeeze(1)


class Mask(torch.nn.Module):
    """The mask being learned for a batch of spectrograms ``[B, F, T]``: block gains
    (``block``) or one value a cell (``random``); ``forward()`` is ``M`` ``[B, F, T]``."""

    def __init__(self, shape: tuple[int, int, int], cfg: EnhanceConfig) -> None:
        super().__init__()
        self.shape, self.cfg = shape, cfg
        gen = torch.Generator().manual_seed(cfg.seed)
        b, n_bins, n_frames = shape
        to_np = 1.0 / db_per_neper()
        self.rows = torch.zeros(0, n_bins)  # block k covers rows[k] x cols[k] (0/1)
        self.cols = torch.zeros(0, n_frames)
        if cfg.init == "block":
            self.layout = block_layout(n_bins, n_frames, cfg, gen)
            self.rows = torch.zeros(len(self.layout), n_bins)
            self.cols = torch.zeros(len(self.layout), n_frames)
            for k, (f0, f1, t0, t1) in enumerate(self.layout):
                self.rows[k, f0:f1], self.cols[k, t0:t1] = 1.0, 1.0
            gains = (torch.rand(b, len(self.layout), generator=gen) * 2 - 1) * cfg.gain_db
            self.params = torch.nn.Parameter(gains * to_np)
        else:
            self.layout = []
            noise = torch.randn(shape, generator=gen) * cfg.random_std_db * to_np
            self.params = torch.nn.Parameter(noise)

    def blocks(self) -> Tensor:
        """The unsmoothed block mask ``[B, F, T]`` (the random mask itself)."""
        if self.cfg.init == "random":
            return self.params
        # the sum over blocks of gain x rectangle, as one product: (rows^T diag(w)) cols
        return torch.einsum("bk,kf,kt->bft", self.params, self.rows, self.cols)

    def forward(self) -> Tensor:
        if self.cfg.init == "random":
            return self.params
        return smooth(self.blocks(), self.cfg.smooth_bins, self.cfg.smooth_frames)


def objective(scorer: Scorer, spec: Tensor, mask: Tensor, cfg: EnhanceConfig) -> dict[str, Tensor]:
    """The terms of the objective, each ``[B]``: ``score`` of ``X + M``, ``lc`` (``L_c``:
    the score, or ``-ln(1 - score) = softplus(logit)``), ``closeness`` (``mean(M^2)``),
    ``variance`` (``Var(M)``) and their weighted ``total``."""
    logit = scorer.logit_spectrogram(spec + mask)
    score = torch.sigmoid(logit)
    lc = F.softplus(logit) if cfg.loss == "cross_entropy" else score
    close = mask.pow(2).mean(dim=(1, 2))
    var = mask.flatten(1).var(dim=1, unbiased=False)
    return {
        "score": score,
        "lc": lc,
        "closeness": close,
        "variance": var,
        "total": lc + cfg.alpha * close + cfg.beta * var,
    }


@dataclass
class Enhanced:
    """What :func:`enhance` returns for a batch: the output waveforms, the masks (nepers,
    ``[B, F, T]``), the unsmoothed block masks, and one record a row (:meth:`rows`)."""

    audio: Tensor
    mask: Tensor
    blocks: Tensor
    score_before: Tensor
    score_after: Tensor
    score_masked: Tensor
    lsd_db: list[float]
    losses: list[float]

    def rows(self) -> list[dict[str, Any]]:
        """Per input: scores before/after (after = the output waveform analysed again;
        masked = the optimised ``X + M``), the log-spectral distance of the output from the
        input (dB) and the mask's RMS, mean and largest magnitude (dB)."""
        db = self.mask * db_per_neper()
        out = []
        for i in range(len(self.audio)):
            m = db[i]
            out.append(
                {
                    "score_before": float(self.score_before[i]),
                    "score_after": float(self.score_after[i]),
                    "score_masked": float(self.score_masked[i]),
                    "lsd_db": self.lsd_db[i],
                    "mask_rms_db": float(m.pow(2).mean().sqrt()),
                    "mask_mean_db": float(m.mean()),
                    "mask_max_db": float(m.abs().max()),
                }
            )
        return out


def enhance(scorer: Scorer, audio: Tensor, cfg: EnhanceConfig | None = None) -> Enhanced:
    """Learn one mask per waveform of ``audio`` (``[B, T]`` at the scorer's rate, one
    length) against the frozen ``scorer``; return the enhanced waveforms and the figures.

    The optimisation starts from the same seed for every call, so results are repeatable;
    the scorer runs in eval mode (no dropout; its mode is restored after) and only the
    mask's parameters get gradients (the scorer's weights and their ``.grad`` are untouched).
    """
    cfg = cfg or EnhanceConfig()
    x = audio.detach().to(torch.float32)
    if x.dim() != 2:
        raise ValueError(f"audio: expected waveforms [B, T], got shape {tuple(x.shape)}")
    was_training = scorer.training
    scorer.eval()
    try:
        return _enhance(scorer, x, cfg)
    finally:
        scorer.train(was_training)


def _enhance(scorer: Scorer, x: Tensor, cfg: EnhanceConfig) -> Enhanced:
    with torch.no_grad():
        stft = scorer.stft(x)
        spec = scorer.log_magnitude(stft)
        before = scorer.score_spectrogram(spec)
    mask = Mask(tuple(spec.shape), cfg)  # type: ignore[arg-type]
    opt = torch.optim.Adam([mask.params], lr=cfg.lr)
    losses = []
    for _ in range(cfg.steps):
        terms = objective(scorer, spec, mask(), cfg)
        loss = terms["total"].sum()
        (mask.params.grad,) = torch.autograd.grad(loss, [mask.params])
        opt.step()
        losses.append(loss.item() / len(x))
    with torch.no_grad():
        m = mask()
        masked = scorer.score_spectrogram(spec + m)
        out = scorer.istft(stft * torch.exp(m), x.shape[-1])
        after = scorer.score(out)
        blocks = mask.blocks().detach()
    sr = scorer.config.sample_rate
    lsd = [
        log_spectral_distance(o.numpy(), i.numpy(), sr)
        if math.isfinite(float(o.abs().sum()))
        else math.inf
        for o, i in zip(out, x, strict=True)
    ]
    return Enhanced(out, m.detach(), blocks, before, after, masked, lsd, losses)


#: how far an output's score must fall below its input's to count as improved
MIN_DROP = 0.1


def improved(row: dict[str, Any], lsd_bound_db: float, min_drop: float = MIN_DROP) -> bool:
    """Whether an enhanced input moved towards the good domain (its output scores at least
    ``min_drop`` lower than its input) while staying within ``lsd_bound_db`` of the input."""
    return row["score_after"] <= row["score_before"] - min_drop and row["lsd_db"] <= lsd_bound_db


def summarise(
    rows: list[dict[str, Any]], lsd_bound_db: float, min_drop: float = MIN_DROP
) -> dict[str, Any]:
    """The evaluation of a set of enhanced inputs: how many, the share improved within the
    bound (:func:`improved`), the share whose score fell at all, the share that crossed
    from the cheap side of 0.5 to the good one, mean scores and LSD."""
    n = len(rows)

    def mean(key: str) -> float | None:
        return float(np.mean([r[key] for r in rows])) if n else None

    return {
        "n": n,
        "lsd_bound_db": lsd_bound_db,
        "min_drop": min_drop,
        "improved_within_bound": (
            sum(improved(r, lsd_bound_db, min_drop) for r in rows) / n if n else None
        ),
        "score_fell": sum(r["score_after"] < r["score_before"] for r in rows) / n if n else None,
        "crossed_to_good": sum(r["score_after"] < 0.5 <= r["score_before"] for r in rows) / n
        if n
        else None,
        "score_before": mean("score_before"),
        "score_after": mean("score_after"),
        "lsd_db": mean("lsd_db"),
        "mask_rms_db": mean("mask_rms_db"),
    }


__all__ = [
    "MIN_DROP",
    "EnhanceConfig",
    "Enhanced",
    "Mask",
    "block_layout",
    "enhance",
    "improved",
    "objective",
    "smooth",
    "summarise",
]
