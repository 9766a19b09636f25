"""Training the quality scorer on domain clips (Verma & Berger, paper 004, section III).

``train_scorer(data, out_dir, cfg)`` reads ``domain`` datasets (audio ``audio``, label
``domain``, recording ``source_id``) and minimises the squared error between the score
``sigmoid(logit)`` and the clip's target: 0 for ``model.domains[0]`` ("good"), 1 for
``model.domains[1]`` ("cheap"); rows of other domains are left out. A clip counts as
correct when its score is on its side of 0.5. The held-out rows are whole recordings (the
recipe's split key, ``source_id``), so no recording has clips on both sides. Adam 1e-3,
batches of 16, 3-s clips (the paper scores 3 s); online augmentation: 0.25 s of silence at
either end and a gain of +-6 dB (the scorer is level-invariant by default, so the gain
only moves the noise floor).

Its evaluation on ``domain`` datasets is :func:`pamflow.models.scorer_eval.evaluate_domain`,
the evaluator its registry entry declares (``pamflow eval`` and the training flow call it).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from pamflow.models import registry
from pamflow.models.scorer import Scorer, ScorerConfig
from pamflow.models.scorer_eval import evaluate_domain, in_domains
from pamflow.models.training.config import TrainConfig
from pamflow.models.training.loop import Context, Task, fit


@dataclass(frozen=True)
class ScorerTrainConfig(TrainConfig):
    """Scorer training: Adam 1e-3, batch 16, 3-s clips, 10 epochs; silence and +-6 dB gain
    augmentation."""

    model: ScorerConfig = field(
        default_factory=ScorerConfig, metadata={"description": "the architecture's sizes"}
    )
    lr: float = 1e-3
    epochs: int = 10
    clip_seconds: float = 3.0
    gain_db: tuple[float, float] = (-6.0, 6.0)

    @classmethod
    def tiny(cls, **overrides: Any) -> ScorerTrainConfig:
        """A few-hundred-parameter model on 1-s crops, batches of 4: tests, smoke runs."""
        kw: dict[str, Any] = dict(
            model=ScorerConfig.tiny(),
            batch_size=4,
            clip_seconds=1.0,
            log_every=1,
            eval_fraction=0.2,
        )
        return cls(**{**kw, **overrides})


def targets(domains: Sequence[str], labels: Sequence[str], device: torch.device) -> Tensor:
    """The targets ``[B]`` of a batch's ``domain`` labels: 0.0 for ``domains[0]``, 1.0 for
    ``domains[1]``."""
    return torch.tensor([float(domains.index(d)) for d in labels], device=device)


def scorer_step(
    model: Scorer, batch: dict[str, Any], ctx: Context[TrainConfig]
) -> tuple[Tensor, Tensor]:
    """Squared error of the score against the domain's target; correct = on its side of
    0.5."""
    x = ctx.augment(batch["audio"])
    score = model.score(x)
    y = targets(model.config.domains, batch["domain"], x.device)
    return torch.mean((score - y) ** 2), (score > 0.5) == (y > 0.5)


def scorer_task(domains: Sequence[str]) -> Task[Scorer, TrainConfig]:
    """The training task for a scorer of ``domains`` (the rows it keeps depend on them)."""
    return Task(
        name="scorer",
        model_name="scorer",
        audio=("audio",),
        columns=("domain",),
        step=scorer_step,
        keep=in_domains(domains),
    )


def train_scorer(
    data: list[str],
    out_dir: str | os.PathLike,
    cfg: ScorerTrainConfig | None = None,
    *,
    resume: bool = False,
) -> dict[str, Any]:
    """Train a scorer on the ``domain`` datasets ``data``; return the run summary (see
    :func:`pamflow.models.training.loop.fit`)."""
    cfg = cfg or ScorerTrainConfig()
    torch.manual_seed(cfg.seed)
    model = Scorer(cfg.model)
    return fit(scorer_task(cfg.model.domains), model, data, out_dir, cfg, resume=resume)


ENTRY = registry.register(
    registry.ModelEntry(
        name="scorer",
        architecture=Scorer,
        config=ScorerConfig,
        train_config=ScorerTrainConfig,
        stages=(
            registry.Stage(
                "scorer",
                "domain",
                lambda data, out, cfg, init, resume: train_scorer(data, out, cfg, resume=resume),
            ),
        ),
        description="learned quality scorer, good (0) vs cheap (1) domain (Verma & Berger)",
        evaluators={"domain": evaluate_domain},
    )
)
