"""The temporary Prefect server of a command run without ``PREFECT_API_URL``.

Prefect would start one itself (``SubprocessASGIServer``: uvicorn serving
``prefect.server.api.server:create_app`` in a child process, its UI off), but importing
that class imports the whole server package into the command's process first: 2.4-2.6 s of
CPU before the child even starts, and the child then takes 5-6 s more on an idle machine.
:class:`TemporaryServer` runs the same command without the import, and :func:`early`
starts it as a command begins, so that the server's start overlaps the command's own work
(reading the spec, preparing the sources, starting the cluster) instead of following it.
:func:`pamflow.flows.build.prefect_api` takes the server :func:`early` started, or starts
one itself.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from pamflow.flows.cluster import configured_api_url

#: the server's environment beyond the command's, as Prefect's own temporary server has it:
#: no UI, and marked ephemeral (its services run in its process)
SERVER_ENV = {
    "PREFECT_UI_ENABLED": "0",
    "PREFECT__SERVER_EPHEMERAL": "1",
    "PREFECT__SERVER_FINAL": "1",
}
#: uvicorn's exit status when it cannot start (its port taken since it was chosen)
STARTUP_FAILURE = 3


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TemporaryServer:
    """A Prefect server in a child process on a free loopback port, for one command: no
    UI, its database Prefect's own (``PREFECT_HOME``), stopped by :meth:`stop` (or as this
    process exits)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.address}/api"

    def start(self) -> TemporaryServer:
        """Start the server's process and return at once (:meth:`wait` waits for it)."""
        import prefect
        from prefect.logging import get_logger
        from prefect.logging.configuration import ensure_logging_setup
        from prefect.settings import get_current_settings

        env = {
            **os.environ,
            **SERVER_ENV,
            **get_current_settings().to_environment_variables(exclude_unset=True),
        }
        env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # no network here
        # Prefect's own words, on its logger, configured as `import prefect` configures it:
        # shown as Prefect's are (pamflow -v)
        ensure_logging_setup()
        get_logger().info("Starting temporary server on %s", self.address)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--app-dir",
                str(Path(prefect.__file__).parent.parent),
                "--factory",
                "prefect.server.api.server:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "error",
                "--lifespan",
                "on",
            ],
            env=env,
        )
        atexit.register(self.stop)
        return self

    def wait(self, timeout: float = 120) -> None:
        """Return once the server answers its health check. A server that could not take
        its port (taken meanwhile) is started again on another, and :attr:`api_url`
        changes; one that exits otherwise, or does not answer in ``timeout`` seconds, is a
        ``RuntimeError``."""
        import httpx

        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=5) as client:
            while True:
                assert self.process is not None, "wait() before start()"
                code = self.process.poll()
                if code == STARTUP_FAILURE:
                    self.port = free_port()
                    self.start()
                    continue
                if code is not None:
                    raise RuntimeError(f"the temporary Prefect server exited ({code}) early")
                with contextlib.suppress(httpx.TransportError):
                    if client.get(f"{self.api_url}/health").status_code == 200:
                        return
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"the temporary Prefect server at {self.api_url} did not answer "
                        f"within {timeout:.0f} s"
                    )
                time.sleep(0.05)

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 5 s) and reap it; idempotent."""
        process, self.process = self.process, None
        if process is None:
            return
        atexit.unregister(self.stop)
        if process.poll() is None:
            from prefect.logging import get_logger

            get_logger().info("Stopping temporary server on %s", self.address)
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
        process.wait()


_early: TemporaryServer | None = None


@contextlib.contextmanager
def early(needed: bool = True) -> Iterator[None]:
    """For a command that will run a flow: start the temporary server now, where ``needed``
    and no Prefect API is configured, so that it starts while the command goes on;
    :func:`temporary` takes it. One nothing took (the command stopped first) is stopped
    when the block ends."""
    global _early
    if needed and _early is None and not configured_api_url():
        _early = TemporaryServer().start()
    try:
        yield
    finally:
        left, _early = _early, None
        if left is not None:
            left.stop()


def temporary() -> TemporaryServer:
    """The server :func:`early` started (taken: the caller stops it), else one started
    now."""
    global _early
    server, _early = _early, None
    return server if server is not None else TemporaryServer().start()
