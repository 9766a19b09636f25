"""Griffin-Lim (DPAM, miscellaneous): the phase rebuilt from the magnitude, 500 to 1 iterations.

The clip's STFT magnitude is kept and its phase thrown away; Griffin-Lim (librosa's
``griffinlim``: random initial phase, momentum 0.99, librosa's default "fast Griffin-Lim")
rebuilds a waveform whose STFT magnitude approaches the original one, as in the DPAM
reference data. Fewer iterations leave a less consistent phase: the phasey, smeared sound
of vocoded speech. rho maps exponentially onto the number of iterations, 500 at rho = 0 to
1 at rho = 100 (DPAM Table 1), rounded to an integer:
``iterations = round(500 * (1 / 500) ** (rho / 100))``.

Two engines compute it, recorded in params as ``engine`` so a replay uses the one that made
the row: ``"numpy"`` (the default: :func:`pamflow.audio.griffin_lim.griffin_lim` in float32,
windows and normalisation computed once, at about twice the cost of its FFTs alone) and
``"librosa"`` (librosa's ``griffinlim`` in float64, 3-5x slower; the engine of rows made
before the NumPy one existed, which is why params without ``engine`` name it). Both follow
the same definition from the same initial phase and agree to about 1e-4 of full scale
after 60 iterations; each replays bit for bit.

Two more engines run :func:`pamflow.audio.griffin_lim.griffin_lim_batch` (PyTorch, float32):
``"torch-cuda"`` on the GPU and ``"torch-cpu"`` on the CPU. A build uses them when it batches
a shard's Griffin-Lim rows (:mod:`pamflow.perturbations.lockstep`; the spec's
``griffin_lim_engine``, on a CUDA worker by default); replaying such a row runs the clip
alone on the same backend. Each clip of a batch is computed as it is alone (bit for bit on
the CPU, measured and tested; on CUDA asserted by a test that runs only where a GPU is), so
the replay gives the row back. A ``"torch-cuda"`` row replays only where CUDA is. The torch
engines follow the same definition in float32, whose rounding differs from NumPy's and
grows with the count: torch-cpu agrees with numpy to a log-spectral distance under 0.25 dB
(0.14 dB measured at 500 iterations at 22.05 kHz, under 0.01 dB at 16 kHz), and torch-cuda
with torch-cpu within the same bound (tested where a GPU is); for scale, Griffin-Lim's own
output is 0.4 to 3.6 dB from its input.

The STFT uses a Hann window of about 32 ms (``n_fft`` = the even number nearest to
0.032 * sample rate: 512 at 16 kHz, 706 at 22.05 kHz, 1412 at 44.1 kHz, 1536 at 48 kHz)
and a hop of ``n_fft // 4``. The random initial phase comes from a generator seeded with
the params' ``seed``, so an output replays bit for bit.

Griffin-Lim never gives back the exact waveform (the phase is not recovered; SI-SDR
against the input is about -20 dB at any setting), so rho = 0 is the mildest setting but
not a transparent one: judge it with a spectral measure. On a 2.5 s speech-like clip at
16 kHz the log-spectral distance to the input (512-point STFT) is about 0.4 dB after 500
iterations, 1.3 dB after 22 (rho = 50) and 3.1 dB after 1. Cost grows with the count:
about 2 s of CPU for 500 iterations on that clip, 0.1 s for 22, 15 ms for 1 with librosa; the NumPy engine takes a quarter to a third of that.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from pamflow.audio.griffin_lim import griffin_lim, magnitude
from pamflow.perturbations import lockstep
from pamflow.perturbations.base import Family, Params, PerturbationError
from pamflow.seeding import draw_seed

#: STFT window length, seconds
WINDOW_S = 0.032


@dataclass(frozen=True)
class GriffinLimParams(Params):
    iterations: int  # Griffin-Lim iterations, >= 1
    seed: int  # seeds the random initial phase
    engine: str = "librosa"  # "numpy" (new rows), "torch-cpu", "torch-cuda" or "librosa"


#: the engines that can compute a row, by the name its params record
ENGINES = ("numpy", "librosa", "torch-cpu", "torch-cuda")
#: the engines a build may make new rows with: the spec's ``griffin_lim_engine`` beside "auto"
SAMPLE_ENGINES = ("numpy", "torch-cpu", "torch-cuda")

_SAMPLE_ENGINE: contextvars.ContextVar[str] = contextvars.ContextVar(
    "pamflow_griffin_lim_engine", default="numpy"
)


@contextlib.contextmanager
def sample_engine(engine: str) -> Iterator[None]:
    """Params drawn inside the block record ``engine`` (one of :data:`SAMPLE_ENGINES`;
    "numpy" outside any block)."""
    if engine not in SAMPLE_ENGINES:
        raise PerturbationError(
            f"griffin_lim: engine must be one of {SAMPLE_ENGINES}, got {engine!r}"
        )
    token = _SAMPLE_ENGINE.set(engine)
    try:
        yield
    finally:
        _SAMPLE_ENGINE.reset(token)


def cuda_available() -> bool:
    """Whether this process can use a CUDA GPU. Without an NVIDIA driver it answers without
    importing torch (a CPU worker does not pay torch's import for the question)."""
    if "torch" not in sys.modules and not os.path.exists("/proc/driver/nvidia/version"):
        return False
    import torch

    return bool(torch.cuda.is_available())


def resolve_engine(choice: str) -> str:
    """The engine a build makes new rows with: ``choice`` itself, or for "auto" "torch-cuda"
    where this process has CUDA and "numpy" elsewhere."""
    if choice == "auto":
        return "torch-cuda" if cuda_available() else "numpy"
    if choice not in SAMPLE_ENGINES:
        raise PerturbationError(
            f"griffin_lim: engine must be one of {SAMPLE_ENGINES}, got {choice!r}"
        )
    if choice == "torch-cuda" and not cuda_available():
        raise PerturbationError(
            "griffin_lim_engine: 'torch-cuda' asked for, but this worker has no CUDA GPU "
            "(use 'auto', 'numpy' or 'torch-cpu')"
        )
    return choice


def fft_size(sample_rate: int) -> int:
    """STFT size at ``sample_rate``: the even number of samples nearest to 32 ms."""
    return max(16, 2 * int(round(WINDOW_S * sample_rate / 2)))


def iterations_at(value: float) -> int:
    """The integer iteration count for the mapped (real) value: rounded, at least 1."""
    return max(1, int(round(value)))


class GriffinLim(Family[GriffinLimParams]):
    """Phase rebuilt by Griffin-Lim from the STFT magnitude; rho -> 500..1 iterations (exp)."""

    name = "griffin_lim"
    category = "misc"
    params_type = GriffinLimParams
    parameter = "Griffin-Lim iterations"
    unit = "iterations"
    mild = 500.0
    strong = 1.0
    mapping = "exponential"

    #: iterations that cost a plain build row: 1.1 ms an iteration on a 2.5 s clip at
    #: 16 kHz against 24.5 ms a row of the other default families (CPU time, 2-core VM)
    ITERATIONS_PER_ROW = 22.0

    def cost(self, strength: float) -> float:
        return iterations_at(self.value(strength)) / self.ITERATIONS_PER_ROW

    def _sample(self, rng, strength, sources):
        return GriffinLimParams(
            iterations=iterations_at(self.value(strength)),
            seed=draw_seed(rng),
            engine=_SAMPLE_ENGINE.get(),
        )

    def _apply(self, audio, sample_rate, params, sources):
        it = params.iterations
        if isinstance(it, bool) or not isinstance(it, int | np.integer) or it < 1:
            raise PerturbationError(f"griffin_lim: iterations must be an integer >= 1, got {it!r}")
        if params.engine not in ENGINES:
            raise PerturbationError(
                f"griffin_lim: engine must be one of {ENGINES}, got {params.engine!r}"
            )
        n_fft = fft_size(sample_rate)
        hop = n_fft // 4
        rng = np.random.default_rng(int(params.seed))
        if params.engine == "numpy":
            mag = magnitude(audio.astype(np.float32, copy=False), n_fft, hop)
            return griffin_lim(mag, int(it), rng, length=audio.size, hop=hop)
        if params.engine.startswith("torch-"):
            device = params.engine.removeprefix("torch-")
            if device == "cuda" and not cuda_available():
                raise PerturbationError(
                    "griffin_lim: engine 'torch-cuda' needs a CUDA GPU (the row was made on "
                    "one and replays on one)"
                )
            mag = magnitude(audio.astype(np.float32, copy=False), n_fft, hop)
            return lockstep.submit(lockstep.Request(mag, int(it), rng, audio.size, hop, device))
        import librosa  # lazy: librosa is slow to load and only the old engine needs it

        x = audio.astype(np.float64)
        mag = np.abs(librosa.stft(x, n_fft=n_fft, hop_length=hop, window="hann"))
        return librosa.griffinlim(
            mag,
            n_iter=int(it),
            hop_length=hop,
            n_fft=n_fft,
            window="hann",
            length=x.size,
            init="random",
            random_state=rng,
        )
