"""Fixtures of the model tests (tests/models and tests/models/training)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One torch thread for the tiny models: on two shared cores, one thread is ~10x faster
    than two fighting other jobs."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
