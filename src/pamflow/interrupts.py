"""One Ctrl-C (or SIGTERM) stops a pamflow command within seconds.

The ``pamflow`` command :func:`install` s :func:`stop` for SIGINT and SIGTERM: every child
process (Dask workers, a temporary Prefect server, DataLoader workers) is terminated, then
killed if it lingers, one line says what is kept, and the process exits with 128 + the
signal. Nothing half-written is left under a final name: every file pamflow writes is
written atomically, so what is finished is kept and the same command resumes.

A Prefect flow run swaps SIGTERM for its own bridge, which raises inside the flow and waits
for the run's teardown (tens of seconds, with a temporary server and loader workers); the
flows call :func:`rearm` first, so under the command one SIGTERM still stops at once.
Under a Prefect worker or runner (no :func:`install`) Prefect's handling is left alone.

A command that finishes exits quickly too (:func:`freeze_at_exit`): the interpreter's last
garbage collections, which walk every object the imports made, are skipped.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable

_message: list[Callable[[], None]] = []  # says what stopped; set by install()


def stop(signum: int, frame: object) -> None:
    """Terminate this process's children, print the command's line, exit 128 + signum."""
    import psutil

    for say in _message[:1]:
        say()
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


def install(say: Callable[[], None]) -> bool:
    """Make :func:`stop` the SIGINT and SIGTERM handler of this process (main thread only,
    and only over the default handlers); ``say`` prints the one line. Returns whether it
    was installed."""
    if threading.current_thread() is not threading.main_thread():
        return False
    _message[:] = [say]
    for sig in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(sig) in (signal.default_int_handler, signal.SIG_DFL):
            signal.signal(sig, stop)
    return True


def freeze_at_exit() -> None:
    """Freeze every object out of the garbage collector as this process exits, before the
    interpreter's last collections (an ``atexit`` hook; registering it again replaces it).

    Those collections walk everything left, most of it the objects that importing Prefect,
    Dask, SciPy and pamflow made, and find little to free: the operating system frees the
    memory at once. They took 1.5 s of a ``pamflow build --local`` command's exit (its last
    line to its exit: 1.86-1.94 s, 0.32-0.36 s with the hook) and 1.0-1.1 s of a spawned
    build worker's, which a LocalCluster's close waits for. Open files are closed
    explicitly where pamflow writes them, and the standard streams and logging are flushed
    before (the interpreter, and logging's own ``atexit`` hook, which runs after this one)."""
    import atexit
    import gc

    atexit.unregister(gc.freeze)
    atexit.register(gc.freeze)


def rearm() -> None:
    """Inside a flow run started by the ``pamflow`` command: make :func:`stop` the SIGTERM
    handler again (Prefect's flow engine replaced it). A no-op anywhere else."""
    if _message and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop)


__all__ = ["freeze_at_exit", "install", "rearm", "stop"]
