"""Checkpoints that hold names and plain tensors, never pickled classes.

A checkpoint is a ``torch.save`` of a plain dict that ``torch.load(path, weights_only=True)``
reads back::

    {"format": "pamflow.checkpoint", "format_version": 1,
     "model": "dpam" | "cdpam" | "noresqa",      # name in pamflow.models.registry
     "config": {...},                            # the config dataclass as a plain dict
     "pamflow_version": "0.1.0",
     "state_dict": {name: tensor (CPU)},
     "extra": {...}}                              # plain values: epoch, metrics, ...

Renaming or moving a model class therefore never breaks an old checkpoint: only the
registry name and the config field names matter (:func:`pamflow.models.registry.load_model`
builds the model). Files are written to a temporary name in the target folder, fsynced and
renamed into place (:func:`pamflow.storage.files.atomic_open`), so a checkpoint that exists
is complete.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

import pamflow
from pamflow.storage.files import atomic_open

FORMAT = "pamflow.checkpoint"
FORMAT_VERSION = 1


def config_to_dict(config: Any) -> dict[str, Any]:
    """A config dataclass as a plain dict (tuples become lists)."""
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise TypeError(
            f"config: expected a config dataclass instance, got {type(config).__name__}"
        )

    def plain(v: Any) -> Any:
        return [plain(x) for x in v] if isinstance(v, list | tuple) else v

    return {f.name: plain(getattr(config, f.name)) for f in dataclasses.fields(config)}


def config_from_dict(cls: type, values: Mapping[str, Any]) -> Any:
    """Rebuild ``cls`` from :func:`config_to_dict`'s output; unknown fields are an error,
    missing ones take their defaults (so checkpoints survive new config fields)."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown config fields {unknown}; known: {sorted(names)}")

    def tup(v: Any) -> Any:
        return tuple(tup(x) for x in v) if isinstance(v, list | tuple) else v

    return cls(**{k: tup(v) for k, v in values.items()})


def _check_plain(value: Any, where: str) -> Any:
    """``value`` with tensors moved to the CPU; anything weights_only cannot load is an error."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu")
    if isinstance(value, np.generic):  # numpy scalars pickle as numpy objects
        value = value.item()
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, int | float):  # builtin types, not subclasses
        return int(value) if isinstance(value, int) else float(value)
    if isinstance(value, list | tuple):
        return type(value)(_check_plain(v, f"{where}[{i}]") for i, v in enumerate(value))
    if isinstance(value, Mapping):
        bad = [k for k in value if not isinstance(k, str | int)]
        if bad:
            raise TypeError(f"{where}: keys must be str or int, got {bad[0]!r}")
        return {k: _check_plain(v, f"{where}[{k!r}]") for k, v in value.items()}
    raise TypeError(
        f"{where}: {type(value).__name__} is not a plain value (str, int, float, "
        "bool, None, tensor, list, tuple or dict); torch.load(weights_only=True) "
        "could not read it back"
    )


def save_checkpoint(
    path: str | os.PathLike,
    model_name: str,
    config: Any,
    state_dict: Mapping[str, torch.Tensor],
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write a checkpoint atomically (temporary file, then ``os.replace``); returns the path."""
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": model_name,
        "config": config_to_dict(config),
        "pamflow_version": pamflow.__version__,
        "state_dict": {},
        "extra": _check_plain(dict(extra or {}), "extra"),
    }
    for k, v in state_dict.items():
        if not isinstance(v, torch.Tensor):
            raise TypeError(f"state_dict[{k!r}]: expected a tensor, got {type(v).__name__}")
        payload["state_dict"][k] = v.detach().to("cpu").contiguous()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "wb", fsync=True) as f:
        torch.save(payload, f)
    return path


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint (``weights_only=True``, tensors on the CPU) and check its format."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as e:
        raise ValueError(f"{path}: not a readable pamflow checkpoint: {e}") from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ValueError(f"{path}: not a pamflow checkpoint (no format={FORMAT!r} entry)")
    if ckpt.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(
            f"{path}: checkpoint format version {ckpt['format_version']} is newer "
            f"than this pamflow reads ({FORMAT_VERSION}); upgrade pamflow"
        )
    missing = [k for k in ("model", "config", "state_dict") if k not in ckpt]
    if missing:
        raise ValueError(f"{path}: checkpoint lacks {missing}")
    return ckpt
