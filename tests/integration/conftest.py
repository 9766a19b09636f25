"""Fixtures of the integration tests: ``listen_server``, `pamflow listen serve` as a user
starts it (a subprocess on a free port of 127.0.0.1)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
import yaml

from pamflow.flows.server import free_port

BIN = Path(sys.executable).parent
LISTEN_ADMIN = "integration-admin-token-0123456789"


class ListenServer:
    """A `pamflow listen serve` process; ``start()`` again after ``kill()`` restarts it on
    the same port and database."""

    def __init__(self, campaign: Path, log: Path) -> None:
        self.campaign = campaign
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, wait: bool = True) -> ListenServer:
        env = {**os.environ, "PAMFLOW_LISTEN_ADMIN_TOKEN": LISTEN_ADMIN}
        cmd = [
            str(BIN / "pamflow"),
            "listen",
            "serve",
            "--campaign",
            str(self.campaign),
            "--port",
            str(self.port),
        ]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        return self.wait() if wait else self

    def wait(self, timeout: float = 90) -> ListenServer:
        """Until the server answers (one line of its log if it exited)."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"pamflow listen serve exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"pamflow listen serve did not start: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush, as a crash or a power cut of the process."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@pytest.fixture
def listen_server(tmp_path, demo_corpus) -> Iterator[Callable[..., ListenServer]]:
    """``listen_server(name, **fields)``: a campaign file in ``tmp_path`` served by a
    started `pamflow listen serve` (``wait=False``: started, not yet answering; ``.wait()``
    it); every server is stopped at the end."""
    servers: list[ListenServer] = []

    def start(name: str, wait: bool = True, **fields: object) -> ListenServer:
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump({"name": name, **fields}))
        server = ListenServer(path, tmp_path / f"{name}.log")
        servers.append(server)
        return server.start(wait)

    yield start
    for s in servers:
        s.stop()


@pytest.fixture
def listen_admin() -> SimpleNamespace:
    return SimpleNamespace(token=LISTEN_ADMIN, headers={"Authorization": f"Bearer {LISTEN_ADMIN}"})
