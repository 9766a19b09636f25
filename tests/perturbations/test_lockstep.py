"""Batched Griffin-Lim (issue 13, item 1): the torch engines, lockstep generation, replay.

A shard's Griffin-Lim rows are computed together when its tasks (rows, JND sequences) run
in lockstep (:mod:`pamflow.perturbations.lockstep`). What is tested on the CPU (the torch
engine forced to ``torch-cpu``): a clip computed in a batch is the clip computed alone, bit
for bit; a shard made in lockstep is the shard made one task after another, row for row and
array for array; a batched row replays alone; torch-cpu agrees with numpy within 0.25 dB of
log-spectral distance. What needs CUDA is skipped without it: torch-cuda against torch-cpu
within the same bound, and a torch-cuda row replaying bit for bit.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from pamflow.audio.griffin_lim import magnitude
from pamflow.datasets import get_recipe
from pamflow.measures import log_spectral_distance
from pamflow.perturbations import PerturbationError, get
from pamflow.perturbations import lockstep as ls
from pamflow.perturbations.griffin_lim import (
    GriffinLimParams,
    fft_size,
    resolve_engine,
    sample_engine,
)
from pamflow.testing import speech_like

FAM = get("griffin_lim")
#: log-spectral distance (dB) within which the engines agree (see the family's docstring)
ENGINE_LSD_DB = 0.25
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

#: a small JND spec whose every axis may draw griffin_lim, at strengths that keep it cheap
JND = {
    "families": ["griffin_lim", "white_noise", "eq"],
    "queries_per_sequence": 3,
    "num_examples": 12,
    "clip_seconds": 1.0,
    "strength": {"low": 40, "high": 100},
    "seed": 5,
}


def _same_rows(a: list[dict], b: list[dict], audio: tuple[str, ...]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert json.dumps(x["params"], sort_keys=True) == json.dumps(y["params"], sort_keys=True)
        for col in audio:
            assert x[col].dtype == y[col].dtype and np.array_equal(x[col], y[col]), col
        rest = set(x) - set(audio) - {"params"}
        assert {k: x[k] for k in rest} == {k: y[k] for k in rest}


def _rows(recipe: str, fields: dict, engine: str, *, batched: bool) -> list[dict]:
    """A shard's rows, Griffin-Lim params recording ``engine``: made in lockstep (the
    spec's ``griffin_lim_engine``) or one task after another (the engine set around a
    build that does not batch)."""
    r = get_recipe(recipe)
    if batched:
        spec = r.parse({**fields, "griffin_lim_engine": engine})
        return list(r.generate(spec, spec.sources(), 0, spec.num_examples))
    spec = r.parse({**fields, "griffin_lim_engine": "numpy"})
    with sample_engine(engine):
        return list(r.generate(spec, spec.sources(), 0, spec.num_examples))


def _engines(rows: list[dict]) -> set[str]:
    steps = [
        s
        for row in rows
        for key in ("chain", "reference_chain", "chains")
        for s in row["params"].get(key, [])
        if isinstance(s, dict)
    ]
    return {s["params"]["engine"] for s in steps if s["family"] == "griffin_lim"}


def test_a_clip_in_a_batch_is_the_clip_alone():
    # two lengths and two STFT sizes in one call: each goes to its own batch
    reqs = []
    for k, (sr, seconds, it) in enumerate(
        [(16000, 1.0, 30), (16000, 1.0, 1), (22050, 0.7, 12), (16000, 1.0, 7), (22050, 0.7, 3)]
    ):
        x = speech_like(seconds=seconds, sample_rate=sr, seed=k)
        n_fft = fft_size(sr)
        mag = magnitude(x, n_fft, n_fft // 4)
        reqs.append(ls.Request(mag, it, np.random.default_rng(k), x.size, n_fft // 4, "cpu"))
    batched = ls.compute(reqs)
    for k, (r, y) in enumerate(zip(reqs, batched, strict=True)):
        again = ls.Request(
            r.magnitude, r.iterations, np.random.default_rng(k), r.length, r.hop, "cpu"
        )
        assert y.shape == (r.length,)
        assert np.array_equal(y, ls.compute([again])[0])
    assert not np.array_equal(batched[0][:1000], batched[3][:1000])


def test_lockstep_runs_tasks_together_and_returns_their_results_in_order():
    x = speech_like(seconds=0.5, sample_rate=16000, seed=1)
    params = [GriffinLimParams(it, seed=s, engine="torch-cpu") for s, it in enumerate([9, 2, 5])]

    def task(p):
        # two Griffin-Lim steps a task, with NumPy work in between
        y = FAM.apply(x, 16000, p)
        return FAM.apply(0.5 * y, 16000, p)

    batches: list[int] = []
    together = ls.lockstep([lambda p=p: task(p) for p in params], on_batch=batches.append)
    assert batches == [3, 3]  # each step of the three tasks in one batch
    for p, y in zip(params, together, strict=True):
        assert np.array_equal(y, task(p))  # alone, outside lockstep


def test_a_failing_task_stops_the_others_and_its_error_is_raised():
    x = speech_like(seconds=0.5, sample_rate=16000, seed=1)
    ended = []

    def fine():
        try:
            return FAM.apply(x, 16000, GriffinLimParams(3, seed=1, engine="torch-cpu"))
        finally:
            ended.append("fine")

    def bad():
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        ls.lockstep([fine, bad, fine])
    assert ended == ["fine"]  # the first one unwound from its wait; the last never ran


@pytest.mark.slow  # two builds of a 12-row JND shard: ~10 s
def test_jnd_shard_in_lockstep_is_the_shard_made_sequence_by_sequence():
    one_by_one = _rows("jnd", JND, "torch-cpu", batched=False)
    together = _rows("jnd", JND, "torch-cpu", batched=True)
    assert _engines(together) == {"torch-cpu"}  # the new engine is recorded
    _same_rows(one_by_one, together, ("reference", "perturbed"))
    # and a batched row replays alone, bit for bit
    r = get_recipe("jnd")
    spec = r.parse({**JND, "griffin_lim_engine": "torch-cpu"})
    for row in together[::5]:
        again = r.replay(row, spec)
        assert np.array_equal(again["reference"], row["reference"])
        assert np.array_equal(again["perturbed"], row["perturbed"])


def test_per_row_recipe_in_lockstep_is_the_recipe_row_by_row():
    fields = {"families": ["griffin_lim", "white_noise"], "num_examples": 6, "clip_seconds": 0.6,
              "strength": {"low": 60, "high": 100}, "seed": 2}  # fmt: skip
    one_by_one = _rows("contrastive", fields, "torch-cpu", batched=False)
    together = _rows("contrastive", fields, "torch-cpu", batched=True)
    audio = get_recipe("contrastive").audio_columns
    _same_rows(one_by_one, together, audio)
    made = json.dumps([row["params"] for row in together])
    assert '"engine": "torch-cpu"' in made and '"engine": "numpy"' not in made


def test_the_engine_is_picked_from_the_spec_and_the_worker():
    r = get_recipe("jnd")
    spec = r.parse(JND)
    # "auto" (the default) stays out of the dump: specs from before the field keep their digest
    assert "griffin_lim_engine" not in spec.model_dump(mode="json")
    expected = "torch-cuda" if torch.cuda.is_available() else None
    assert spec.batched_griffin_lim == expected
    assert r.parse({**JND, "griffin_lim_engine": "numpy"}).batched_griffin_lim is None
    forced = r.parse({**JND, "griffin_lim_engine": "torch-cpu"})
    assert forced.model_dump(mode="json")["griffin_lim_engine"] == "torch-cpu"
    assert forced.batched_griffin_lim == "torch-cpu"
    # no griffin_lim on any axis: nothing to batch
    plain = r.parse({**JND, "families": ["white_noise"], "griffin_lim_engine": "torch-cpu"})
    assert plain.batched_griffin_lim is None
    if not torch.cuda.is_available():
        assert resolve_engine("auto") == "numpy"
        with pytest.raises(PerturbationError, match="no CUDA"):
            resolve_engine("torch-cuda")
        with pytest.raises(PerturbationError, match="CUDA"):
            FAM.apply(speech_like(seconds=0.2, sample_rate=16000, seed=0), 16000,
                      GriffinLimParams(2, seed=0, engine="torch-cuda"))  # fmt: skip


def test_new_params_record_the_engine_asked_for():
    rng = np.random.default_rng(0)
    assert FAM.sample(rng, 50).engine == "numpy"
    with sample_engine("torch-cpu"):
        assert FAM.sample(rng, 50).engine == "torch-cpu"
    assert FAM.sample(rng, 50).engine == "numpy"
    with pytest.raises(PerturbationError, match="engine"), sample_engine("librosa"):
        pass


def _engines_agree(sr: int, one: str, other: str) -> None:
    """At 1, 22 and 500 iterations the two engines' outputs are within the stated LSD."""
    x = speech_like(seconds=1.0, sample_rate=sr, seed=3)
    for it in (1, 22, 500):
        a = FAM.apply(x, sr, GriffinLimParams(it, seed=7, engine=one))
        b = FAM.apply(x, sr, GriffinLimParams(it, seed=7, engine=other))
        assert log_spectral_distance(a, b, sr) < ENGINE_LSD_DB, (one, other, it)


