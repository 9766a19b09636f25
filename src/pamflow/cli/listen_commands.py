"""``pamflow listen serve`` and ``pamflow listen export``: their options (added to the
parser by :func:`add_parser`) and the command."""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table

from pamflow.cli.base import command, console, err
from pamflow.cli.helptext import _subcommand


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    s = _subcommand(
        sub,
        "listen",
        "run a listening test (JND, 2AFC) and export its answers as a dataset",
        "Self-hosted listening tests whose answers become datasets: `serve` runs the web\n"
        "application of a campaign file (JND sessions as in DPAM, or 2AFC triplets as in\n"
        "CDPAM; answers kept in its database); `export` writes the answers as a jnd or\n"
        "triplet dataset with label_source = human.",
        (
            "pamflow listen serve --campaign campaign.yaml --port 8000",
            "pamflow listen export campaign.yaml --out data/jnd-human --retrain",
        ),
        parents,
    )
    lsub = s.add_subparsers(dest="listen_command", required=True, metavar="ACTION")
    sv = _subcommand(
        lsub,
        "serve",
        "serve a campaign's listening test over HTTP",
        "Serve the listening test of a campaign file until Ctrl-C: the start page at /,\n"
        "each listener's session at the link it gives them, the admin page at /admin\n"
        "(the token from $PAMFLOW_LISTEN_ADMIN_TOKEN or the campaign's admin_token, else\n"
        "one made and printed for this run). Answers are written to the campaign's\n"
        "database as they arrive; a restarted server resumes every session.",
        (
            "pamflow listen serve --campaign campaign.yaml",
            "pamflow listen serve --campaign campaign.yaml --host 0.0.0.0 --port 8080",
        ),
        parents,
    )
    sv.add_argument("--campaign", required=True, help="the campaign YAML file")
    sv.add_argument("--host", default="127.0.0.1", help="the address to listen on")
    sv.add_argument("--port", type=int, default=8000, help="the TCP port to listen on")
    ex = _subcommand(
        lsub,
        "export",
        "write a campaign's answers as a jnd or triplet dataset",
        "Write --out: the answers of CAMPAIGN (a campaign file) as a dataset (jnd for JND\n"
        "campaigns, triplet for 2AFC), label_source = human, listeners pseudonymous, the\n"
        "audio each listener heard rendered again from the recorded params. A Prefect flow\n"
        "emits pamflow.dataset.built (labelled for retraining with --retrain); without\n"
        "PREFECT_API_URL a temporary Prefect server records it. --local skips Prefect.",
        (
            "pamflow listen export campaign.yaml --out data/jnd-human",
            "pamflow listen export campaign.yaml --out data/jnd-human --retrain",
        ),
        parents,
    )
    ex.add_argument("campaign", help="the campaign YAML file")
    ex.add_argument("--out", required=True, help="the new dataset folder")
    ex.add_argument(
        "--retrain",
        action="store_true",
        help="label the dataset's event so the training deployments of prefect.yaml fire",
    )
    ex.add_argument(
        "--include-excluded",
        action="store_true",
        help="also export listeners flagged by an attention check or a sentinel",
    )
    ex.add_argument(
        "--local",
        action="store_true",
        help="write the dataset in this process: no Prefect, no event",
    )


@command("listen")
def cmd_listen(args: argparse.Namespace) -> int:
    if args.listen_command == "serve":
        from pamflow.listen.serve import serve

        def exporter(campaign: Any, out: str) -> dict[str, Any]:
            """The admin page's export: a flow run with its event where a Prefect API is
            configured, a plain export otherwise (Prefect is imported only then)."""
            import os

            if os.environ.get("PREFECT_API_URL"):
                from pamflow.flows.listen import export_flow

                return dict(export_flow(args.campaign, out))
            from pamflow.listen.export import export_campaign

            return export_campaign(campaign, out)

        serve(args.campaign, host=args.host, port=args.port, exporter=exporter, say=console.print)
        return 0
    from pamflow.flows.settings import absolute
    from pamflow.listen.campaign import load_campaign
    from pamflow.listen.export import export_campaign

    campaign, _ = load_campaign(args.campaign)  # a bad file fails here, before Prefect starts
    out = absolute(args.out)
    if args.local:
        summary = export_campaign(campaign, out, include_excluded=args.include_excluded)
    else:
        from pamflow.flows.listen import export_listening

        summary = export_listening(
            args.campaign, out, retrain=args.retrain, include_excluded=args.include_excluded
        )
    if args.local and args.retrain:
        err.print("--local: no event was emitted, so --retrain fired nothing")
    table = Table(title=f"{summary['recipe']} dataset of listening campaign {campaign.name}")
    table.add_column("field")
    table.add_column("value", justify="right")
    for k, v in summary.items():
        table.add_row(k, str(v))
    console.print(table)
    return 0
