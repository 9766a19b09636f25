"""Rows do not depend on how many BLAS threads the building process has."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

SCRIPT = """
import json, sys
from pamflow.pipeline.build import build_local
from pamflow.testing import row_digests
build_local("nmr", {"num_examples": 8, "shard_size": 4, "clip_seconds": 1.0, "seed": 1}, sys.argv[1])
print(json.dumps(row_digests(sys.argv[1]), sort_keys=True))
"""


@pytest.mark.slow
def test_nmr_rows_are_the_same_with_one_blas_thread_or_several(tmp_path, demo_corpus):
    # issue 11: SI-SDR labels differed by 2e-13 between --local (threaded BLAS) and workers
    def build(name: str, threads: str | None) -> dict:
        env = {k: v for k, v in os.environ.items()
               if k not in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}  # fmt: skip
        if threads:
            env.update(OMP_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads)
        proc = subprocess.run(
            [sys.executable, "-c", SCRIPT, str(tmp_path / name)],
            env=env, capture_output=True, text=True, timeout=600, check=True,
        )  # fmt: skip
        return json.loads(proc.stdout.strip().splitlines()[-1])

    one = build("one", "1")
    many = build("many", "4")
    assert len(one) == 8 and one == many
