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
import time
from pathlib import Path
from typing import Any

import dask
from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.events import emit_event

from pamflow import interrupts
from pamflow.datasets import get_recipe
from pamflow.flows import settings
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
    from pamflow.flows.cluster import worker_name

    entry = registry.get(model)
    conf = registry.train_config(model, cfg)
    summary = registry.run_stage(entry, entry.stage(stage), data, Path(out), conf, init, resume)
    return {**summary, "worker": worker_name()}


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


#: the event a finished training emits; its resource is ``pamflow.model.<model>``
TRAINED_EVENT = "pamflow.model.trained"


def gpu_workers(cluster: str) -> list[str]:
    """The workers of the Dask scheduler at ``cluster`` that offer a ``GPU`` resource."""
    from distributed import Client

    with Client(cluster, timeout=30) as client:
        workers = client.scheduler_info(n_workers=-1)["workers"]
    return sorted(a for a, w in workers.items() if w.get("resources", {}).get("GPU", 0) >= 1)


def _resources(device: str, cluster: str | None) -> contextlib.AbstractContextManager[Any]:
    """Where the training tasks may run. On a cluster, ``cuda`` waits (up to
    ``PAMFLOW_GPU_WAIT_S``, 600 s) for a worker offering a ``GPU`` resource and asks for
    one, or fails with one line; ``auto`` asks for one when the cluster has any (the task
    then uses CUDA where that worker has it); ``cpu`` runs anywhere."""
    if not cluster or device == "cpu":
        return contextlib.nullcontext()
    gpu = {"resources": {"GPU": 1}}
    if device == "auto":
        return dask.annotate(**gpu) if gpu_workers(cluster) else contextlib.nullcontext()
    wait_s = float(settings.optional(settings.GPU_WAIT_S) or 600)
    deadline = time.monotonic() + wait_s
    while not gpu_workers(cluster):
        if time.monotonic() > deadline:
            raise ValueError(
                f"device {device!r}: no worker of the Dask cluster at {cluster} offers a GPU "
                f"resource after {wait_s:g} s; start one with `pamflow worker {cluster} --gpus 1`"
            )
        time.sleep(2)
    return dask.annotate(**gpu)


