"""A finished `pamflow` command exits without the interpreter's last garbage collections
(pamflow.interrupts.freeze_at_exit): they walked every object its imports made, 1.5 s of a
`pamflow build --local` command's exit."""

from __future__ import annotations

import subprocess
import sys

EXIT = """
import atexit, gc, sys
atexit.register(lambda: print("frozen at exit", gc.get_freeze_count()))  # runs last
from pamflow.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_command_freezes_what_is_left_before_the_interpreter_s_last_collections():
    for argv in (["build", "--help"], ["build", "nosuchrecipe", "--out", "x", "--local"]):
        done = subprocess.run(
            [sys.executable, "-c", EXIT, *argv], capture_output=True, text=True, timeout=120
        )
        assert done.returncode in (0, 2), done.stderr
        (line,) = [ln for ln in done.stdout.splitlines() if ln.startswith("frozen at exit")]
        assert int(line.split()[-1]) > 10_000, (argv, line)  # the imports' objects, at least


STOPPED = """
import sys, time
from multiprocessing import resource_tracker
from pamflow import interrupts
interrupts.install(lambda: print("interrupted: here", file=sys.stderr, flush=True))
resource_tracker.ensure_running()  # as Dask's workers and the fork server start it
print(resource_tracker._resource_tracker._pid, flush=True)
time.sleep(120)
"""


def test_ctrl_c_does_not_wait_for_multiprocessing_s_resource_tracker():
    """The tracker ignores SIGINT and SIGTERM and exits once its parent has: a stop that
    waited for it to obey took 3 s every time, and must not leave it behind either."""
    import os
    import signal
    import time

    import psutil

    proc = subprocess.Popen([sys.executable, "-c", STOPPED], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    tracker = psutil.Process(int(proc.stdout.readline()))
    t0 = time.monotonic()
    os.kill(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    seconds = time.monotonic() - t0
    assert proc.returncode == 130 and err.strip() == "interrupted: here", err
    assert seconds < 2.5, f"took {seconds:.1f} s to stop"
    tracker.wait(timeout=10)  # gone by itself once its parent had exited
