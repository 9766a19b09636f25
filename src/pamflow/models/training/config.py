"""What every training run shares: :class:`TrainConfig` (each model's config subclasses it)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Self

import torch

from pamflow.models.checkpoint import config_to_dict

if TYPE_CHECKING:
    from pamflow.models.base import ModelConfig

#: fields a resumed run may change; any other difference from the checkpoint is an error
RESUMABLE_CHANGES = frozenset(
    {"epochs", "max_steps", "log_every", "checkpoint_every", "device", "num_workers", "amp"}
)


@dataclass(frozen=True)
class TrainConfig:
    """What every training run shares (the model's own config is added by each subclass).

    ``lr``: Adam learning rate (the peak one with a schedule); ``lr_schedule``: ``constant``
    or ``cosine`` (from ``lr`` down to ``lr * lr_final`` over ``epochs`` epochs, after
    ``warmup_steps`` of linear rise from zero; ``max_steps`` stops the run early without
    shortening the schedule, and a resumed cosine run may not change ``epochs``);
    ``weight_decay``: AdamW's decoupled weight decay (0: plain Adam). ``batch_size``: rows a
    step. ``epochs``: passes over the
    training rows; ``max_steps`` (optional) stops earlier, after that many optimiser steps.
    ``seed``: model initialisation, batch order, crops, augmentation and dropout.
    ``device``: a torch device, or ``auto`` (CUDA where the process running the training
    has it, else the CPU; see :func:`resolve_device`); ``amp`` (float16 autocast + GradScaler) and pinned memory are
    used on CUDA only. ``clip_seconds``: training crops (random offset) and held-out crops
    (centred) in seconds at the model's rate; shorter clips are zero-padded. ``eval_fraction``
    of the split keys (``split_key``, default the one the dataset's recipe declares) is
    held out and evaluated after each epoch. ``augment``: the papers' online augmentation
    (``silence_s`` of silence at the start or the end, gain drawn in ``gain_db``), on each
    input independently. ``log_every``/``checkpoint_every``: in steps.
    """

    lr: float = field(
        default=1e-4, metadata={"description": "Adam learning rate (the peak one with a schedule)"}
    )
    lr_schedule: Literal["constant", "cosine"] = field(
        default="constant",
        metadata={
            "description": "constant, or cosine: from lr down to lr * lr_final over the epochs, "
            "after the warm-up"
        },
    )
    warmup_steps: int = field(
        default=0,
        metadata={"description": "optimiser steps of linear rise from zero to lr (0: none)"},
    )
    lr_final: float = field(
        default=0.0,
        metadata={"description": "cosine: the last learning rate, as a share of lr (0..1)"},
    )
    weight_decay: float = field(
        default=0.0,
        metadata={"description": "AdamW's decoupled weight decay (0: plain Adam)"},
    )
    batch_size: int = field(default=16, metadata={"description": "rows a step"})
    epochs: int = field(
        default=1,
        metadata={"description": "passes over the training rows (the length of a cosine schedule)"},
    )
    max_steps: int | None = field(
        default=None,
        metadata={
            "description": "stop after this many optimiser steps (null: after the last epoch); "
            "the schedule keeps its length"
        },
    )
    seed: int = field(
        default=0,
        metadata={
            "description": "model initialisation, batch order, crops, augmentation and dropout"
        },
    )
    device: str = field(
        default="auto",
        metadata={
            "description": "a torch device (cpu, cuda, cuda:1...), or auto: CUDA where the "
            "process running the training has it, else the CPU"
        },
    )
    num_workers: int = field(
        default=0,
        metadata={
            "description": "DataLoader worker processes reading the rows (0: the training "
            "process itself)"
        },
    )
    amp: bool = field(
        default=True,
        metadata={"description": "float16 autocast and gradient scaling, on CUDA only"},
    )
    clip_seconds: float = field(
        default=2.5,
        metadata={
            "description": "crops in seconds: random offsets for training, centred for the "
            "held-out rows; shorter clips are zero-padded"
        },
    )
    eval_fraction: float = field(
        default=0.1,
        metadata={
            "description": "share of the split keys held out and evaluated after each epoch "
            "(0 <= share < 1)"
        },
    )
    split_key: str | None = field(
        default=None,
        metadata={
            "description": "the column the held-out split is drawn on (null: the one the "
            "dataset's recipe declares, else example_id)"
        },
    )
    augment: bool = field(
        default=True,
        metadata={
            "description": "the papers' online augmentation (silence_s, gain_db), on each "
            "input independently"
        },
    )
    silence_s: float = field(
        default=0.25,
        metadata={"description": "augment: seconds of silence at the start or the end"},
    )
    gain_db: tuple[float, float] = field(
        default=(0.0, 0.0),
        metadata={"description": "augment: a gain drawn uniformly in [low, high] dB"},
    )
    log_every: int = field(
        default=50, metadata={"description": "steps between training records in metrics.jsonl"}
    )
    checkpoint_every: int = field(
        default=1000,
        metadata={"description": "steps between resumable checkpoints (checkpoint.pt)"},
    )

    if TYPE_CHECKING:
        # What each model's subclass adds (see ``models/training/noresqa.py``), declared for
        # the type checker only, so the registry reads any model's training config: at run
        # time the base has neither (no model field, no tiny preset).

        @property
        def model(self) -> ModelConfig:
            """The architecture's config: a field of each model's subclass."""
            raise NotImplementedError

        @classmethod
        def tiny(cls, **overrides: Any) -> Self:
            """Small sizes for tests and smoke runs: each model's subclass has its preset."""
            raise NotImplementedError

    def __post_init__(self) -> None:
        checks = {
            "lr": self.lr > 0,
            "lr_schedule": self.lr_schedule in ("constant", "cosine"),
            "warmup_steps": self.warmup_steps >= 0,
            "lr_final": 0.0 <= self.lr_final <= 1.0,
            "weight_decay": self.weight_decay >= 0,
            "batch_size": self.batch_size >= 1,
            "epochs": self.epochs >= 1,
            "max_steps": self.max_steps is None or self.max_steps >= 1,
            "num_workers": self.num_workers >= 0,
            "clip_seconds": self.clip_seconds > 0,
            "eval_fraction": 0.0 <= self.eval_fraction < 1.0,
            "log_every": self.log_every >= 1,
            "checkpoint_every": self.checkpoint_every >= 1,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            values = {k: getattr(self, k) for k in bad}
            raise ValueError(f"{type(self).__name__}: invalid value(s) {values}")

    def lr_at(self, step: int, total_steps: int) -> float:
        """The learning rate of optimiser step ``step`` (0-based) of a ``total_steps`` run: a
        function of the step alone, so a resumed run follows the same schedule."""
        if self.warmup_steps and step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        if self.lr_schedule == "constant":
            return self.lr
        span = max(1, total_steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / span)
        floor = self.lr * self.lr_final
        return floor + (self.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    def resumable_changes(self) -> frozenset[str]:
        """Fields a resumed run may change (:data:`RESUMABLE_CHANGES`);
        a schedule laid over the epochs also fixes ``epochs``."""
        return RESUMABLE_CHANGES - ({"epochs"} if self.lr_schedule != "constant" else set())

    def defaults(self) -> dict[str, Any]:
        """The plain default of every field that has one (what a checkpoint written before a
        field existed ran with)."""
        return {
            f.name: _plain(f.default)
            for f in dataclasses.fields(self)
            if f.default is not dataclasses.MISSING
        }

    def to_dict(self) -> dict[str, Any]:
        """The config as plain values (the model config as a nested dict)."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}


def _plain(value: Any) -> Any:
    """A config value as stored in checkpoints: nested configs as dicts, tuples as lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return config_to_dict(value)
    return list(value) if isinstance(value, tuple) else value


def resolve_device(name: str) -> torch.device:
    """The torch device for a config's ``device``: ``auto`` is CUDA where this process sees a
    CUDA device, else the CPU; a CUDA device this process cannot use is a one-line error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device {name!r}: torch sees no CUDA device on this machine "
            f"(torch {torch.__version__}); use device: auto or cpu"
        )
    return device
