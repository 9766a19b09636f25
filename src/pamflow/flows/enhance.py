"""Adaptive EQ as a Prefect flow: :func:`enhance_flow` runs one :func:`enhance_task` per
initialisation (``block``, ``random``), each one call into
:func:`pamflow.models.enhance_files.enhance_paths`, so a pipeline can enhance a folder (or the
held-out clips of a ``domain`` dataset) downstream of ``pamflow train scorer``. Tasks pass
paths and plain values, never audio; the summary of each initialisation is published as the
artifact ``enhance-summary``. ``pamflow enhance`` calls the library directly (no Prefect)."""

from __future__ import annotations

import dataclasses
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact

from pamflow import interrupts
from pamflow.flows import settings
from pamflow.models.enhance import EnhanceConfig
from pamflow.models.enhance_files import LSD_BOUND_DB, enhance_paths


@task(name="enhance", task_run_name="enhance-{init}")
def enhance_task(
    checkpoint: str,
    inp: str,
    out: str,
    config: dict[str, Any],
    init: str,
    split: str = "all",
    domain: str | None = None,
    limit: int | None = None,
    lsd_bound_db: float = LSD_BOUND_DB,
) -> dict[str, Any]:
    """Enhance ``inp`` into ``out`` with one initialisation; return the records and the
    summary (no arrays)."""
    cfg = EnhanceConfig(**{**config, "init": init})
    result = enhance_paths(
        checkpoint,
        inp,
        out,
        cfg,
        split=split,  # type: ignore[arg-type]
        domain=domain,
        limit=limit,
        lsd_bound_db=lsd_bound_db,
    )
    result.pop("views", None)
    return result


@flow(name="enhance", log_prints=True)
def enhance_flow(
    checkpoint: str,
    inp: str,
    out: str,
    config: dict[str, Any] | None = None,
    inits: list[str] | None = None,
    split: str = "all",
    domain: str | None = None,
    limit: int | None = None,
    lsd_bound_db: float = LSD_BOUND_DB,
) -> dict[str, Any]:
    """Enhance ``inp`` (file, folder or domain dataset) against the scorer ``checkpoint``
    into ``out`` (``out/<init>`` with several ``inits``); return the summary by
    initialisation and every record."""
    interrupts.rearm()  # under the pamflow command, one SIGTERM stops at once
    base = EnhanceConfig(**(config or {}))  # a bad config fails before any task
    modes = inits or [base.init]
    plain = dataclasses.asdict(base)
    futures = {
        mode: enhance_task.submit(
            settings.absolute(checkpoint),
            settings.absolute(inp),
            settings.absolute(f"{out.rstrip('/')}/{mode}" if len(modes) > 1 else out),
            plain,
            mode,
            split,
            domain,
            limit,
            lsd_bound_db,
        )
        for mode in modes
    }
    results = {mode: f.result() for mode, f in futures.items()}
    summary = {mode: r["summary"][mode] for mode, r in results.items()}
    lines = [
        "# enhance",
        "",
        f"`{inp}` -> `{out}`",
        "",
        "| init | metric | value |",
        "|---|---|---|",
    ]
    for mode, s in summary.items():
        lines += [f"| {mode} | {k} | {v} |" for k, v in s.items()]
    create_markdown_artifact(
        key="enhance-summary", markdown="\n".join(lines), description=f"enhance {inp}"
    )
    return {"summary": summary, "rows": [r for res in results.values() for r in res["rows"]]}


__all__ = ["enhance_flow", "enhance_task"]
