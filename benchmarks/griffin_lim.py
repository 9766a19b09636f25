"""Griffin-Lim on the CPU: pamflow's NumPy engine against librosa and against the FFT floor.

One 2.5 s clip at 16 kHz (512-point frames, hop 128: 313 frames), 500 iterations, one
core, in one run: the floor is the FFT work alone (500 x rfft + irfft of the clip's frame
matrix in float32, scipy.fft); librosa is ``librosa.griffinlim`` as the family used it
(float64); pamflow is :func:`pamflow.audio.griffin_lim.griffin_lim` (float32), and the
batched PyTorch engine on the CPU, per clip. Best of ``--repeats`` CPU-time measurements.

    .venv/bin/python benchmarks/griffin_lim.py [--iterations 500] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core for every engine

import numpy as np
import scipy.fft


def best(fn, repeats: int) -> float:
    out = float("inf")
    for _ in range(repeats):
        t = time.process_time()
        fn()
        out = min(out, time.process_time() - t)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--iterations", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=2.5)
    args = ap.parse_args()

    import librosa
    import torch

    from pamflow.audio.griffin_lim import Plan, griffin_lim, griffin_lim_batch, magnitude
    from pamflow.testing import speech_like

    torch.set_num_threads(1)
    sr, n_fft, hop, it = 16000, 512, 128, args.iterations
    x = speech_like(seconds=args.seconds, sample_rate=sr, seed=0)
    length = x.size
    mag = magnitude(x, n_fft, hop)
    frames = np.random.default_rng(0).standard_normal((Plan(length, n_fft, hop).frames, n_fft))
    frames = frames.astype(np.float32)

    def floor() -> None:
        for _ in range(it):
            scipy.fft.irfft(scipy.fft.rfft(frames, axis=-1), n=n_fft, axis=-1)

    mag64 = np.abs(librosa.stft(x.astype(np.float64), n_fft=n_fft, hop_length=hop))
    griffin_lim(mag, 2, np.random.default_rng(0), length=length, hop=hop)  # compile once
    times = {
        "FFT floor (500 x rfft + irfft, float32)": best(floor, args.repeats),
        "librosa.griffinlim (float64)": best(
            lambda: librosa.griffinlim(
                mag64,
                n_iter=it,
                hop_length=hop,
                n_fft=n_fft,
                length=length,
                init="random",
                random_state=np.random.default_rng(1),
            ),  # fmt: skip
            args.repeats,
        ),
        "pamflow NumPy engine (float32)": best(
            lambda: griffin_lim(mag, it, np.random.default_rng(1), length=length, hop=hop),
            args.repeats,
        ),
        "pamflow PyTorch engine, CPU, batch of 8 (per clip)": best(
            lambda: griffin_lim_batch(
                [mag] * 8,
                [it] * 8,
                [np.random.default_rng(i) for i in range(8)],
                length=length,
                hop=hop,
            ),  # fmt: skip
            1,
        )
        / 8,
    }
    floor_s = times["FFT floor (500 x rfft + irfft, float32)"]
    ours = times["pamflow NumPy engine (float32)"]
    print(f"{args.seconds} s clip at {sr} Hz, {it} iterations, one core\n")
    print("| engine | CPU s per clip | x floor | librosa / engine |")
    print("|---|---:|---:|---:|")
    lib = times["librosa.griffinlim (float64)"]
    for name, s in times.items():
        print(f"| {name} | {s:.3f} | {s / floor_s:.2f} | {lib / s:.2f} |")
    print(f"\npamflow NumPy engine: {lib / ours:.1f}x librosa, {ours / floor_s:.2f}x the FFT floor")


if __name__ == "__main__":
    main()
