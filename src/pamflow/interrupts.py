"""One Ctrl-C (or SIGTERM) stops a pamflow command within seconds.

The ``pamflow`` command :func:`install` s :func:`stop` for SIGINT and SIGTERM: every child
process (Dask workers, a temporary Prefect server, DataLoader workers) is terminated, then
killed if it lingers (multiprocessing's resource trackers, which ignore both signals, exit
by themselves once this process has), one line says what is kept, and the process exits
with 128 + the signal. Nothing half-written is left under a final name: every file pamflow
writes is written atomically, so what is finished is kept and the same command resumes.

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
from typing import Any

_message: list[Callable[[], None]] = []  # says what stopped; set by install()


def stop(signum: int, frame: object) -> None:
    """Terminate this process's children, print the command's line, exit 128 + signum.
    Whatever goes wrong on the way, the process exits: an exception raised here would
    surface in the main thread, where a flow run's teardown could wait on a server this
    has already stopped."""
    try:
        for say in _message[:1]:
            say()
        _no_restarts()
        _end_children()
    finally:
        try:
            sys.stderr.flush()
        finally:
            os._exit(128 + signum)


def _end_children() -> None:
    import psutil

    # multiprocessing's resource trackers (this process's, the fork server's) ignore SIGINT
    # and SIGTERM: each exits, cleaning up, once the processes writing to it have, so they
    # are left to do that (waiting for them to obey took every stop 3 s)
    children = _descendants()
    for child in children:
        try:
            child.terminate()
        except psutil.Error:
            pass
    alive = _wait(children, timeout=3)
    # and any child started meanwhile (by a thread of this process that was still running)
    late = set(_descendants()) - set(children)
    for child in [*alive, *late]:
        try:
            child.kill()
        except psutil.Error:
            pass


def _wait(processes: list[Any], timeout: float) -> list[Any]:
    """Wait until every one of ``processes`` has ended (a zombie has: a fork server's
    workers, orphaned when it ends, wait for the system to reap them, 1.4 s here, which
    ``psutil.wait_procs`` counted as running); return those still running."""
    import time

    import psutil

    def running(process: Any) -> bool:
        try:
            return bool(process.status() != psutil.STATUS_ZOMBIE)
        except psutil.Error:
            return False

    end = time.monotonic() + timeout
    alive = [p for p in processes if running(p)]
    while alive and time.monotonic() < end:
        time.sleep(0.05)
        alive = [p for p in alive if running(p)]
    return alive


def _descendants() -> list[Any]:
    """This process's descendants (``psutil.Process``), its resource trackers left out."""
    import psutil

    return [c for c in psutil.Process().children(recursive=True) if not _tracker(c)]


def _tracker(process: Any) -> bool:
    """Whether ``process`` (a ``psutil.Process``) is a multiprocessing resource tracker."""
    import psutil

    try:
        return "multiprocessing.resource_tracker" in " ".join(process.cmdline())
    except psutil.Error:  # gone, or a zombie: nothing to wait for either way
        return False


def _no_restarts() -> None:
    """Tell every Dask nanny in this process that its worker is going away on purpose: a
    running nanny starts a new worker when its worker's process exits, which here would
    race this process's exit (a process left behind, or a failed start logged)."""
    nanny = sys.modules.get("distributed.nanny")
    if nanny is None:
        return
    for each in list(nanny.Nanny._instances):
        each.close_gracefully(reason="interrupted")


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
