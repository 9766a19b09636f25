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

from pamflow.models import training as lib
from pamflow.models.checkpoint import load_checkpoint

#: datasets each model reads, by recipe
RECIPES = {"dpam": ("jnd",), "cdpam": ("contrastive", "jnd", "triplet"), "noresqa": ("nmr",)}


def datasets_by_recipe(data: list[str]) -> dict[str, list[str]]:
    """Group dataset paths by the recipe recorded in their ``dataset.json``."""
    from pamflow.storage import Dataset

    out: dict[str, list[str]] = {}
    for path in data:
        out.setdefault(Dataset.open(path).recipe, []).append(path)
    return out


@task(name="train-dpam")
def train_dpam_task(data: list[str], out: str, cfg: dict[str, Any], resume: bool) -> dict[str, Any]:
    return lib.train_dpam(data, out, lib.train_config("dpam", cfg), resume=resume)


@task(name="train-noresqa")
def train_noresqa_task(data: list[str], out: str, cfg: dict[str, Any], resume: bool) -> dict[str, Any]:
    return lib.train_noresqa(data, out, lib.train_config("noresqa", cfg), resume=resume)


@task(name="cdpam-stage", task_run_name="cdpam-{stage}")
def cdpam_stage_task(stage: str, data: list[str], out: str, init: str | None, cfg: dict[str, Any],
                     resume: bool) -> dict[str, Any]:
    conf = lib.train_config("cdpam", cfg)
    if stage == "contrastive":
        return lib.cdpam_contrastive(data, out, conf, resume=resume)
    fn = lib.cdpam_jnd if stage == "jnd" else lib.cdpam_triplet
    return fn(data, out, init, conf, resume=resume)


def _resources(device: str, cluster: str | None) -> contextlib.AbstractContextManager[Any]:
    if cluster and device.startswith("cuda"):
        return dask.annotate(resources={"GPU": 1})
    return contextlib.nullcontext()


def _report(model: str, out: str, summary: dict[str, Any]) -> None:
    rows = [f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |"
            for k, v in summary.items() if not isinstance(v, dict | list)]
    create_markdown_artifact(
        key=f"train-{model}", description=f"{model} training run at {out}",
        markdown="\n".join([f"# {model} training", "", f"`{out}`", "", "| metric | value |", "|---|---|", *rows]),
    )


@flow(name="train-metric", log_prints=True)
def train_flow(model: str, data: list[str], out: str, config: dict[str, Any] | None = None,
               resume: bool = False, cluster: str | None = None,
               new_run_folder: bool = False) -> dict[str, Any]:
    """Train ``model`` ("dpam", "cdpam" or "noresqa") on the datasets at ``data``; with
    ``new_run_folder`` the run goes to ``out/RUN-YYYYmmddTHHMMSSZ`` (for triggered retraining)."""
    if new_run_folder:
        from datetime import UTC, datetime

        out = f"{out.rstrip('/')}/run-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}"
    cfg = dict(config or {})
    lib.train_config(model, cfg)  # a bad config fails before any work
    groups = datasets_by_recipe(data)
    missing = [r for r in RECIPES[model] if r not in groups]
    if missing:
        raise ValueError(f"{model} needs {', '.join(missing)} dataset(s); got {sorted(groups)}")
    device = str(cfg.get("device", "cpu"))
    with _resources(device, cluster):
        if model == "dpam":
            summary = train_dpam_task.submit(groups["jnd"], out, cfg, resume).result()
        elif model == "noresqa":
            summary = train_noresqa_task.submit(groups["nmr"], out, cfg, resume).result()
        else:
            summary = {}
            init = None
            for stage in ("contrastive", "jnd", "triplet"):
                stage_out = str(Path(out) / stage)
                final = Path(stage_out, "model.pt")
                if final.exists():  # a finished stage: skipped, its stored summary reported
                    print(f"cdpam {stage}: {final} exists, stage skipped")
                    summary[stage] = {**load_checkpoint(final)["extra"].get("summary", {}), "skipped": True}
                else:
                    summary[stage] = cdpam_stage_task.submit(stage, groups[stage], stage_out, init,
                                                             cfg, resume).result()
                init = str(Path(stage_out) / "model.pt")
    flat = summary if model != "cdpam" else {f"{s}.{k}": v for s, d in summary.items()
                                              for k, v in d.items() if not isinstance(v, dict | list)}
    _report(model, out, flat)
    return summary


@flow(name="build-and-train", log_prints=True)
def build_and_train(model: str, builds: dict[str, dict[str, Any]], data_root: str, out: str,
                    config: dict[str, Any] | None = None, workers: int = 2,
                    cluster: str | None = None) -> dict[str, Any]:
    """Build the datasets ``model`` needs (``builds``: recipe -> spec), then train on them:
    training runs downstream of the builds in one flow run."""
    from pamflow.flows.build import build_dataset

    paths = []
    for recipe in RECIPES[model]:
        path = f"{data_root.rstrip('/')}/{recipe}"
        build_dataset(recipe, builds.get(recipe, {}), path, workers=workers, cluster=cluster)
        paths.append(path)
    return train_flow(model, paths, out, config, cluster=cluster)


def run_training(model: str, data: list[str], out: str, config: dict[str, Any] | None = None, *,
                 resume: bool = False, cluster: str | None = None) -> dict[str, Any]:
    """Run :func:`train_flow` here (tasks in this process) or, with ``cluster``, with its
    tasks on that Dask cluster (GPU workers when ``config["device"]`` is CUDA)."""
    from prefect_dask import DaskTaskRunner

    from pamflow.flows.build import prefect_api

    lib.train_config(model, dict(config or {}))  # a bad config fails before Prefect starts
    with prefect_api():
        runner = train_flow if not cluster else train_flow.with_options(
            task_runner=DaskTaskRunner(address=cluster))
        return runner(model, list(data), out, config, resume, cluster)
