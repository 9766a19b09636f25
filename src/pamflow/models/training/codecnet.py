"""Training codecnet, the codec approximation (codec-approximation paper, section 4).

``train_codecnet(data, out_dir, cfg)`` reads ``codec`` datasets (audio ``lossless`` and
``coded``: a clip and its MP3 coding, sample-aligned) and minimises the L1 distance
between the network's prediction for ``lossless`` and ``coded``: on the normalised
magnitude scale for the spectral net (:mod:`pamflow.models.codecnet`), on the waveform for
the time net. The held-out split is by recording (the recipe's ``source_id``). A row
counts as "correct" when the prediction is nearer the coding than the input is (the
identity); ``accuracy`` in ``metrics.jsonl`` is the share of such rows.

Defaults: Table 1's spectral column (Adam at 1e-3 with Keras' decay of 5e-6 a step,
``lr / (1 + lr_decay * step)``; batch 32; 66,048-sample crops). Table 1's time column is
:meth:`CodecNetTrainConfig.time` (``configs/codecnet-time.yaml``: ``model: {kind: time,
...}``, lr 1e-4, batch 16, 16,384-sample crops). No online augmentation: a gain or
silence drawn for one side of a pair would break it.

Evaluation on codec pairs (spectral L1 and log-spectral distance against the identity and
a low-pass at the codec's cutoff; the paper's Figure 2) is the entry's evaluator,
:func:`pamflow.models.codec_eval.evaluate_codec`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from pamflow.models import registry
from pamflow.models.codec_eval import evaluate_codec
from pamflow.models.codecnet import SPECTRAL_PATCH, TIME_PATCH, CodecNet, CodecNetConfig
from pamflow.models.training.config import TrainConfig
from pamflow.models.training.loop import Context, Task, fit


@dataclass(frozen=True)
class CodecNetTrainConfig(TrainConfig):
    """codecnet training: Table 1's spectral column by default (see the module)."""

    model: CodecNetConfig = field(
        default_factory=CodecNetConfig,
        metadata={"description": "the network: kind (spectral or time), sizes, loss weights"},
    )
    lr: float = 1e-3
    lr_decay: float = field(
        default=5e-6,
        metadata={"description": "Keras' decay (Table 1): lr / (1 + lr_decay * step)"},
    )
    batch_size: int = 32
    clip_seconds: float = field(
        default=SPECTRAL_PATCH / 16000,
        metadata={
            "description": "crops in seconds (66,048 samples at 16 kHz: 128 frames; the "
            "time net's are 16,384: 1.024)"
        },
    )
    augment: bool = field(
        default=False,
        metadata={"description": "must stay false: augmentation would break the pairs"},
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.lr_decay < 0:
            raise ValueError(f"CodecNetTrainConfig.lr_decay: need >= 0, got {self.lr_decay}")
        if self.augment:
            raise ValueError(
                "CodecNetTrainConfig.augment: codec pairs take no augmentation (a gain or "
                "silence on one side would break the pair)"
            )

    def lr_at(self, step: int, total_steps: int) -> float:
        """The schedule of :class:`TrainConfig`, decayed as Keras' ``decay`` does."""
        return super().lr_at(step, total_steps) / (1.0 + self.lr_decay * step)

    @classmethod
    def time(cls, **overrides: Any) -> CodecNetTrainConfig:
        """Table 1's time column: the time net, Adam 1e-4, batch 16, 16,384-sample crops."""
        kw: dict[str, Any] = dict(
            model=CodecNetConfig.time(), lr=1e-4, batch_size=16, clip_seconds=TIME_PATCH / 16000
        )
        return cls(**{**kw, **overrides})

    @classmethod
    def tiny(cls, **overrides: Any) -> CodecNetTrainConfig:
        """A few-thousand-parameter spectral net on 0.25 s crops, batches of 4: tests."""
        kw: dict[str, Any] = dict(
            model=CodecNetConfig.tiny(),
            batch_size=4,
            clip_seconds=0.25,
            log_every=1,
            eval_fraction=0.2,
        )
        return cls(**{**kw, **overrides})


def codec_errors(model: CodecNet, lossless: Tensor, coded: Tensor) -> tuple[Tensor, Tensor]:
    """Per row: the L1 of the prediction against the coding, and of the input against it
    (the identity's), on the scale the network predicts on; both ``[B]``."""
    if model.config.kind == "spectral":
        target, given = model.spectrogram(coded), model.spectrogram(lossless)
    else:
        target, given = coded, lossless
    pred = model.predict(lossless)
    return (
        (pred - target).abs().flatten(1).mean(1),
        (given - target).abs().flatten(1).mean(1),
    )


def codec_step(
    model: CodecNet, batch: dict[str, Any], ctx: Context[TrainConfig]
) -> tuple[Tensor, Tensor]:
    """The L1 loss of the prediction; correct = nearer the coding than the input is."""
    err, identity = codec_errors(model, batch["lossless"], batch["coded"])
    return err.mean(), err < identity


CODEC_TASK = Task(
    name="codecnet",
    model_name="codecnet",
    audio=("lossless", "coded"),
    columns=(),
    step=codec_step,
)


def train_codecnet(
    data: list[str],
    out_dir: str | os.PathLike,
    cfg: CodecNetTrainConfig | None = None,
    *,
    resume: bool = False,
) -> dict[str, Any]:
    """Train a codec network on the ``codec`` datasets ``data``; return the run summary
    (see :func:`pamflow.models.training.loop.fit`)."""
    cfg = cfg or CodecNetTrainConfig()
    torch.manual_seed(cfg.seed)
    model = CodecNet(cfg.model)
    return fit(CODEC_TASK, model, data, out_dir, cfg, resume=resume)


ENTRY = registry.register(
    registry.ModelEntry(
        name="codecnet",
        architecture=CodecNet,
        config=CodecNetConfig,
        train_config=CodecNetTrainConfig,
        stages=(
            registry.Stage(
                "codecnet",
                "codec",
                lambda data, out, cfg, init, resume: train_codecnet(data, out, cfg, resume=resume),
            ),
        ),
        description="MP3 codec approximation as a loss (spectral or time-domain U-Net)",
        evaluators={"codec": evaluate_codec},
    )
)
