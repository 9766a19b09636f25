"""Training DPAM on JND pairs (DPAM paper, sections 2.2 and 3.3).

``train_dpam(data, out_dir, cfg)`` reads ``jnd`` datasets (audio ``reference`` and
``perturbed``, ``label`` 1 = different / 0 = same; unlabelled rows are skipped) and minimises
the cross-entropy of the classifier ``G`` on the distance ``D(reference, perturbed)``, with
Adam at 1e-4 and batches of 16 (the paper and its code). Online augmentation as in the
paper: 0.25 s of silence at the start or the end of each input, drawn independently.

Variants (paper section 2.2): ``scratch`` (everything trains), ``lin`` (the features ``F``
are frozen, only the per-channel weights and ``G`` train: from ``init``'s features, or over
random features when no ``init`` is given) and ``fin`` (``F`` initialised from ``init``,
then everything trains). ``init`` is a DPAM checkpoint (e.g. another run's ``model.pt``).
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import torch
from torch import Tensor

from pamflow.models import registry
from pamflow.models.base import MetricModel
from pamflow.models.dpam import DPAM, DPAMConfig
from pamflow.models.losses import jnd_cross_entropy
from pamflow.models.training.config import TrainConfig
from pamflow.models.training.data import not_null
from pamflow.models.training.loop import Context, Task, fit
from pamflow.models.training.state import load_init


@dataclass(frozen=True)
class DPAMTrainConfig(TrainConfig):
    """DPAM training: Adam 1e-4, batch 16 (paper); 0.25 s silence augmentation, no gain."""

    model: DPAMConfig = field(
        default_factory=DPAMConfig, metadata={"description": "the architecture's sizes"}
    )
    variant: Literal["scratch", "lin", "fin"] = field(
        default="scratch",
        metadata={
            "description": "scratch: everything trains from random weights; lin: the features "
            "F are frozen, only the per-channel weights and G train; fin: F from init, then "
            "everything trains"
        },
    )
    init: str | None = field(
        default=None,
        metadata={
            "description": "a DPAM checkpoint (e.g. another run's model.pt) whose features F "
            "start the run: needed by fin, refused by scratch"
        },
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.variant not in ("scratch", "lin", "fin"):
            raise ValueError(
                f"DPAMTrainConfig.variant: 'scratch', 'lin' or 'fin', got {self.variant!r}"
            )
        if self.variant == "fin" and not self.init:
            raise ValueError(
                "DPAMTrainConfig.init: the 'fin' variant needs a checkpoint to start from"
            )
        if self.variant == "scratch" and self.init:
            raise ValueError(
                "DPAMTrainConfig.init: 'scratch' starts from random weights; use 'fin'"
            )

    @classmethod
    def tiny(cls, **overrides: Any) -> DPAMTrainConfig:
        """A few-thousand-parameter model on 0.5 s crops, batches of 4: tests, smoke runs."""
        kw: dict[str, Any] = dict(
            model=DPAMConfig.tiny(), batch_size=4, clip_seconds=0.5, log_every=1, eval_fraction=0.2
        )
        return cls(**{**kw, **overrides})


class JNDClassifier(MetricModel, Protocol):
    """A metric with its own JND classifier (DPAM, CDPAM): ``classify(x, y)`` -> logits
    ``[B, 2]`` (class 1 = "different")."""

    def classify(self, x: Tensor, y: Tensor, /) -> Tensor: ...


def jnd_step(
    model: JNDClassifier, batch: dict[str, Any], ctx: Context[TrainConfig]
) -> tuple[Tensor, Tensor]:
    """JND cross-entropy of ``model.classify(reference, perturbed)`` (DPAM or CDPAM);
    correct = the arg-max class equals the label."""
    x, y = ctx.augment(batch["reference"]), ctx.augment(batch["perturbed"])
    logits = model.classify(x, y)
    labels = batch["label"]
    return jnd_cross_entropy(logits, labels), logits.argmax(1) == labels


JND_TASK = Task(
    name="dpam",
    model_name="dpam",
    audio=("reference", "perturbed"),
    columns=("label",),
    step=jnd_step,
    keep=not_null("label"),
)


def train_dpam(
    data: list[str],
    out_dir: str | os.PathLike,
    cfg: DPAMTrainConfig | None = None,
    *,
    resume: bool = False,
) -> dict[str, Any]:
    """Train DPAM on the ``jnd`` datasets ``data``; return the run summary (see
    :func:`pamflow.models.training.loop.fit`). ``resume=True`` continues from
    ``out_dir/checkpoint.pt``."""
    cfg = cfg or DPAMTrainConfig()
    torch.manual_seed(cfg.seed)
    model = DPAM(cfg.model)
    if cfg.init:
        state = load_init(cfg.init, "dpam", cfg.model)
        model.load_features({k: v for k, v in state.items() if k.startswith("features.")})
    if cfg.variant == "lin":
        if not cfg.init:
            warnings.warn(
                "DPAM 'lin' without init: training the layer weights over frozen random features",
                stacklevel=2,
            )
        model.freeze_features()
    task = dataclasses.replace(JND_TASK, name=f"dpam-{cfg.variant}")
    return fit(task, model, data, out_dir, cfg, resume=resume)


ENTRY = registry.register(
    registry.ModelEntry(
        name="dpam",
        architecture=DPAM,
        config=DPAMConfig,
        train_config=DPAMTrainConfig,
        stages=(
            registry.Stage(
                "dpam",
                "jnd",
                lambda data, out, cfg, init, resume: train_dpam(data, out, cfg, resume=resume),
            ),
        ),
        description="JND-trained deep feature distance (DPAM)",
    )
)
