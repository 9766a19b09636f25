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
