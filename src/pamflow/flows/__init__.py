"""Prefect flows: thin wrappers over the library (only the CLI imports this package)."""

from pamflow.flows.build import build_dataset, build_dataset_flow, task_runner

__all__ = ["build_dataset", "build_dataset_flow", "task_runner"]
from pamflow.flows.train import build_and_train, run_training, train_flow

__all__ += ["build_and_train", "run_training", "train_flow"]
