"""Shared fixtures: one demo corpus per test session, in a private cache folder.

``PAMFLOW_CACHE`` points at a session temporary folder before anything imports pamflow's
default sources, so every test session builds the demo corpus from the code under test
(never a stale copy from ``~/.cache``) exactly once; Dask workers started by the tests
inherit the variable.

Fixtures used in more than one folder live here (the demo corpus and its sources, a small
JND dataset built in one process, the Prefect server and Dask cluster); those of one folder
live in that folder's conftest.py, plain helper functions in :mod:`pamflow.testing`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

_SESSION_CACHE = Path(tempfile.mkdtemp(prefix="pamflow-test-cache-"))
os.environ["PAMFLOW_CACHE"] = str(_SESSION_CACHE)
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


@pytest.fixture(scope="session")
def demo_corpus() -> Path:
    """The demo corpus folder (built once per session)."""
    from pamflow.corpus import ensure_demo_corpus

    return ensure_demo_corpus()


@pytest.fixture(scope="session")
def demo_sources(demo_corpus):
    from pamflow.corpus.sources import default_sources

    return default_sources()


#: the spec of ``jnd_local``: 30 rows in 3 shards over 8 families, 5 questions a sequence
JND_SPEC = {
    "num_examples": 30,
    "shard_size": 10,
    "clip_seconds": 1.0,
    "queries_per_sequence": 5,
    "families": [
        "white_noise",
        "pink_noise",
        "reverb_drr",
        "mp3",
        "mulaw",
        "eq",
        "pops",
        "dropouts",
    ],
    "seed": 3,
}


@pytest.fixture
def jnd_spec() -> dict:
    """The spec ``jnd_local`` was built from (a copy: change it freely)."""
    return dict(JND_SPEC)


@pytest.fixture(scope="session")
def jnd_local(tmp_path_factory, demo_corpus) -> tuple[str, dict]:
    """``(path, summary)`` of a JND dataset built by ``build_local`` from ``jnd_spec``, once
    per session; tests read it and may rebuild it only with the same spec."""
    from pamflow.pipeline import build

    out = str(tmp_path_factory.mktemp("jnd") / "local")
    summary = build.build_local("jnd", JND_SPEC, out)
    return out, summary


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def prefect_server():
    """One temporary Prefect server (SQLite) for the session; yields its API URL."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield PREFECT_API_URL.value()


@pytest.fixture(scope="session")
def dask_cluster(demo_corpus):
    """One LocalCluster of two single-threaded worker processes on loopback."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, host="127.0.0.1"
    ) as cluster:
        yield cluster
