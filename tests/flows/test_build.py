"""The Prefect build flow on a real Dask cluster (one per test session)."""

from __future__ import annotations

import pytest

from pamflow import storage
from pamflow.datasets import recipe_names
from pamflow.datasets.base import get_recipe
from pamflow.flows import build_dataset
from pamflow.pipeline import build
from pamflow.testing import row_digests

FAMILIES = ["white_noise", "reverb_drr", "mp3", "eq", "pops"]
SPEC = {
    "num_examples": 24,
    "shard_size": 8,
    "clip_seconds": 1.0,
    "queries_per_sequence": 4,
    "families": FAMILIES,
    "seed": 5,
}

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def local_rows(tmp_path_factory, demo_corpus):
    out = str(tmp_path_factory.mktemp("flow") / "local")
    build.build_local("jnd", SPEC, out)
    return row_digests(out)


def test_flow_on_two_workers_matches_one_process(
    prefect_server, dask_cluster, local_rows, tmp_path
):
    out = str(tmp_path / "flow")
    seen = []
    summary = build_dataset(
        "jnd", SPEC, out, cluster=dask_cluster.scheduler_address, on_shard=seen.append
    )
    assert summary["rows"] == 24 and summary["shards"] == 3
    assert sorted(s["index"] for s in seen if s["shard_done"]) == [0, 1, 2]
    assert sum(s["rows"] for s in seen) == 24
    # the cluster's 2 workers get 16 work units: each shard of 8 rows (2 sequences) was
    # made as 2 pieces by any worker, then joined
    pieces = [s for s in seen if s.get("parts", 1) > 1]
    assert len(pieces) == 6 and {s["rows"] for s in pieces} == {4}
    assert storage.Dataset.open(out).verify().ok
    assert row_digests(out) == local_rows
    assert not (tmp_path / "flow" / "pieces").exists()


def test_flow_with_its_own_one_worker_cluster(prefect_server, local_rows, tmp_path):
    out = str(tmp_path / "one")
    build_dataset("jnd", {**SPEC, "shard_size": 12}, out, workers=1)
    assert row_digests(out) == local_rows


def test_flow_publishes_a_summary_artifact(prefect_server, dask_cluster, tmp_path):
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    out = str(tmp_path / "art")
    build_dataset("jnd", {**SPEC, "num_examples": 8}, out, cluster=dask_cluster.scheduler_address)

    async def artifacts():
        async with get_client() as client:
            return await client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["dataset-jnd"]))
            )

    found = asyncio.run(artifacts())
    mine = [a.data for a in found if out in a.data]
    assert mine, f"no dataset-jnd artifact for {out}"
    text = mine[-1]
    assert "share_different" in text and "strength histogram" in text and "| rows | 8 |" in text


def test_an_output_the_workers_cannot_see_fails_before_any_shard(prefect_server, dask_cluster):
    # memory:// lives in one process: this one writes the build marker, the workers (other
    # processes, as on other machines) cannot see it
    import fsspec

    out = "memory://pamflow-invisible/jnd"
    with pytest.raises(ValueError, match="the cluster's workers cannot see the output folder"):
        build_dataset(
            "jnd",
            {**SPEC, "num_examples": 4, "shard_size": 4},
            out,
            cluster=dask_cluster.scheduler_address,
        )
    fs = fsspec.filesystem("memory")
    assert fs.exists("/pamflow-invisible/jnd/build.json")  # prepared here
    assert not fs.exists("/pamflow-invisible/jnd/shards")  # no shard was mapped


@pytest.mark.parametrize("recipe", recipe_names())
def test_every_recipe_gives_the_same_rows_on_two_workers_as_in_one_process(
    recipe, prefect_server, dask_cluster, tmp_path
):
    # issue 11: NMR's SI-SDR labels differed by 2e-13 (threaded BLAS in the plain process)
    spec = {"num_examples": 6, "shard_size": 2, "clip_seconds": 1.0, "seed": 2,
            **get_recipe(recipe).tiny_spec}  # fmt: skip
    local = str(tmp_path / "local")
    build.build_local(recipe, spec, local)
    flow = str(tmp_path / "flow")
    build_dataset(recipe, spec, flow, cluster=dask_cluster.scheduler_address)
    assert row_digests(flow) == row_digests(local)
    assert len(row_digests(local)) == 6


HEARTBEATS = """
from prefect import flow
from prefect.settings import get_current_settings
from pamflow.flows.build import prefect_api

@flow
def frequency():
    return get_current_settings().flows.heartbeat_frequency

if __name__ == "__main__":
    with prefect_api():  # a temporary server unless PREFECT_API_URL names one
        print(frequency())
"""


def test_flow_runs_on_a_temporary_server_send_no_heartbeats(prefect_server, tmp_path):
    """Heartbeats let a lasting server mark a dead run crashed; the temporary server dies
    with the command, and the flow engine waited up to a second at each run's end for its
    heartbeat thread. Runs against a lasting server keep them."""
    import os
    import subprocess
    import sys

    script = tmp_path / "heartbeats.py"  # a file: the temporary server's process spawns
    script.write_text(HEARTBEATS)
    without = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    seen = []
    for env in ({**without, "PREFECT_API_URL": prefect_server}, without):
        done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                              env=env, timeout=300)  # fmt: skip
        assert done.returncode == 0, done.stderr
        seen.append(done.stdout.split()[-1])
    assert seen == ["180", "None"]  # Prefect's default kept for the lasting server
