"""Fixtures of the storage tests: a small finished dataset to read, verify and derive from.

``make_dataset(out, sizes=(3, 2, 3))`` writes it at ``out`` (a path or an fsspec URL):
rows ``ex-0 .. ex-7`` with a ``reference`` tone (``audio_for(i)``), ``strength`` = i / 2
and a null ``label``, in shards of ``sizes`` rows and row groups of two, seed 3.
``ds_path`` is a fresh copy for each test (tests may damage it).
"""

from __future__ import annotations

import numpy as np
import pytest

from pamflow.storage import Column, Schema
from pamflow.testing import write_dataset

SR = 16000
SCHEMA = Schema(
    [
        Column("reference", "audio"),
        Column("strength", "float64"),
        Column("label", "int64", nullable=True),
    ]
)


def _audio_for(i: int) -> np.ndarray:
    t = np.arange(2000) / SR
    return (0.4 * np.sin(2 * np.pi * (150 + 41 * i) * t)).astype(np.float32)


def _make_dataset(out: str, sizes=(3, 2, 3)) -> None:
    rows = [
        {
            "index": i,
            "example_id": f"ex-{i}",
            "seed": i,
            "params": {"i": i},
            "reference": _audio_for(i),
            "strength": i / 2,
            "label": None,
        }
        for i in range(sum(sizes))
    ]
    write_dataset(
        out,
        SCHEMA,
        rows,
        shard_sizes=sizes,
        spec={"sizes": list(sizes)},
        seed=3,
        sample_rate=SR,
        row_group_size=2,
    )


@pytest.fixture(scope="session")
def audio_for():
    """``audio_for(i)``: the ``reference`` audio of row ``i`` of ``make_dataset``'s datasets."""
    return _audio_for


@pytest.fixture(scope="session")
def make_dataset():
    """``make_dataset(out, sizes=(3, 2, 3))``: write the small dataset at ``out``."""
    return _make_dataset


@pytest.fixture
def ds_path(tmp_path, make_dataset):
    out = str(tmp_path / "ds")
    make_dataset(out)
    return out
