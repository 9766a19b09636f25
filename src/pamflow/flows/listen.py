"""Listening-test exports as Prefect flows: the answers of a campaign become a dataset,
and the dataset's ``pamflow.dataset.built`` event fires the training deployments.

``export_listening(campaign, out)`` runs :func:`export_flow` (one call into
:func:`pamflow.listen.export.export_campaign`, then the event of every finished dataset,
:func:`pamflow.flows.build.emit_built`, labelled ``pamflow.retrain: "true"`` with
``retrain``). Without ``PREFECT_API_URL`` a temporary Prefect server records the run, as
for builds. :func:`scheduled_export` is what a deployment runs on a schedule: a fresh
folder ``OUT_ROOT/CAMPAIGN-YYYYmmddTHHMMSSZ`` each time (``out_root`` defaults to
``$PAMFLOW_DATA_DIR/listen``, read when the flow runs).
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from pamflow import interrupts
from pamflow.flows import settings
from pamflow.flows.build import emit_built, prefect_api, summary_markdown
from pamflow.listen.campaign import load_campaign
from pamflow.listen.export import export_campaign


@flow(name="listen-export", log_prints=True)
def export_flow(
    campaign: str, out: str, retrain: bool = False, include_excluded: bool = False
) -> dict[str, Any]:
    """Export the answers of the campaign file ``campaign`` into ``out`` (absolute, or a
    URL); emit the dataset's event (``retrain``: labelled so the training deployments fire)."""
    interrupts.rearm()
    parsed, _ = load_campaign(campaign)
    summary = export_campaign(parsed, out, include_excluded=include_excluded)
    get_run_logger().info(
        "exported %s answers of %s listeners -> %s", summary["answers"], summary["listeners"], out
    )
    create_markdown_artifact(
        key=f"listen-{parsed.name.replace('_', '-')}",
        markdown=summary_markdown(summary),
        description=f"{parsed.recipe} dataset of listening campaign {parsed.name} at {out}",
    )
    emit_built(summary["recipe"], out, summary["rows"], retrain)
    return summary


def export_listening(
    campaign: str, out: str, *, retrain: bool = False, include_excluded: bool = False
) -> dict[str, Any]:
    """Run :func:`export_flow` (``out`` made absolute first: triggered trainings run
    elsewhere) against ``PREFECT_API_URL``, or a temporary server without one."""
    out = settings.absolute(out)
    with prefect_api():
        return export_flow(campaign, out, retrain, include_excluded)


@flow(name="scheduled-listen-export", log_prints=True)
def scheduled_export(
    campaign: str, out_root: str | None = None, retrain: bool = True
) -> dict[str, Any]:
    """An export into a fresh folder (for deployments; see the module docstring)."""
    interrupts.rearm()
    parsed, _ = load_campaign(campaign)
    root = out_root or f"{settings.required(settings.DATA_DIR).rstrip('/')}/listen"
    out = settings.fresh_folder(root, parsed.name)
    return export_flow(campaign, out, retrain)


__all__ = ["export_flow", "export_listening", "scheduled_export"]
