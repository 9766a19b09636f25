"""The ``pamflow`` command: :func:`main` parses (:mod:`~pamflow.cli.parser`) and runs a
subcommand (:mod:`~pamflow.cli.commands`); a user error is one line on stderr, exit 2."""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Sequence

from pamflow.cli.commands import COMMANDS, err
from pamflow.cli.parser import build_parser

#: what an interrupted command leaves and how to go on, by command
ON_INTERRUPT = {
    "build": "complete shards are kept; run the same command again to resume",
    "train": "the last checkpoint is kept; run the same command with --resume to continue",
    "demo": "run it again to finish",
}


_running: list[str] = []  # the command this process runs (for the interrupt message)


def _stop(signum: int, frame: object) -> None:
    """One Ctrl-C (or SIGTERM) stops everything this command started, within seconds:
    every child process (Dask workers, a temporary Prefect server, loader workers) is
    terminated, then killed if it lingers, and the command exits with 128 + the signal.
    Nothing half-written is left under a final name: every file is written atomically."""
    import psutil

    command = _running[0] if _running else ""
    what = ON_INTERRUPT.get(command, "stopped")
    err.print(f"interrupted: {command or 'pamflow'} stopped; {what}")
    children = psutil.Process().children(recursive=True)
    for child in children:
        try:
            child.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(children, timeout=3)
    for child in alive:
        try:
            child.kill()
        except psutil.Error:
            pass
    sys.stderr.flush()
    os._exit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if threading.current_thread() is threading.main_thread():
        _running[:] = [args.command]
        for sig in (signal.SIGINT, signal.SIGTERM):
            if signal.getsignal(sig) in (signal.default_int_handler, signal.SIG_DFL):
                signal.signal(sig, _stop)
    try:
        return COMMANDS[args.command](args)
    except (ValueError, FileNotFoundError, FileExistsError) as e:
        err.print(f"[red]error:[/] {e}")
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

__all__ = ["main"]
