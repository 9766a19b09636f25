"""The state a training checkpoint carries beyond the weights, and putting it back.

Everything is stored as tensors and plain values, so ``torch.load(..., weights_only=True)``
reads it: the optimiser's ``state_dict`` (tensors, numbers, lists), the AMP scaler's, the
loader position (epoch, batch in epoch) and every RNG state (:func:`rng_state`).
"""

from __future__ import annotations

import os
import random
from typing import Any, cast

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from pamflow.models.base import MetricModel
from pamflow.models.checkpoint import config_to_dict, load_checkpoint
from pamflow.models.training.config import TrainConfig

#: ``np.random.get_state()`` of the MT19937 generator: (kind, keys, pos, has_gauss, cached)
LegacyState = tuple[str, NDArray[np.uint32], int, int, float]


def rng_state(gen: torch.Generator, cuda: bool) -> dict[str, Any]:
    """Every RNG state as tensors and plain values (loadable with ``weights_only=True``)."""
    # the legacy tuple: numpy's global RandomState is always MT19937 (a dict only for others)
    state = cast(LegacyState, np.random.get_state())  # noqa: NPY002 (saved only)
    kind, keys, pos, has_gauss, cached = state
    version, words, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if cuda else [],
        "augment": gen.get_state(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": pos,
            "has_gauss": has_gauss,
            "cached_gaussian": cached,
        },
        "python": {"version": version, "words": list(words), "gauss_next": gauss_next},
    }


def set_rng_state(state: dict[str, Any], gen: torch.Generator, cuda: bool) -> None:
    """Put back what :func:`rng_state` saved: a resumed run continues every stream exactly,
    including numpy's and Python's global ones (pamflow draws from neither, but libraries a
    task calls might)."""
    torch.set_rng_state(state["torch"])
    if cuda and state["cuda"]:
        torch.cuda.set_rng_state_all(state["cuda"])
    gen.set_state(state["augment"])
    n = state["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)
    np.random.set_state((n["kind"], keys, n["pos"], n["has_gauss"], n["cached_gaussian"]))  # noqa: NPY002
    p = state["python"]
    random.setstate((p["version"], tuple(p["words"]), p["gauss_next"]))


def restore(
    path: str | os.PathLike,
    task: str,
    cfg: TrainConfig,
    model: MetricModel,
    opt: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    gen: torch.Generator,
    cuda: bool,
) -> tuple[int, int, int]:
    """Load checkpoint ``path`` into a run of ``task`` with config ``cfg``: weights,
    optimiser, scaler and RNG states. Only the fields in ``cfg.resumable_changes()`` may
    differ from the checkpoint's; a field the checkpoint lacks (added to the config after it
    was written) counts as its default. Returns ``(step, epoch, batch_in_epoch)``."""
    ckpt = load_checkpoint(path)
    extra = ckpt.get("extra", {})
    if extra.get("task") != task:
        raise ValueError(f"{path}: a {extra.get('task')!r} checkpoint, cannot resume {task!r}")
    saved = {**cfg.defaults(), **extra["train_config"]}
    now = cfg.to_dict()
    free = cfg.resumable_changes()
    changed = [
        k for k in sorted(set(saved) | set(now)) if saved.get(k) != now.get(k) and k not in free
    ]
    if changed:
        diff = {k: (saved.get(k), now.get(k)) for k in changed}
        raise ValueError(
            f"{path}: cannot resume with a different config: {diff} (checkpoint, now); "
            f"only {sorted(free)} may change"
        )
    model.load_state_dict(ckpt["state_dict"])
    opt.load_state_dict(extra["optimizer"])
    if scaler.is_enabled() and extra["scaler"]:
        scaler.load_state_dict(extra["scaler"])
    set_rng_state(extra["rng"], gen, cuda)
    return int(extra["step"]), int(extra["epoch"]), int(extra["batch_in_epoch"])


def load_init(path: str | os.PathLike, model_name: str, config: Any) -> dict[str, Tensor]:
    """The state dict of checkpoint ``path`` (a previous stage or a pre-trained model),
    checked to be a ``model_name`` model with the same config as ``config``."""
    ckpt = load_checkpoint(path)
    if ckpt["model"] != model_name:
        raise ValueError(f"{path}: a {ckpt['model']!r} checkpoint, expected a {model_name!r} one")
    want = config_to_dict(config)
    diff = {k: (ckpt["config"].get(k), v) for k, v in want.items() if ckpt["config"].get(k) != v}
    if diff:
        raise ValueError(
            f"{path}: its model config differs from this run's: {diff} (checkpoint, now)"
        )
    return ckpt["state_dict"]
