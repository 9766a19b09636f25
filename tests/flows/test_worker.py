"""`pamflow worker`: the worker processes it plans, and where training tasks may run."""

from __future__ import annotations

import pytest

from pamflow.flows.train import _resources, gpu_workers
from pamflow.flows.worker import plan_workers


def test_workers_have_no_nanny_one_thread_and_fast_malloc():
    plans = plan_workers("tcp://127.0.0.1:8786", nworkers=3, gpus=1, name="w")
    assert [p.name for p in plans] == ["w-0-gpu", "w-1", "w-2"]
    for p in plans:
        assert "--no-nanny" in p.command and p.command[p.command.index("--nthreads") + 1] == "1"
        assert p.env["OMP_NUM_THREADS"] == "1"
        assert int(p.env["MALLOC_TRIM_THRESHOLD_"]) > 65536
        assert p.command[p.command.index("--preload") + 1] == "pamflow.flows.worker"
        assert p.env["DASK_DISTRIBUTED__ADMIN__TICK__INTERVAL"] == "1s"
        assert p.env["DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED"] == "False"
    gpu, cpu = plans[0], plans[1]
    assert gpu.gpu and gpu.command[gpu.command.index("--resources") + 1] == "GPU=1"
    assert gpu.env["CUDA_VISIBLE_DEVICES"] == "0"
    assert not cpu.gpu and "--resources" not in cpu.command
    assert "CUDA_VISIBLE_DEVICES" not in cpu.env
    assert len(plan_workers("tcp://x:1", nworkers=1, gpus=2)) == 2  # one process per GPU
    with pytest.raises(ValueError, match="--nworkers must be >= 1"):
        plan_workers("tcp://x:1", nworkers=0)


def test_dask_reads_the_workers_settings_from_their_environment():
    """The DASK_* variables a planned worker gets are read back by Dask as pamflow's
    LocalCluster settings (a fresh interpreter, as the worker is)."""
    import json
    import os
    import subprocess
    import sys

    from pamflow.flows.cluster import WORKER_CONFIG

    env = {**os.environ, **plan_workers("tcp://x:1")[0].env}
    code = (
        "import json, sys, dask, distributed; "
        "print(json.dumps({k: dask.config.get(k) for k in json.loads(sys.argv[1])}))"
    )
    got = subprocess.run(
        [sys.executable, "-c", code, json.dumps(list(WORKER_CONFIG))],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert json.loads(got.stdout) == WORKER_CONFIG


def test_cuda_on_a_cluster_without_gpu_workers_fails_in_one_line(dask_cluster, monkeypatch):
    address = dask_cluster.scheduler_address
    assert gpu_workers(address) == []
    monkeypatch.setenv("PAMFLOW_GPU_WAIT_S", "0.5")
    with pytest.raises(ValueError, match="no worker of the Dask cluster .* offers a GPU"):
        _resources("cuda", address)
    # auto and cpu run anywhere when no worker has a GPU; no cluster, no annotation
    for device in ("auto", "cpu"):
        with _resources(device, address):
            pass
    with _resources("cuda", None):
        pass
