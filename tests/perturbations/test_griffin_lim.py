"""Griffin-Lim: iteration mapping, the count reaching librosa, spectral closeness, replay."""

from __future__ import annotations

import json

import librosa
import numpy as np
import pytest

from pamflow.measures import log_spectral_distance
from pamflow.perturbations import PerturbationError, get
from pamflow.perturbations.griffin_lim import GriffinLimParams, fft_size
from pamflow.testing import speech_like

SR = 16000
FAM = get("griffin_lim")


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    return speech_like(seconds=1.0, sample_rate=SR, seed=3)


def test_mapping_ends():
    assert FAM.category == "misc" and FAM.mapping == "exponential" and not FAM.clips
    assert FAM.value(0) == pytest.approx(500.0)
    assert FAM.value(100) == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    assert FAM.sample(rng, 0).iterations == 500
    assert FAM.sample(rng, 100).iterations == 1
    assert FAM.sample(rng, 50).iterations == round(np.sqrt(500))  # 22
    counts = [FAM.sample(np.random.default_rng(0), r).iterations for r in range(0, 101, 5)]
    assert all(isinstance(c, int) and c >= 1 for c in counts)
    assert all(a >= b for a, b in zip(counts, counts[1:], strict=False))
    # the seed is drawn the same way whatever the strength: only the count moves
    assert len({FAM.sample(np.random.default_rng(4), r).seed for r in (0, 50, 100)}) == 1


@pytest.mark.parametrize("iterations", [1, 3, 12])
def test_runs_the_recorded_number_of_iterations(clip, iterations):
    params = GriffinLimParams(iterations=iterations, seed=99)
    y = FAM.apply(clip, SR, params)
    n_fft = fft_size(SR)
    hop = n_fft // 4
    mag = np.abs(librosa.stft(clip.astype(np.float64), n_fft=n_fft, hop_length=hop))
    ref = librosa.griffinlim(
        mag, n_iter=iterations, hop_length=hop, n_fft=n_fft, length=clip.size,
        init="random", random_state=np.random.default_rng(99),
    )  # fmt: skip
    assert np.array_equal(y, ref.astype(np.float32))
    other = FAM.apply(clip, SR, GriffinLimParams(iterations=iterations + 1, seed=99))
    assert not np.array_equal(y, other)


@pytest.mark.slow  # two 500-iteration runs: a few seconds
def test_spectral_distance_falls_with_iterations(clip):
    def mean_lsd(rho):
        return np.mean(
            [log_spectral_distance(clip, FAM.apply(clip, SR, FAM.sample(np.random.default_rng(s), rho)), SR)
             for s in range(2)]
        )  # fmt: skip

    lsd0, lsd50, lsd100 = mean_lsd(0), mean_lsd(50), mean_lsd(100)
    # measured on this clip: ~0.4 dB (500 it.), ~1.4 dB (22 it.), ~3.3 dB (1 it.)
    assert lsd0 < lsd50 < lsd100
    assert lsd0 < 0.8, f"rho=0 (500 iterations) should be spectrally close, got {lsd0:.2f} dB"
    assert lsd100 > 2.0


def test_replay_and_json_round_trip(clip):
    params = FAM.sample(np.random.default_rng(5), 70)
    y = FAM.apply(clip, SR, params)
    assert y.dtype == np.float32 and y.shape == clip.shape
    assert np.array_equal(y, FAM.apply(clip, SR, params))
    again = FAM.params_from_dict(json.loads(params.to_json()))
    assert again == params and np.array_equal(y, FAM.apply(clip, SR, again))
    other = GriffinLimParams(iterations=params.iterations, seed=params.seed + 1)
    assert not np.array_equal(y, FAM.apply(clip, SR, other))  # the seed sets the phase


@pytest.mark.parametrize(
    ("sr", "n_fft"), [(16000, 512), (22050, 706), (44100, 1412), (48000, 1536)]
)
def test_sample_rates(sr, n_fft):
    assert fft_size(sr) == n_fft  # about 32 ms
    x = speech_like(seconds=0.5, sample_rate=sr, seed=1)
    y = FAM.apply(x, sr, FAM.sample(np.random.default_rng(2), 70))
    assert y.shape == x.shape and y.dtype == np.float32 and np.all(np.isfinite(y))
    assert log_spectral_distance(x, y, sr) < 6.0


def test_bad_iterations_are_named(clip):
    for bad in (0, 2.5, True):
        with pytest.raises(PerturbationError, match="iterations"):
            FAM.apply(clip, SR, GriffinLimParams(iterations=bad, seed=1))  # type: ignore[arg-type]


@pytest.mark.parametrize("iterations", [1, 12, 60])
def test_numpy_engine_follows_librosas_definition(clip, iterations):
    # the default engine for new rows: same definition, same start, float32 arithmetic
    fast = FAM.apply(clip, SR, GriffinLimParams(iterations, seed=99, engine="numpy"))
    ref = FAM.apply(clip, SR, GriffinLimParams(iterations, seed=99, engine="librosa"))
    assert fast.shape == ref.shape == clip.shape
    assert np.max(np.abs(fast - ref)) < 1e-3 * np.max(np.abs(ref))
    # and not by accident: another seed starts from another phase
    other = FAM.apply(clip, SR, GriffinLimParams(iterations, seed=98, engine="numpy"))
    assert np.max(np.abs(other - ref)) > 0.1 * np.max(np.abs(ref))


def test_new_rows_record_the_numpy_engine_and_unknown_engines_are_refused(clip):
    params = FAM.sample(np.random.default_rng(0), 60)
    assert params.engine == "numpy"
    assert GriffinLimParams.from_dict({"iterations": 3, "seed": 1}).engine == "librosa"
    with pytest.raises(PerturbationError, match="engine"):
        FAM.apply(clip, SR, GriffinLimParams(3, seed=1, engine="cuda"))
