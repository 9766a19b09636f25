"""pamflow as a service, end to end, against real processes on 127.0.0.1.

`prefect server start`; a process work pool and `prefect worker`; `prefect deploy --all` of
the repository's own prefect.yaml (sizes shrunk only through the documented settings
PAMFLOW_SPEC_OVERRIDES / PAMFLOW_TRAIN_OVERRIDES in the worker's environment); `dask
scheduler` with two `pamflow worker` processes, one declaring GPU=1 (it trains on the CPU
here). The servers are shared by the tests of this module, which run in order.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from pamflow.flows.server import free_port
from pamflow.storage import Dataset

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.integration

SPEC_OVERRIDES = {
    "num_examples": 16,
    "shard_size": 4,
    "clip_seconds": 1.0,
    "queries_per_sequence": 2,
    "families": ["white_noise", "eq"],
}
TRAIN_OVERRIDES = {
    "tiny": True,
    "epochs": 1,
    "batch_size": 4,
    "clip_seconds": 1.0,
    "eval_fraction": 0.5,
}


def _wait(what: str, ok: Callable[[], Any], timeout: float, every: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = ok()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


class Api:
    """The few REST calls the tests make to the Prefect server."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=30)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        r = self.http.post(path, json=body)
        r.raise_for_status()
        return r.json()

    def deployment(self, flow: str, name: str) -> dict[str, Any]:
        r = self.http.get(f"/deployments/name/{flow}/{name}")
        r.raise_for_status()
        return r.json()

    def flow_runs(self, deployment_id: str) -> list[dict[str, Any]]:
        return self.post(
            "/flow_runs/filter", {"flow_runs": {"deployment_id": {"any_": [deployment_id]}}}
        )

    def task_runs(self, flow_run_id: str) -> list[dict[str, Any]]:
        return self.post("/task_runs/filter", {"flow_runs": {"id": {"any_": [flow_run_id]}}})

    def subflow_runs(self, parent_flow_run_id: str) -> list[dict[str, Any]]:
        tasks = self.task_runs(parent_flow_run_id)
        return self.post(
            "/flow_runs/filter",
            {"flow_runs": {"parent_task_run_id": {"any_": [t["id"] for t in tasks]}}},
        )

    def artifact(self, key: str) -> str | None:
        found = self.post("/artifacts/latest/filter", {"artifacts": {"key": {"any_": [key]}}})
        return found[0]["data"] if found else None

    def events(self, name: str) -> list[dict[str, Any]]:
        found = self.post("/events/filter", {"filter": {"event": {"name": [name]}}, "limit": 50})
        return list(found["events"])


