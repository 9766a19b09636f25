"""The temporary Prefect server a command starts when no PREFECT_API_URL is set: a real
server process on loopback, started early by the command and taken by the flow."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator

import httpx
import psutil
import pytest

from pamflow.flows import server

pytestmark = pytest.mark.integration


def _health(s: server.TemporaryServer) -> int:
    return httpx.get(f"{s.api_url}/health", timeout=10).status_code


@contextlib.contextmanager
def _no_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This process as a command run without PREFECT_API_URL sees it (the session's test
    server, if started, is left out for the block)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        yield


def test_a_temporary_server_answers_until_stopped():
    s = server.TemporaryServer().start()
    try:
        s.wait(timeout=120)
        assert _health(s) == 200
        process = s.process
        assert process is not None
    finally:
        s.stop()
    assert process.poll() is not None  # reaped, not left running
    with pytest.raises(httpx.TransportError):
        _health(s)
    s.stop()  # again: nothing to do


def test_a_server_whose_port_was_taken_moves_to_another_and_its_url_follows():
    s = server.TemporaryServer()
    taken = s.port
    with socket.socket() as other:  # another process got the port between choice and start
        other.bind(("127.0.0.1", taken))
        other.listen()
        try:
            s.start().wait(timeout=120)
            assert s.port != taken
            assert s.api_url == f"http://127.0.0.1:{s.port}/api"
            assert _health(s) == 200
        finally:
            s.stop()


def test_early_starts_a_server_only_where_no_api_is_configured_and_stops_one_left_untaken(
    monkeypatch,
):
    with _no_api(monkeypatch):
        with server.early(needed=False):
            assert server._early is None
        with server.early():
            left = server._early
            assert left is not None and left.process is not None
            process = left.process
        assert server._early is None
        assert process.wait(timeout=10) is not None  # nothing took it: stopped at the end
        with server.early():
            started = server._early
            taken = server.temporary()  # what prefect_api does: the early one, not another
            assert taken is started and server._early is None
        try:
            assert taken.process is not None and taken.process.poll() is None  # the taker's
            taken.wait(timeout=120)
            assert _health(taken) == 200
        finally:
            taken.stop()
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")  # configured: no server
    with server.early():
        assert server._early is None


EARLY = """
import json, sys
from pamflow.flows import server
from {module} import {function} as original
import {module} as target

seen = []

def watched(*args, **kwargs):
    early = server._early
    seen.append(early.process.pid if early is not None and early.process is not None else None)
    {then}

target.{function} = watched
if __name__ == "__main__":
    from pamflow.cli import main
    code = main(sys.argv[1:])
    print("SEEN " + json.dumps(seen))
    sys.exit(code)
"""


def test_pamflow_build_starts_its_server_before_it_reads_the_spec(tmp_path):
    """The command, as a user runs it without PREFECT_API_URL: its temporary server is
    already starting when the spec is prepared, and is gone when the command ends, here
    refused by ``prepare`` (the folder holds a file of someone else's)."""
    out = tmp_path / "ds"
    out.mkdir()
    (out / "notes.txt").write_text("not a dataset")
    script = tmp_path / "early.py"
    then = "return original(*args, **kwargs)"
    script.write_text(EARLY.format(module="pamflow.pipeline.build", function="prepare", then=then))
    _server_ran_and_is_gone(script, "build", "jnd", "--out", str(out), "--workers", "2")


def _server_ran_and_is_gone(script, *argv: str) -> None:
    """``script`` run as the command ``argv`` without PREFECT_API_URL: refused (one error
    line), a temporary server running each time the watched function was called, and that
    server gone after the command."""
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    run = subprocess.run(
        [sys.executable, str(script), *argv],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 2, run.stdout + run.stderr
    assert run.stderr.strip().splitlines()[-1].startswith("error: "), run.stderr
    seen = json.loads(run.stdout.split("SEEN ", 1)[1])
    assert seen and all(isinstance(pid, int) for pid in seen), seen
    assert not psutil.pid_exists(seen[0]) or psutil.Process(seen[0]).status() == "zombie"


def test_pamflow_demo_starts_the_builds_server_before_its_gallery(tmp_path):
    """`pamflow demo` (the README's first command) starts its build's temporary server as
    it begins, so that it starts while the gallery is made; a demo stopped in the gallery
    (here: the disk filled) stops the server too."""
    script = tmp_path / "early.py"
    then = "raise OSError(28, 'No space left on device', 'gallery.wav')"
    script.write_text(EARLY.format(module="pamflow.pipeline.demo", function="run_demo", then=then))
    _server_ran_and_is_gone(script, "demo", "--out", str(tmp_path / "demo"))