@pytest.mark.parametrize("sr", [16000, 22050])
def test_torch_cpu_agrees_with_numpy_within_the_stated_distance(sr):
    _engines_agree(sr, "numpy", "torch-cpu")
    x = speech_like(seconds=1.0, sample_rate=sr, seed=3)
    # the bound tells engines apart from another start: another seed is far further
    c = FAM.apply(x, sr, GriffinLimParams(22, seed=8, engine="torch-cpu"))
    a = FAM.apply(x, sr, GriffinLimParams(22, seed=7, engine="numpy"))
    assert log_spectral_distance(a, c, sr) > ENGINE_LSD_DB


@CUDA
@pytest.mark.parametrize("sr", [16000, 22050])
def test_torch_cuda_agrees_with_torch_cpu_within_the_stated_distance(sr):
    _engines_agree(sr, "torch-cpu", "torch-cuda")


@CUDA
def test_torch_cuda_rows_replay_bit_for_bit_and_match_the_row_by_row_shard():
    together = _rows("jnd", JND, "torch-cuda", batched=True)
    assert _engines(together) == {"torch-cuda"}
    _same_rows(_rows("jnd", JND, "torch-cuda", batched=False), together, ("reference", "perturbed"))
    r = get_recipe("jnd")
    spec = r.parse({**JND, "griffin_lim_engine": "torch-cuda"})
    for row in together:
        again = r.replay(row, spec)
        assert np.array_equal(again["perturbed"], row["perturbed"])