@pytest.fixture(scope="module")
def service(tmp_path_factory, demo_corpus) -> Iterator[SimpleNamespace]:
    base = tmp_path_factory.mktemp("service")
    api_port, dask_port = free_port(), free_port()
    api = f"http://127.0.0.1:{api_port}/api"
    scheduler = f"tcp://127.0.0.1:{dask_port}"
    env = {
        **os.environ,
        "PREFECT_HOME": str(base / "prefect-home"),
        "PREFECT_API_URL": api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "2",
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    procs: list[subprocess.Popen[bytes]] = []
    logs = base / "logs"
    logs.mkdir()

    def start(name: str, cmd: list[str], extra: dict[str, str] | None = None) -> None:
        out = open(logs / f"{name}.log", "wb")
        procs.append(
            subprocess.Popen(
                cmd, env={**env, **(extra or {})}, cwd=base, stdout=out, stderr=subprocess.STDOUT
            )
        )

    def run(cmd: list[str], cwd: Path = base) -> None:
        done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, f"{cmd}: {done.stdout[-2000:]}{done.stderr[-2000:]}"

    try:
        start(
            "server",
            [
                str(BIN / "prefect"),
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(api_port),
            ],
        )
        start(
            "scheduler",
            [
                str(BIN / "dask"),
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                str(dask_port),
                "--dashboard-address",
                ":0",
            ],
        )
        start("worker-cpu", [str(BIN / "pamflow"), "worker", scheduler, "--name", "cpu"])
        start(
            "worker-gpu",
            [str(BIN / "pamflow"), "worker", scheduler, "--gpus", "1", "--name", "gpu"],
        )
        client = Api(api)
        _wait("the Prefect server", lambda: _healthy(client), 120)
        run([str(BIN / "prefect"), "work-pool", "create", "pamflow", "--type", "process"])
        deployed_at = time.monotonic()
        run([str(BIN / "prefect"), "--no-prompt", "deploy", "--all"], cwd=ROOT)
        data, runs = base / "data", base / "runs"
        start(
            "prefect-worker",
            [str(BIN / "prefect"), "worker", "start", "--pool", "pamflow"],
            {
                "PAMFLOW_DATA_DIR": str(data),
                "PAMFLOW_RUNS_DIR": str(runs),
                "DASK_SCHEDULER_ADDRESS": scheduler,
                "PAMFLOW_SPEC_OVERRIDES": json.dumps(SPEC_OVERRIDES),
                "PAMFLOW_TRAIN_OVERRIDES": json.dumps(TRAIN_OVERRIDES),
            },
        )
        _wait("two Dask workers", lambda: len(_dask_workers(scheduler)) == 2, 120)
        yield SimpleNamespace(
            api=client,
            env=env,
            scheduler=scheduler,
            data=data,
            runs=runs,
            deployed_at=deployed_at,
            logs=logs,
            base=base,
        )
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in reversed(procs):
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def _healthy(api: Api) -> bool:
    try:
        return api.http.get("/health").status_code == 200
    except httpx.HTTPError:
        return False


def _dask_workers(scheduler: str) -> dict[str, dict[str, Any]]:
    from distributed import Client

    try:
        with Client(scheduler, timeout=5) as c:
            return dict(c.scheduler_info(n_workers=-1)["workers"])
    except OSError:
        return {}


def _finished(api: Api, run_id: str) -> dict[str, Any] | None:
    try:
        r = api.http.get(f"/flow_runs/{run_id}")
    except httpx.TimeoutException:  # a server busy under a build on 2 cores: ask again
        return None
    r.raise_for_status()
    run = r.json()
    return run if run["state_type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED") else None


def test_the_schedule_creates_runs(service):
    dep = service.api.deployment("scheduled-build", "nightly-jnd")
    runs = _wait(
        "scheduled runs of nightly-jnd",
        lambda: [r for r in service.api.flow_runs(dep["id"]) if r["state_type"] == "SCHEDULED"],
        60,
    )
    print(f"schedule -> run created {time.monotonic() - service.deployed_at:.1f} s after deploy")
    assert all(r["expected_start_time"][11:16] == "02:00" for r in runs)


#: a PyTorch DataLoader with two worker processes: run inside a Dask worker, it fails where
#: the worker process is daemonic (a nanny's) and cannot start children
DATALOADER = """
from torch.utils.data import DataLoader
total = sum(int(b.sum()) for b in DataLoader(list(range(8)), batch_size=4, num_workers=2))
assert total == 28, total
"""


def test_pamflow_workers_run_dataloader_workers(service):
    import gc

    from distributed import Client

    with Client(service.scheduler, timeout=30) as client:
        workers = sorted(client.scheduler_info(n_workers=-1)["workers"])
        assert len(workers) == 2
        for w in workers:  # exec: the workers cannot import this test module
            client.submit(exec, DATALOADER, {}, workers=[w], pure=False).result(timeout=120)
        # the preload froze what it loaded out of the garbage collector (a fast exit)
        frozen = client.run(gc.get_freeze_count)
        assert sorted(frozen) == workers and min(frozen.values()) > 10_000, frozen


@pytest.fixture(scope="module")
def cluster_build(service):
    """A run of the jnd-on-cluster deployment, done the way a user starts one."""
    done = subprocess.run(
        [str(BIN / "prefect"), "deployment", "run", "scheduled-build/jnd-on-cluster"],
        env=service.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    dep = service.api.deployment("scheduled-build", "jnd-on-cluster")
    (run,) = service.api.flow_runs(dep["id"])
    run = _wait("the cluster build", lambda: _finished(service.api, run["id"]), 240)
    assert run["state_type"] == "COMPLETED", (service.logs / "prefect-worker.log").read_text()[
        -3000:
    ]
    (folder,) = sorted((service.data / "jnd").iterdir())
    return SimpleNamespace(run=run, folder=folder)


def test_a_cluster_build_runs_its_shards_on_the_dask_workers(service, cluster_build):
    ds = Dataset.open(str(cluster_build.folder))
    assert ds.to_table(["example_id"]).num_rows == 16  # rows counted, not read from metadata
    assert len(set(ds.to_table(["example_id"]).column("example_id").to_pylist())) == 16
    (inner,) = service.api.subflow_runs(cluster_build.run["id"])
    tasks = service.api.task_runs(inner["id"])
    units = [t for t in tasks if t["name"].startswith("jnd-shard")]
    joins = [t for t in tasks if t["name"].startswith("jnd-join")]
    assert all(t["state_type"] == "COMPLETED" for t in units + joins)
    # 4 shards, each made whole or as pieces (whole sequences) joined by a join task
    covered = {t["name"][len("jnd-shard-") :][:5] for t in units}
    assert covered == {"00000", "00001", "00002", "00003"}
    pieced = {t["name"][len("jnd-shard-") :][:5] for t in units if "-piece-" in t["name"]}
    assert {t["name"][len("jnd-join-") :] for t in joins} == pieced
    placement = service.api.artifact("dataset-jnd")
    assert placement is not None
    rows = [
        line.split("|")[1:6]
        for line in placement.splitlines()
        if line.startswith("| ") and line.split("|")[1].strip().isdigit()
    ]
    print("placement:", [(r[0].strip(), r[1].strip()) for r in rows])
    assert len(rows) == len(units)  # one line per work unit
    assert all(r[1].strip().startswith(("cpu-", "gpu-")) for r in rows)  # Dask workers ran them


def test_the_build_event_retrains_on_the_gpu_worker_and_evaluates(service, cluster_build):
    dep = service.api.deployment("retrain", "train-dpam-on-new-jnd")
    (run,) = _wait("the triggered training", lambda: service.api.flow_runs(dep["id"]), 90)
    assert run["parameters"]["data"] == [str(cluster_build.folder)]
    run = _wait("the training run", lambda: _finished(service.api, run["id"]), 300)
    assert run["state_type"] == "COMPLETED", (service.logs / "prefect-worker.log").read_text()[
        -3000:
    ]
    latency = _ts(run["start_time"]) - _ts(cluster_build.run["end_time"])
    print(f"build end -> training start: {latency:.1f} s")
    (model,) = (service.runs / "dpam").glob("run-*/model.pt")
    assert model.stat().st_size > 0
    trained = service.api.artifact("train-dpam")
    assert trained is not None and "| worker | gpu-0-gpu |" in trained
    evaluation = service.api.artifact("evaluation-dpam")
    assert evaluation is not None
    print(evaluation)
    n = next(int(line.split("|")[2]) for line in evaluation.splitlines() if "| jnd.n |" in line)
    assert n > 0  # held-out rows were scored
    _wait(  # events reach the server shortly after the run's final state
        "the pamflow.model.trained event",
        lambda: [
            e
            for e in service.api.events("pamflow.model.trained")
            if e["payload"]["checkpoint"] == str(model)
        ],
        30,
    )


def _ts(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_a_build_without_the_retrain_label_starts_no_training(service, cluster_build, tmp_path):
    dep = service.api.deployment("retrain", "train-dpam-on-new-jnd")
    _wait("the triggered training to be recorded", lambda: service.api.flow_runs(dep["id"]), 90)
    before = len(service.api.flow_runs(dep["id"]))
    spec = tmp_path / "spec.yaml"
    spec.write_text(json.dumps({**SPEC_OVERRIDES, "num_examples": 4}))
    out = tmp_path / "adhoc"
    done = subprocess.run(
        [
            str(BIN / "pamflow"),
            "build",
            "jnd",
            "--config",
            str(spec),
            "--out",
            str(out),
            "--cluster",
            service.scheduler,
        ],
        env=service.env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    built = _wait(
        "the ad-hoc build's event",
        lambda: [
            e
            for e in service.api.events("pamflow.dataset.built")
            if e["payload"]["path"] == str(out)
        ],
        30,
    )
    assert built[0]["resource"]["pamflow.retrain"] == "false"
    time.sleep(10)  # the automation fired within seconds for the labelled build
    assert len(service.api.flow_runs(dep["id"])) == before