def _markdown_table(title: str, where: str, rows: dict[str, Any]) -> str:
    lines = [f"# {title}", "", f"`{where}`", "", "| metric | value |", "|---|---|"]
    for k, v in rows.items():
        lines.append(f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |")
    return "\n".join(lines)


def _flat(summary: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested results as ``a.b.c -> value`` (lists left out)."""
    out: dict[str, Any] = {}
    for k, v in summary.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        elif not isinstance(v, list):
            out[f"{prefix}{k}"] = v
    return out


@task(name="evaluate-model", task_run_name="evaluate-{model}")
def evaluate_task(model: str, checkpoint: str, data: list[str]) -> dict[str, Any]:
    """The checkpoint on the held-out split of the datasets ``data``; ``{}`` when none."""
    from pamflow.models.evaluate import evaluate

    return evaluate(checkpoint, data, split="eval", device="cpu") if data else {}


@flow(name="train-metric", log_prints=True)
def train_flow(
    model: str,
    data: list[str],
    out: str,
    config: dict[str, Any] | None = None,
    resume: bool = False,
    cluster: str | None = None,
    evaluate: bool = True,
) -> dict[str, Any]:
    """Train ``model`` (a name in :mod:`pamflow.models.registry`) on the datasets at ``data``
    into ``out``, one task per stage; then emit ``pamflow.model.trained`` and, with
    ``evaluate``, score the model on the held-out split and publish the table as the artifact
    ``evaluation-MODEL``. On a cluster the tasks ask for a ``GPU`` worker as the config's
    ``device`` says (see :func:`_resources`)."""
    interrupts.rearm()  # under the pamflow command, one SIGTERM stops at once
    conf = registry.train_config(model, dict(config or {}))  # a bad config fails here
    stage_cfgs = registry.stage_train_configs(model, dict(config or {}))
    data = [settings.absolute(p) for p in data]
    out = settings.absolute(out)
    groups = datasets_by_recipe(data)
    with _resources(conf.device, cluster):
        summary = registry.train(
            model, groups, out, conf, stage_cfgs=stage_cfgs, resume=resume, runner=_submit_stage
        )
        checkpoint = str(summary["model"])
        flat = _flat(summary)
        create_markdown_artifact(
            key=f"train-{model}",
            description=f"{model} training run at {out}",
            markdown=_markdown_table(f"{model} training", out, flat),
        )
        metrics = {k: v for k, v in flat.items() if isinstance(v, int | float)}
        emit_event(
            event=TRAINED_EVENT,
            resource={"prefect.resource.id": f"pamflow.model.{model}", "pamflow.path": out},
            payload={"checkpoint": checkpoint, "data": data, "metrics": metrics},
        )
        if evaluate:
            # the datasets that evaluation reads (recipes declaring ``evaluated_on``)
            evaluable = [
                p for r, paths in groups.items() if get_recipe(r).evaluated_on for p in paths
            ]
            results = evaluate_task.submit(model, checkpoint, evaluable).result()
            summary["evaluation"] = results
            create_markdown_artifact(
                key=f"evaluation-{model}",
                description=f"{model} at {checkpoint} on the held-out split",
                markdown=_markdown_table(
                    f"{model} on held-out rows", checkpoint, _flat(results) or {"rows": 0}
                ),
            )
    return summary


@flow(name="retrain", log_prints=True)
def retrain_flow(
    model: str,
    data: list[str],
    out_root: str | None = None,
    config: dict[str, Any] | None = None,
    cluster: str | None = None,
    on_cluster: bool = False,
) -> dict[str, Any]:
    """Retraining for deployments (``prefect.yaml``): ``model`` on ``data`` (the event's
    dataset path) into a fresh ``OUT_ROOT/run-YYYYmmddTHHMMSSZ``.

    Read when the flow runs (:mod:`pamflow.flows.settings`): ``out_root`` defaults to
    ``$PAMFLOW_RUNS_DIR/MODEL``; ``on_cluster`` trains on the Dask scheduler at
    ``DASK_SCHEDULER_ADDRESS`` (``cluster`` names one directly); ``PAMFLOW_TRAIN_OVERRIDES``
    is merged into ``config``."""
    interrupts.rearm()  # under the pamflow command, one SIGTERM stops at once
    from datetime import UTC, datetime

    if not data:
        raise ValueError(f"retrain {model}: no dataset path given (data is empty)")
    root = out_root or f"{settings.required(settings.RUNS_DIR).rstrip('/')}/{model}"
    if on_cluster and not cluster:
        cluster = settings.required(settings.SCHEDULER)
    extra = settings.overrides(settings.TRAIN_OVERRIDES)
    if extra:
        print(f"{settings.TRAIN_OVERRIDES.env} overrides the deployment's config: {extra}")
    cfg = {**(config or {}), **extra}
    out = f"{root.rstrip('/')}/run-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}"
    result: dict[str, Any] = _on(cluster)(model, list(data), out, cfg, False, cluster)
    return result


def _on(cluster: str | None) -> Any:
    """:func:`train_flow`, with its tasks on the Dask scheduler at ``cluster`` if given."""
    if not cluster:
        return train_flow
    from pamflow.flows.cluster import on_runner, task_runner

    return on_runner(train_flow, task_runner(cluster=cluster))


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
    interrupts.rearm()  # under the pamflow command, one SIGTERM stops at once
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
    tasks on that Dask cluster (GPU workers as ``config["device"]`` asks)."""
    from pamflow.flows.build import prefect_api

    registry.train_config(model, dict(config or {}))  # a bad config fails before Prefect starts
    with prefect_api():
        return _on(cluster)(model, list(data), out, config, resume, cluster)
