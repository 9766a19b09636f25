"""Prefect flows: thin wrappers over the library (only the CLI imports this package).

The names below load their module on first use (PEP 562): a Dask worker that imports
:mod:`pamflow.flows.build` to run build tasks never imports the training flows, and with
them PyTorch (1.7 s and ~300 MB a worker process).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pamflow.flows.build import build_dataset, build_dataset_flow
    from pamflow.flows.cluster import task_runner
    from pamflow.flows.train import build_and_train, run_training, train_flow

_HOMES = {
    "build_dataset": "build",
    "build_dataset_flow": "build",
    "task_runner": "cluster",
    "build_and_train": "train",
    "run_training": "train",
    "train_flow": "train",
}
__all__ = [
    "build_and_train",
    "build_dataset",
    "build_dataset_flow",
    "run_training",
    "task_runner",
    "train_flow",
]


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(f"pamflow.flows.{_HOMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
