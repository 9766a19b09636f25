"""The ``pamflow`` command: :func:`main` parses (:mod:`~pamflow.cli.parser`) and runs a
subcommand (:mod:`~pamflow.cli.commands`); a user error is one line on stderr, exit 2."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from pamflow import interrupts
from pamflow.cli.commands import COMMANDS, err
from pamflow.cli.parser import build_parser

#: what an interrupted command leaves and how to go on, by command
ON_INTERRUPT = {
    "build": "complete shards are kept; run the same command again to resume",
    "train": "the last checkpoint is kept; run the same command with --resume to continue",
    "demo": "run it again to finish",
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    what = ON_INTERRUPT.get(args.command, "stopped")
    interrupts.install(lambda: err.print(f"interrupted: {args.command} stopped; {what}"))
    try:
        return COMMANDS[args.command](args)
    except (ValueError, FileNotFoundError, FileExistsError) as e:
        err.print(f"[red]error:[/] {e}")
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

__all__ = ["main"]
