"""The real ``pamflow`` executable running a real flow build (a temporary Prefect server,
a LocalCluster): quiet by default, the progress bar and the summary table only; with
--verbose, Prefect's and Dask's logs and, on an error, the traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from pamflow.corpus import index_corpus, write_index
from pamflow.testing import speech_like

pytestmark = pytest.mark.integration
PAMFLOW = os.path.join(os.path.dirname(sys.executable), "pamflow")
#: what Prefect and Dask print at INFO, or at their shutdown, on the console
CHATTER = (
    "INFO",
    "Starting temporary server",
    "Beginning flow run",
    "Finished in state",
    "distributed.",
    "Worker process still alive",
    "Nanny",
    "Still processing items",
    "Traceback",
)


def _pamflow(*argv: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    # as a user runs it: pamflow starts its own Prefect server, logging as it chooses
    for key in (
        "PREFECT_API_URL",
        "PREFECT_LOGGING_LEVEL",
        "PREFECT_LOGGING_HANDLERS_CONSOLE_CLASS",
        "DASK_LOGGING__DISTRIBUTED",
    ):
        env.pop(key, None)
    env["COLUMNS"] = "200"  # the progress bar whole
    return subprocess.run([PAMFLOW, *argv], env=env, capture_output=True, text=True, timeout=300)


def test_a_flow_build_shows_the_progress_bar_and_the_summary_only(tmp_path, demo_corpus):
    out = tmp_path / "ds"
    run = _pamflow(
        "build", "jnd", "--out", str(out), "--num-examples", "8", "--shard-size", "4",
        "--workers", "1",
    )  # fmt: skip
    text = run.stdout + run.stderr
    assert run.returncode == 0, text
    assert (out / "dataset.json").exists()
    found = [c for c in CHATTER if c in text]
    assert not found, text
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "8/8 rows" in lines[0] and "2/2 shards" in lines[0], run.stderr
    assert "ex/s" in lines[0]
    assert "jnd dataset" in run.stdout and "share_different" in run.stdout


def _silent_corpus(tmp_path):
    """A spec whose every recording turns silent after indexing (same sizes): the build
    starts, and its first task fails inside the flow."""
    folder = tmp_path / "speech"
    folder.mkdir()
    for k in range(3):
        x = speech_like(seconds=3.0, sample_rate=16000, seed=k)
        sf.write(folder / f"s{k}.wav", x, 16000, subtype="FLOAT")
    manifest = tmp_path / "corpus.parquet"
    write_index(index_corpus(str(folder), kind="speech"), str(manifest))
    for f in folder.iterdir():
        x, _ = sf.read(f, dtype="float32")
        sf.write(f, np.zeros_like(x), 16000, subtype="FLOAT")
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"manifests: [{manifest}]\nfamilies: [white_noise, eq]\nnum_examples: 8\n"
        "shard_size: 4\nclip_seconds: 1.0\nqueries_per_sequence: 2\n"
    )
    return spec


def test_verbose_shows_the_logs_and_the_traceback_of_an_error_inside_the_flow(tmp_path):
    spec = _silent_corpus(tmp_path)
    out = tmp_path / "ds"
    run = _pamflow(
        "--verbose", "build", "jnd", "--config", str(spec), "--out", str(out), "--workers", "1"
    )
    text = run.stdout + run.stderr
    assert run.returncode == 2, text
    for shown in ("INFO", "Starting temporary server", "Beginning flow run", "distributed."):
        assert shown in text, (shown, text)
    assert "Traceback" in run.stderr
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("error: manifests: no speech recordings"), last
    assert not (out / "dataset.json").exists()
