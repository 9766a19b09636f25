"""The ``pamflow`` command: :func:`main` parses (:mod:`~pamflow.cli.parser`) and runs a
subcommand (:mod:`~pamflow.cli.commands`).

Quiet by default: the console shows pamflow's own output (progress, tables, results) and
warnings, not the INFO logs of Prefect and Dask, nor their shutdown chatter, nor a failed
flow run's traceback (:func:`console_logs`); a user error is one line on stderr and exit 2,
any other error one line and exit 1. ``--verbose`` shows the logs and, on an error, the
traceback. Runs still report everything to the Prefect server: only the console is quiet.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import traceback
from collections.abc import Iterator, Sequence
from typing import Any

from rich.markup import escape

from pamflow import interrupts
from pamflow.cli import (  # noqa: F401  (they register the subcommands)
    commands,
    enhance,
    experiments,
    listen_commands,
    model_commands,
)
from pamflow.cli.base import COMMANDS, err
from pamflow.cli.parser import build_parser
from pamflow.flows.cluster import environ

#: what an interrupted command leaves and how to go on, by command
ON_INTERRUPT = {
    "build": "complete shards are kept; run the same command again to resume",
    "train": "the last checkpoint is kept; run the same command with --resume to continue",
    "demo": "run it again to finish",
    "listen": "every answer received is saved; serve again and sessions resume",
}

#: errors that are the user's to fix (a bad path, spec, config or dataset): exit 2
USER_ERRORS: tuple[type[Exception], ...] = (ValueError, OSError)
#: loggers of Prefect's background services, which warn while they drain at exit
SHUTDOWN_CHATTER = frozenset({"EventsWorker", "APILogWorker"})


class QuietConsole(logging.Filter):
    """What the console shows without ``--verbose``: warnings and errors, but not those of
    a flow or task run (the command says what failed, in one line; the run's logs, tracebacks
    included, are on the Prefect server), nor Dask's warnings about its own machinery
    ("Worker process still alive after 4.0 seconds, killing", tasks cancelled as a cluster
    closes), nor Prefect's services draining at exit ("Still processing items"), nor the
    temporary Prefect server's own services (which log tracebacks when a Ctrl-C stops them
    mid-write: the command's one line says what happened)."""

    def filter(self, record: logging.LogRecord) -> bool:
        name = record.name
        if name.startswith(("prefect.flow_runs", "prefect.task_runs", "prefect.server.")):
            return record.levelno >= logging.CRITICAL
        if name == "distributed" or name.startswith("distributed.") or name in SHUTDOWN_CHATTER:
            return record.levelno >= logging.ERROR
        return record.levelno >= logging.WARNING


_QUIET = QuietConsole()


class QuietConsoleHandler(logging.Handler):
    """Prefect's console handler with :class:`QuietConsole`: the class named by
    ``PREFECT_LOGGING_HANDLERS_CONSOLE_CLASS`` in quiet mode, so every process Prefect sets
    up logging in (this one, Dask workers, a temporary Prefect server) inherits it. It is
    a class (``logging.config`` wants one) that makes a ``PrefectConsoleHandler``, so that
    importing this module does not import Prefect."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        from prefect.logging.handlers import PrefectConsoleHandler

        handler = PrefectConsoleHandler(*args, **kwargs)
        handler.addFilter(_QUIET)
        return handler


#: quiet mode, for this process and the processes it starts (unless the user set them)
QUIET_ENV = {
    "PREFECT_LOGGING_HANDLERS_CONSOLE_CLASS": f"{__name__}.QuietConsoleHandler",
    "DASK_LOGGING__DISTRIBUTED": "error",
}
#: logger levels set in this process for the command in quiet mode
QUIET_LEVELS = {"distributed": logging.ERROR}


@contextlib.contextmanager
def console_logs(verbose: bool) -> Iterator[None]:
    """Quiet console logs for one command (see :class:`QuietConsole`), or with ``verbose``
    Prefect's INFO logs; the environment and loggers are as they were afterwards.

    The settings go into the environment before Prefect or Dask is imported, so that this
    process and every process it starts (Dask workers, the temporary Prefect server) log
    alike; where Prefect has set up logging already (a caller in the same process), its
    console handlers get the filter directly. Levels of loggers are left alone (but those
    of ``distributed``), so the Prefect server still receives the runs' INFO logs."""
    env: dict[str, str] = {}
    if verbose:
        if os.environ.get("PREFECT_LOGGING_LEVEL", "").upper() not in ("DEBUG", "INFO"):
            env["PREFECT_LOGGING_LEVEL"] = "INFO"
    else:
        env = {k: v for k, v in QUIET_ENV.items() if k not in os.environ}
    root = logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in QUIET_LEVELS}
    try:
        if not verbose:
            for name, level in QUIET_LEVELS.items():
                logging.getLogger(name).setLevel(level)
            handlers = sys.modules.get("prefect.logging.handlers")
            if handlers is not None:  # Prefect set up logging already: filter its console
                for h in root.handlers:
                    if isinstance(h, handlers.PrefectConsoleHandler):
                        h.addFilter(_QUIET)
        with environ(env):
            yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        for h in root.handlers:
            h.removeFilter(_QUIET)


def one_line(e: BaseException) -> str:
    """An exception's message on one line (``path: reason`` for an OS error)."""
    if isinstance(e, OSError) and e.strerror and e.filename:
        text = f"{e.filename}: {e.strerror}"
    else:
        text = str(e) or type(e).__name__
    return " ".join(text.split())


def command_in(argv: Sequence[str]) -> str:
    """The subcommand ``argv`` runs: its first word that is not an option ("" if none; the
    tool's own options take no value)."""
    return next((a for a in argv if not a.startswith("-")), "")


def main(argv: Sequence[str] | None = None) -> int:
    interrupts.freeze_at_exit()  # the command's exit skips the last collections (1.5 s)
    args = build_parser(command_in(sys.argv[1:] if argv is None else argv)).parse_args(argv)
    verbose = bool(args.verbose)
    what = ON_INTERRUPT.get(args.command, "stopped")
    interrupts.install(lambda: err.print(f"interrupted: {args.command} stopped; {what}"))
    with console_logs(verbose):
        try:
            return COMMANDS[args.command](args)
        except USER_ERRORS as e:
            if verbose:
                traceback.print_exc()
            err.print(f"[red]error:[/] {escape(one_line(e))}")
            return 2
        except Exception as e:  # a bug: one line too, the traceback with --verbose
            if verbose:
                traceback.print_exc()
            hint = "" if verbose else "; `pamflow --verbose ...` shows the traceback"
            err.print(f"[red]error:[/] {escape(type(e).__name__)}: {escape(one_line(e))}{hint}")
            return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

__all__ = ["QuietConsole", "QuietConsoleHandler", "console_logs", "main"]
