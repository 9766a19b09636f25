"""The Griffin-Lim engines: librosa's definition exactly (float64), the batch agrees."""

from __future__ import annotations

import librosa
import numpy as np
import pytest

from pamflow.audio.griffin_lim import griffin_lim, griffin_lim_batch, magnitude
from pamflow.measures import log_spectral_distance
from pamflow.testing import speech_like


@pytest.mark.parametrize(("sr", "length"), [(16000, 16000), (22050, 22050 + 37)])
def test_float64_matches_librosa_to_rounding(sr, length):
    # 22.05 kHz: n_fft 706 is not a multiple of the hop (176), the overlap-add pads frames
    x = speech_like(seconds=length / sr, sample_rate=sr, seed=1)[:length].astype(np.float64)
    n_fft = 2 * round(0.016 * sr)
    hop = n_fft // 4
    mag = np.abs(librosa.stft(x, n_fft=n_fft, hop_length=hop))
    assert np.allclose(magnitude(x, n_fft, hop, np.float64), mag, atol=1e-10)
    for iterations in (1, 7):
        ref = librosa.griffinlim(
            mag, n_iter=iterations, hop_length=hop, n_fft=n_fft, length=length,
            init="random", random_state=np.random.default_rng(4),
        )  # fmt: skip
        ours = griffin_lim(
            mag, iterations, np.random.default_rng(4), length=length, hop=hop, dtype=np.float64
        )
        assert np.max(np.abs(ours - ref)) < 1e-10


def test_batch_matches_one_clip_engine_and_sends_each_clip_home():
    sr, hop = 16000, 128
    clips = [speech_like(seconds=1.0, sample_rate=sr, seed=s) for s in range(4)]
    mags = [magnitude(c, 512, hop) for c in clips]
    counts = [30, 1, 30, 8]
    batch = griffin_lim_batch(
        mags, counts, [np.random.default_rng(s) for s in range(4)], length=sr, hop=hop
    )
    for k in range(4):
        one = griffin_lim(mags[k], counts[k], np.random.default_rng(k), length=sr, hop=hop)
        assert batch[k].shape == (sr,)
        assert np.max(np.abs(batch[k] - one)) < 1e-3 * np.max(np.abs(one))
        assert log_spectral_distance(one, batch[k], sr) < 0.05
    # each output is its own clip's: a mix-up would be far off
    assert np.max(np.abs(batch[0] - batch[2])) > 0.1 * np.max(np.abs(batch[0]))


def test_sizes_that_do_not_fit_are_refused():
    mag = magnitude(np.zeros(1000, np.float32), 512, 128)
    with pytest.raises(ValueError, match="frames"):
        griffin_lim(mag, 1, np.random.default_rng(0), length=5000, hop=128)
    with pytest.raises(ValueError, match="differ"):
        griffin_lim_batch([mag], [1, 2], [np.random.default_rng(0)], length=1000, hop=128)


@pytest.mark.parametrize("real", [np.float32, np.float64])
def test_update_step_is_the_complex_formula_bit_for_bit(real):
    """The fused update (numba, on (re, im) pairs) rounds exactly as the same operations
    in NumPy, signed zeros included: rows made with it replay bit for bit."""
    from pamflow.audio.griffin_lim import _update

    rng = np.random.default_rng(7)
    cplx = np.result_type(real, np.complex64)
    shape = (31, 17)

    def draw() -> np.ndarray:
        z = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
        return np.ascontiguousarray(z, dtype=cplx)

    rebuilt, prev = draw(), draw()
    rebuilt.real[0, :4] = [0.0, -0.0, 1e-30, -3.0]
    mag = np.abs(rng.standard_normal(shape)).astype(real)
    factor, eps = 0.99 / 1.99, np.finfo(real).tiny
    for previous, f in ((prev, factor), (None, 0.0)):
        out = np.empty_like(rebuilt)
        _update(rebuilt, previous, mag, factor, eps, out)
        other = rebuilt if previous is None else previous
        re = rebuilt.real - real(f) * other.real
        im = rebuilt.imag - real(f) * other.imag
        scale = mag / (np.sqrt(re * re + im * im) + real(eps))
        assert out.dtype == cplx
        assert np.array_equal(out.real, re * scale) and np.array_equal(out.imag, im * scale)
        assert np.array_equal(np.signbit(out.real), np.signbit(re * scale))


_FIRST_CLIP = """
import numpy as np
from pamflow.audio.griffin_lim import _kernel, griffin_lim, magnitude
x = np.random.default_rng(0).standard_normal(4000).astype(np.float32)
y = griffin_lim(magnitude(x, 512, 128), 2, np.random.default_rng(0), length=x.size, hop=128)
kernel = _kernel()
hits, misses = (sum(v.values()) for v in (kernel.stats.cache_hits, kernel.stats.cache_misses))
print(type(kernel._cache).__name__, hits, misses, float(np.sum(y)))
"""


def _first_clip(env: dict[str, str], prelude: str = "") -> tuple[str, int, int, float]:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", prelude + _FIRST_CLIP], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    cache, hits, misses, total = done.stdout.split()
    return cache, int(hits), int(misses), float(total)


def test_update_step_is_compiled_once_then_loaded_from_numba_s_cache(tmp_path):
    import os

    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    first = _first_clip(env)
    second = _first_clip(env)
    assert first[:3] == ("FunctionCache", 0, 1)  # compiled, and saved
    assert second[:3] == ("FunctionCache", 1, 0)  # loaded: no compiling in the next process
    assert second[3] == first[3]
    assert any(tmp_path.rglob("*.nbi"))
    # where numba finds no folder to cache in, each process compiles instead of failing
    blind = "import numba.core.caching as c\nc.CacheImpl._locator_classes = []\n"
    assert _first_clip(env, blind) == ("NullCache", 0, 1, first[3])
