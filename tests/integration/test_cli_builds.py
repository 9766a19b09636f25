"""`pamflow build` as a user runs it: on a Dask cluster started from the command line
(one worker killed mid-build), and killed with SIGKILL halfway then run again."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from pamflow import storage
from pamflow.flows.server import free_port
from pamflow.pipeline import build
from pamflow.testing import row_digests

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
SPEC = {
    "num_examples": 48,
    "shard_size": 6,
    "clip_seconds": 1.0,
    "queries_per_sequence": 6,
    "families": ["white_noise", "reverb_drr", "mp3", "mulaw", "eq", "pops", "dropouts"],
    "seed": 21,
}


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("spec") / "spec.yaml"
    path.write_text(yaml.safe_dump(SPEC))
    return path


@pytest.fixture(scope="module")
def reference_rows(tmp_path_factory, demo_corpus):
    out = str(tmp_path_factory.mktemp("ref") / "local")
    build.build_local("jnd", SPEC, out)
    return row_digests(out)


def _wait_port(port: int, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def _env(prefect_server: str) -> dict[str, str]:
    return {**os.environ, "PREFECT_API_URL": prefect_server}


def _shards(out: Path) -> list[Path]:
    return sorted((out / "shards").glob("part-*.parquet")) if (out / "shards").exists() else []


def _wait_for_shards(out: Path, proc: subprocess.Popen, n: int, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while len(_shards(out)) < n:
        if proc.poll() is not None:
            raise AssertionError(
                f"build ended (rc {proc.returncode}) before {n} shards were written"
            )
        if time.time() > deadline:
            raise TimeoutError(f"fewer than {n} shards after {timeout} s")
        time.sleep(0.05)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


def test_build_on_a_command_line_cluster_survives_a_killed_worker(
    prefect_server, spec_file, reference_rows, tmp_path
):
    port = free_port()
    procs = []
    try:
        procs.append(
            subprocess.Popen(
                [
                    BIN / "dask",
                    "scheduler",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--no-dashboard",
                ],
                start_new_session=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        _wait_port(port)
        addr = f"tcp://127.0.0.1:{port}"
        for _ in range(2):
            procs.append(
                subprocess.Popen(
                    [
                        BIN / "dask",
                        "worker",
                        addr,
                        "--nthreads",
                        "1",
                        "--host",
                        "127.0.0.1",
                        "--no-dashboard",
                        "--no-nanny",
                    ],
                    env={
                        **os.environ,
                        "MALLOC_TRIM_THRESHOLD_": "1073741824",
                        "MALLOC_MMAP_THRESHOLD_": "67108864",
                    },
                    start_new_session=True,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        from distributed import Client

        with Client(addr, timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
        out = tmp_path / "cluster"
        cli = subprocess.Popen(
            [
                BIN / "pamflow",
                "build",
                "jnd",
                "--config",
                str(spec_file),
                "--out",
                str(out),
                "--cluster",
                addr,
            ],
            env=_env(prefect_server),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        _wait_for_shards(out, cli, 1)
        _kill_group(procs[1])  # one worker dies mid-build; the other finishes the work
        output, _ = cli.communicate(timeout=600)
        assert cli.returncode == 0, output
        assert len(_shards(out)) == 8
        assert row_digests(str(out)) == reference_rows
    finally:
        for p in procs:
            _kill_group(p)


def test_sigkill_halfway_then_rerun_gives_the_uninterrupted_rows(
    prefect_server, spec_file, reference_rows, tmp_path
):
    out = tmp_path / "killed"
    cmd = [
        BIN / "pamflow",
        "build",
        "jnd",
        "--config",
        str(spec_file),
        "--out",
        str(out),
        "--workers",
        "2",
    ]
    first = subprocess.Popen(
        cmd,
        env=_env(prefect_server),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _wait_for_shards(out, first, 2)
    _kill_group(first)  # the CLI, the flow and its LocalCluster workers, all at once
    written = len(_shards(out))
    assert 2 <= written < 8, f"{written} shards: not killed halfway"
    assert not (out / "dataset.json").exists()
    done = subprocess.run(
        cmd, env=_env(prefect_server), capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert storage.Dataset.open(str(out)).verify().ok
    assert row_digests(str(out)) == reference_rows
    leftovers = [p for p in out.rglob("*") if p.name.endswith(".tmp")]
    assert not leftovers, f"partial files left: {leftovers}"
