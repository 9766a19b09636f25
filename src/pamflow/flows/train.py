"""Training flows: DPAM, CDPAM (three stages as tasks) and NORESQA from dataset paths.

Each task body is one call into :mod:`pamflow.models.training`. A flow reads dataset paths
(the output of a build flow), so it runs as a downstream step of a build: chained in one
flow (:func:`build_and_train`), or triggered by the ``pamflow.dataset.built`` event the
build flow emits (see ``prefect.yaml``). With a Dask cluster address and ``device="cuda"``,
the training task asks the scheduler for a worker with a ``GPU`` resource
(``dask worker ... --resources GPU=1``).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import dask
from prefect import flow, task
from prefect.artifacts import create_markdown_artifact

from pamflow.models import registry


def datasets_by_recipe(data: list[str]) -> dict[str, list[str]]:
    """Group dataset paths by the recipe recorded in their ``dataset.json``."""
    from pamflow.storage import Dataset

    out: dict[str, list[str]] = {}
    for path in data:
        out.setdefault(Dataset.open(path).recipe, []).append(path)
    return out


@task(name="train-stage", task_run_name="train-{model}-{stage}")
def stage_task(
    model: str,
    stage: str,
    data: list[str],
    out: str,
    cfg: dict[str, Any],
    init: str | None,
    resume: bool,
) -> dict[str, Any]:
    """One training stage of ``model`` (:func:`pamflow.models.registry.run_stage`); plain
    values in, so the task ships to any Dask worker."""
    entry = registry.get(model)
    (spec,) = [s for s in entry.stages if s.name == stage]
    conf = registry.train_config(model, cfg)
    return registry.run_stage(entry, spec, data, Path(out), conf, init, resume)


def _submit_stage(
    entry: registry.ModelEntry,
    stage: registry.Stage,
    data: list[str],
    out: Path,
    cfg: Any,
    init: str | None,
    resume: bool,
) -> dict[str, Any]:
    return stage_task.submit(
        entry.name, stage.name, data, str(out), cfg.to_dict(), init, resume
    ).result()


def _resources(device: str, cluster: str | None) -> contextlib.AbstractContextManager[Any]:
    if cluster and device.startswith("cuda"):
        return dask.annotate(resources={"GPU": 1})
    return contextlib.nullcontext()


def _report(model: str, out: str, summary: dict[str, Any]) -> None:
    rows = [
        f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |"
        for k, v in summary.items()
        if not isinstance(v, dict | list)
    ]
    create_markdown_artifact(
        key=f"train-{model}",
        description=f"{model} training run at {out}",
        markdown="\n".join(
            [f"# {model} training", "", f"`{out}`", "", "| metric | value |", "|---|---|", *rows]
        ),
    )


@flow(name="train-metric", log_prints=True)
def train_flow(
    model: str,
    data: list[str],
    out: str,
    config: dict[str, Any] | None = None,
    resume: bool = False,
    cluster: str | None = None,
    new_run_folder: bool = False,
) -> dict[str, Any]:
    """Train ``model`` ("dpam", "cdpam" or "noresqa") on the datasets at ``data``; with
    ``new_run_folder`` the run goes to ``out/RUN-YYYYmmddTHHMMSSZ`` (for triggered retraining)."""
    if new_run_folder:
        from datetime import UTC, datetime

        out = f"{out.rstrip('/')}/run-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}"
    cfg = dict(config or {})
    conf = registry.train_config(model, cfg)  # a bad config fails before any work
    entry = registry.get(model)
    groups = datasets_by_recipe(data)
    device = str(cfg.get("device", "cpu"))
    with _resources(device, cluster):
        summary = registry.train(model, groups, out, conf, resume=resume, runner=_submit_stage)
    flat = (
        summary
        if len(entry.stages) == 1
        else {
            f"{s}.{k}": v
            for s, d in summary.items()
            if isinstance(d, dict)
            for k, v in d.items()
            if not isinstance(v, dict | list)
        }
    )
    _report(model, out, flat)
    return summary


@flow(name="build-and-train", log_prints=True)
def build_and_train(
    model: str,
    builds: dict[str, dict[str, Any]],
    data_root: str,
    out: str,
    config: dict[str, Any] | None = None,
    workers: int = 2,
    cluster: str | None = None,
) -> dict[str, Any]:
    """Build the datasets ``model`` needs (``builds``: recipe -> spec), then train on them:
    training runs downstream of the builds in one flow run."""
    from pamflow.flows.build import build_dataset

    paths = []
    for recipe in registry.get(model).recipes:
        path = f"{data_root.rstrip('/')}/{recipe}"
        build_dataset(recipe, builds.get(recipe, {}), path, workers=workers, cluster=cluster)
        paths.append(path)
    return train_flow(model, paths, out, config, cluster=cluster)


def run_training(
    model: str,
    data: list[str],
    out: str,
    config: dict[str, Any] | None = None,
    *,
    resume: bool = False,
    cluster: str | None = None,
) -> dict[str, Any]:
    """Run :func:`train_flow` here (tasks in this process) or, with ``cluster``, with its
    tasks on that Dask cluster (GPU workers when ``config["device"]`` is CUDA)."""
    from prefect_dask import DaskTaskRunner

    from pamflow.flows.build import prefect_api

    registry.train_config(model, dict(config or {}))  # a bad config fails before Prefect starts
    with prefect_api():
        runner = (
            train_flow
            if not cluster
            else train_flow.with_options(
                # prefect-dask declares DaskTaskRunner a bare TaskRunner (of Prefect's default
                # future type), which Flow.with_options' TaskRunner[PrefectFuture] rejects
                task_runner=DaskTaskRunner(address=cluster)  # type: ignore[arg-type]
            )
        )
        return runner(model, list(data), out, config, resume, cluster)
