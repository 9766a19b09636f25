"""Fixtures of the training tests: one small dataset of each kind a model trains on, and
``loss_on`` to measure a model on one.

``jnd`` is built by the JND recipe from the demo corpus; ``triplets``, ``contrastive`` and
``nmr`` are written directly: tones with noise at known SNRs, so that what a model should
learn is known. Each is built once per session (tests only read them).
"""

from __future__ import annotations

import numpy as np
import pytest

from pamflow.models.training.data import open_rows
from pamflow.models.training.loop import Task, evaluate_rows
from pamflow.pipeline.build import build_local
from pamflow.storage import Column
from pamflow.testing import write_dataset

SR = 16000


def tone(freq: float, n: int = SR // 2) -> np.ndarray:
    return (0.3 * np.sin(2 * np.pi * freq * np.arange(n) / SR)).astype(np.float32)


def noisy(x: np.ndarray, snr_db: float, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).standard_normal(len(x)).astype(np.float32)
    noise *= np.sqrt(np.mean(x**2) / np.mean(noise**2) / 10 ** (snr_db / 10))
    return (x + noise).astype(np.float32)


@pytest.fixture(scope="session")
def jnd(demo_corpus, tmp_path_factory) -> str:
    out = str(tmp_path_factory.mktemp("jnd"))
    spec = {
        "num_examples": 32,
        "shard_size": 16,
        "clip_seconds": 0.5,
        "queries_per_sequence": 4,
        "seed": 3,
    }
    build_local("jnd", spec, out)
    return out


@pytest.fixture(scope="session")
def triplets(tmp_path_factory) -> str:
    rows = []
    for i in range(24):
        ref = tone(200 + 40 * i)
        la, lb = (14.0, 18.0) if i % 2 else (18.0, 14.0)  # SNRs: the noisier one is farther
        rows.append(
            {
                "reference": ref,
                "a": noisy(ref, la, i),
                "b": noisy(ref, lb, 100 + i),
                "label": 1 if la < lb else 0,
                "agreement": 0.5 + 0.02 * i,
                "strength_a": 100 - la,
                "strength_b": 100 - lb,
                "source_id": f"src-{i}",
            }
        )
    cols = [
        Column("reference", "audio"),
        Column("a", "audio"),
        Column("b", "audio"),
        Column("label", "int64", True),
        Column("agreement", "float64", True),
        Column("strength_a", "float64"),
        Column("strength_b", "float64"),
        Column("source_id", "string"),
    ]
    return write_dataset(
        tmp_path_factory.mktemp("triplet"),
        cols,
        rows,
        recipe="triplet",
        sample_rate=SR,
        row_group_size=8,
    )


@pytest.fixture(scope="session")
def contrastive(tmp_path_factory) -> str:
    rows = []
    for i in range(24):
        s1, s2 = i % 12, (i + 5) % 12  # 12 sources ("recordings"): tones
        if i % 2:  # acoustic: the same noise level, different content
            snr = 3.0 + 4 * (i % 5)
            pair = (noisy(tone(150 + 60 * s1), snr, i), noisy(tone(150 + 60 * s2), snr, 50 + i))
            kind, src = "acoustic", (s1, s2)
        else:  # content: the same tone, different noise levels
            pair = (noisy(tone(150 + 60 * s1), 5.0, i), noisy(tone(150 + 60 * s1), 30.0, 50 + i))
            kind, src = "content", (s1, s1)
        rows.append(
            {
                "anchor": pair[0],
                "positive": pair[1],
                "pair_kind": kind,
                "anchor_source_id": f"s{src[0]}",
                "positive_source_id": f"s{src[1]}",
            }
        )
    cols = [
        Column("anchor", "audio"),
        Column("positive", "audio"),
        Column("pair_kind", "string"),
        Column("anchor_source_id", "string"),
        Column("positive_source_id", "string"),
    ]
    return write_dataset(
        tmp_path_factory.mktemp("contrastive"),
        cols,
        rows,
        recipe="contrastive",
        sample_rate=SR,
        row_group_size=8,
    )


@pytest.fixture(scope="session")
def nmr(tmp_path_factory) -> str:
    rows = []
    for i in range(24):
        ca, cb = tone(180 + 30 * i), tone(900 - 25 * i)  # non-matching contents
        sa, sb = 2.0 + 3 * (i % 7), 20.0 - 2 * (i % 5)
        rows.append(
            {
                "a": noisy(ca, sa, i),
                "b": noisy(cb, sb, 60 + i),
                "a_clean": ca,
                "b_clean": cb,
                "a_snr": sa if i % 3 else None,
                "b_snr": sb,
                "a_sisdr": sa,
                "b_sisdr": sb,
                "preference": 0 if sa > sb else 1,
                "source_id": f"n{i}",
            }
        )
    cols = [Column(c, "audio") for c in ("a", "b", "a_clean", "b_clean")] + [
        Column("a_snr", "float64", True),
        Column("b_snr", "float64", True),
        Column("a_sisdr", "float64"),
        Column("b_sisdr", "float64"),
        Column("preference", "int64"),
        Column("source_id", "string"),
    ]
    return write_dataset(
        tmp_path_factory.mktemp("nmr"), cols, rows, recipe="nmr", sample_rate=SR, row_group_size=8
    )


def _loss_on(task: Task, model, data: str, cfg) -> float:
    """Mean loss of ``task`` over all of ``data`` (eval mode, centred crops)."""
    rows = open_rows(
        [data],
        audio=task.audio,
        columns=task.columns,
        sample_rate=SR,
        keep=task.keep,
        group_columns=task.group_columns,
    )
    return evaluate_rows(task, model, rows, cfg)["loss"]


@pytest.fixture(scope="session")
def loss_on():
    """``loss_on(task, model, data, cfg)``: mean loss of ``task`` over all of ``data``."""
    return _loss_on
