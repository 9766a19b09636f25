"""Every shell, Python and SQL block of README.md, run in order as written.

The blocks run in one scratch folder, one after the other, the way a reader pastes them:
shell blocks through ``bash -eo pipefail`` (each command must succeed), Python blocks each
in a fresh interpreter, SQL through DuckDB. Sizes are shrunk only through the documented
settings ``PAMFLOW_SPEC_OVERRIDES`` and ``PAMFLOW_TRAIN_OVERRIDES`` (merged into every
build's spec and training config), never by changing a block's text. The README's one
stated precondition, "a Dask scheduler of yours" at ``tcp://127.0.0.1:8786``, is started
here. A block preceded by ``<!-- readme-test: skip: REASON -->`` is not run; the reasons
are checked to be few and given.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
FENCE = re.compile(r"^```(\w+)[^\n]*\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)
SKIP = re.compile(r"<!--\s*readme-test:\s*skip:\s*(.+?)\s*-->\s*$")
RUNNABLE = {"sh", "python", "sql"}
#: the smallest sizes that still exercise every block (every recipe has these fields)
SPEC_OVERRIDES = {"num_examples": 24, "shard_size": 12, "clip_seconds": 1.0}
TRAIN_OVERRIDES = {"tiny": True, "epochs": 1, "batch_size": 4, "num_workers": 0}

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Block:
    line: int
    lang: str
    code: str
    skip: str | None


def readme_blocks(text: str) -> list[Block]:
    """The fenced blocks of ``text`` in order, with the skip reason given just above each."""
    blocks = []
    for m in FENCE.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        skip = SKIP.search(before)
        blocks.append(Block(line, m.group(1), m.group(2), skip.group(1) if skip else None))
    return blocks


def test_readme_blocks_are_found_and_few_are_skipped():
    blocks = [b for b in readme_blocks(README.read_text()) if b.lang in RUNNABLE]
    skipped = [b for b in blocks if b.skip]
    assert len(blocks) >= 12, [b.line for b in blocks]
    assert len(skipped) <= 3 and all(len(b.skip or "") > 20 for b in skipped), skipped
    langs = {b.lang for b in blocks if not b.skip}
    assert langs == RUNNABLE, langs


@pytest.fixture(scope="module")
def scheduler_8786():
    """The README's "Dask scheduler of yours" at the address it names."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        scheduler_port=8786,
        dashboard_address=None,
    ) as cluster:
        yield cluster.scheduler_address


def _run(block: Block, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    if block.lang == "sh":
        cmd = ["bash", "-eo", "pipefail", "-c", block.code]
    elif block.lang == "python":
        cmd = [sys.executable, "-c", block.code]
    else:
        query = "import duckdb, sys; print(duckdb.sql(sys.stdin.read()).fetchall()[:3])"
        return subprocess.run(
            [sys.executable, "-c", query], input=block.code, cwd=cwd, env=env,
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def test_every_readme_block_runs_as_written(tmp_path, prefect_server, scheduler_8786, demo_corpus):
    assert scheduler_8786 == "tcp://127.0.0.1:8786"
    bindir = os.path.dirname(sys.executable)
    env = {
        **os.environ,
        "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PAMFLOW_SPEC_OVERRIDES": json.dumps(SPEC_OVERRIDES),
        "PAMFLOW_TRAIN_OVERRIDES": json.dumps(TRAIN_OVERRIDES),
        "PREFECT_API_URL": prefect_server,  # one server for every flow, as in a real setup
    }
    ran = []
    for block in readme_blocks(README.read_text()):
        if block.lang not in RUNNABLE or block.skip:
            continue
        proc = _run(block, tmp_path, env)
        assert proc.returncode == 0, (
            f"README.md line {block.line} ({block.lang}) failed with exit {proc.returncode}:\n"
            f"{block.code}\n--- stdout ---\n{proc.stdout[-3000:]}\n--- stderr ---\n"
            f"{proc.stderr[-3000:]}"
        )
        ran.append(block.line)
    # what the blocks made is there, with the rows the overrides asked for
    from pamflow.storage import Dataset

    for name in ("jnd", "jnd-local", "jnd-mine", "contrastive", "triplet", "nmr", "jnd-test"):
        ds = Dataset.open(str(tmp_path / "data" / name))
        assert ds.num_rows == SPEC_OVERRIDES["num_examples"], name
    from pamflow.testing import row_digests

    assert row_digests(str(tmp_path / "data" / "jnd")) == row_digests(
        str(tmp_path / "data" / "jnd-local")
    )  # "the same rows", as the README says
    human = Dataset.open(str(tmp_path / "data" / "jnd-human"))
    sources = human.to_table(["label_source"]).column("label_source").to_pylist()
    assert human.num_rows == 24 and sources.count("human") == 10  # the README's 10 votes
    for run in ("dpam", "noresqa"):
        assert (tmp_path / "runs" / run / "model.pt").exists(), run
    assert json.loads((tmp_path / "results.json").read_text())
    runnable = [b for b in readme_blocks(README.read_text()) if b.lang in RUNNABLE]
    assert ran == [b.line for b in runnable if not b.skip] and len(ran) >= 10
