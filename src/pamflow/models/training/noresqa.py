"""Training NORESQA on non-matching-reference pairs (NORESQA paper, sections 3.3-3.4).

``train_noresqa(data, out_dir, cfg)`` reads ``nmr`` datasets (audio ``a``, ``b``;
``preference`` 0 = a cleaner, 1 = b cleaner; ``a_sisdr``, ``b_sisdr``; ``a_snr``, ``b_snr``
null for non-additive distortions). The model scores ``a`` (test) against ``b``
(reference), so the preference label is the preference head's class as it stands (class 0 =
the test has the higher SI-SDR). The loss is the paper's ``L_P + L_sdr + L_snr``
(:func:`pamflow.models.losses.noresqa_loss`): cross-entropy on the preference, and the
smoothed-label cross-entropies on the binned ``|a_sisdr - b_sisdr|`` and
``|a_snr - b_snr|``, the SNR term only on rows where both SNRs are defined. Adam 1e-4,
batch 32 (paper). No online augmentation by default (a gain or a shift would not change
the labels, but the paper uses none).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from pamflow.models import registry
from pamflow.models.losses import noresqa_loss
from pamflow.models.measured import levels_evaluator
from pamflow.models.noresqa import NORESQA, NORESQAConfig
from pamflow.models.training.config import TrainConfig
from pamflow.models.training.data import float_column, not_null
from pamflow.models.training.loop import Context, Task, fit


@dataclass(frozen=True)
class NORESQATrainConfig(TrainConfig):
    """NORESQA training: Adam 1e-4, batch 32 (paper), no augmentation."""

    model: NORESQAConfig = field(
        default_factory=NORESQAConfig, metadata={"description": "the architecture's sizes"}
    )
    batch_size: int = 32
    augment: bool = False

    @classmethod
    def tiny(cls, **overrides: Any) -> NORESQATrainConfig:
        """A few-thousand-parameter model on 0.5 s crops, batches of 4: tests, smoke runs."""
        kw: dict[str, Any] = dict(
            model=NORESQAConfig.tiny(),
            batch_size=4,
            clip_seconds=0.5,
            log_every=1,
            eval_fraction=0.2,
        )
        return cls(**{**kw, **overrides})


def nmr_targets(batch: dict[str, Any]) -> tuple[Tensor, Tensor, Tensor]:
    """``(Δ SI-SDR, Δ SNR, SNR defined)`` of a batch: ``a - b`` in dB, ``[B]`` float64 on the
    CPU; Δ SNR is NaN and "defined" False where either SNR is null."""
    d_sdr = float_column(batch["a_sisdr"]).cpu() - float_column(batch["b_sisdr"]).cpu()
    d_snr = float_column(batch["a_snr"]).cpu() - float_column(batch["b_snr"]).cpu()
    return d_sdr, d_snr, torch.isfinite(d_snr)


def nmr_step(
    model: NORESQA, batch: dict[str, Any], ctx: Context[TrainConfig]
) -> tuple[Tensor, Tensor]:
    """The NORESQA loss of ``model(a, b)``; correct = the preference head's arg-max."""
    out = model(ctx.augment(batch["a"]), ctx.augment(batch["b"]))
    d_sdr, d_snr, snr_defined = nmr_targets(batch)
    pref = batch["preference"]
    loss = noresqa_loss(out, pref, d_sdr, d_snr, snr_defined, delta_max=model.config.delta_max)
    return loss, out["pref_logits"].argmax(1) == pref


NMR_TASK = Task(
    name="noresqa",
    model_name="noresqa",
    audio=("a", "b"),
    columns=("preference", "a_sisdr", "b_sisdr", "a_snr", "b_snr"),
    step=nmr_step,
    keep=not_null("preference", "a_sisdr", "b_sisdr"),
)


def train_noresqa(
    data: list[str],
    out_dir: str | os.PathLike,
    cfg: NORESQATrainConfig | None = None,
    *,
    resume: bool = False,
) -> dict[str, Any]:
    """Train NORESQA on the ``nmr`` datasets ``data``; return the run summary (see
    :func:`pamflow.models.training.loop.fit`)."""
    cfg = cfg or NORESQATrainConfig()
    torch.manual_seed(cfg.seed)
    model = NORESQA(cfg.model)
    return fit(NMR_TASK, model, data, out_dir, cfg, resume=resume)


ENTRY = registry.register(
    registry.ModelEntry(
        name="noresqa",
        architecture=NORESQA,
        config=NORESQAConfig,
        train_config=NORESQATrainConfig,
        stages=(
            registry.Stage(
                "noresqa",
                "nmr",
                lambda data, out, cfg, init, resume: train_noresqa(data, out, cfg, resume=resume),
            ),
        ),
        description="quality relative to a non-matching reference (NORESQA)",
        evaluators={"levels": levels_evaluator},
    )
)
