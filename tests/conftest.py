"""Shared fixtures: one demo corpus per test session, in a private cache folder.

``PAMFLOW_CACHE`` points at a session temporary folder before anything imports pamflow's
default sources, so every test session builds the demo corpus from the code under test
(never a stale copy from ``~/.cache``) exactly once; Dask workers started by the tests
inherit the variable.
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


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def speech_clip() -> np.ndarray:
    """2 s of speech-like audio at 16 kHz, made in code."""
    from pamflow.testing import speech_like

    return speech_like(seconds=2.0, sample_rate=16000, seed=7)


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

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None, host="127.0.0.1") as cluster:
        yield cluster
