"""Test helpers shipped with the package: deterministic signals made in code.

Tests (pamflow's and users') make their audio here rather than reading files: sines,
chirps, and a speech-like signal (voiced harmonic syllables through formant filters,
separated by pauses), all seeded.
"""

from __future__ import annotations

import numpy as np
from scipy import signal


def sine(freq: float = 440.0, seconds: float = 1.0, sample_rate: int = 16000,
         amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def chirp(f0: float = 100.0, f1: float = 4000.0, seconds: float = 1.0,
          sample_rate: int = 16000, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return (amplitude * signal.chirp(t, f0, seconds, f1, method="logarithmic")).astype(np.float32)


def speech_like(seconds: float = 2.5, sample_rate: int = 16000, seed: int = 0,
                level_db: float = -20.0) -> np.ndarray:
    """Syllables of a glottal pulse train (pitch 90..220 Hz, with vibrato) through three
    formant resonators, 120..300 ms long, with 40..250 ms pauses; active RMS ``level_db``."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sample_rate)
    out = np.zeros(n)
    pos = int(rng.uniform(0.02, 0.1) * sample_rate)
    f0_base = rng.uniform(90, 220)
    while pos < n:
        dur = int(rng.uniform(0.12, 0.3) * sample_rate)
        seg = min(dur, n - pos)
        t = np.arange(seg) / sample_rate
        f0 = f0_base * (1 + 0.05 * np.sin(2 * np.pi * rng.uniform(3, 6) * t)) * rng.uniform(0.85, 1.15)
        phase = np.cumsum(f0 / sample_rate)
        pulses = (np.diff(np.floor(phase), prepend=0) > 0).astype(float)
        src = pulses + 0.02 * rng.standard_normal(seg)
        y = np.zeros(seg)
        for fc, bw in zip(rng.uniform([300, 900, 2200], [800, 2200, 3400]), (80, 120, 200), strict=True):
            fc = min(fc, 0.45 * sample_rate)
            r = np.exp(-np.pi * bw / sample_rate)
            a = [1, -2 * r * np.cos(2 * np.pi * fc / sample_rate), r * r]
            y += signal.lfilter([1 - r], a, src)
        y *= np.hanning(seg) if seg > 2 else 1.0
        out[pos : pos + seg] = y
        pos += seg + int(rng.uniform(0.04, 0.25) * sample_rate)
    active = out[np.abs(out) > 1e-6]
    rms = np.sqrt(np.mean(active**2)) if active.size else 1.0
    out *= 10 ** (level_db / 20) / rms
    return np.clip(out, -1, 1).astype(np.float32)


def row_digests(dataset: str) -> dict[int, str]:
    """``index -> sha256`` of every row's content (audio bytes included), for comparing
    two builds row by row whatever their shard layout."""
    import hashlib
    import json

    from pamflow.storage import Dataset

    ds = Dataset.open(dataset)
    out: dict[int, str] = {}
    for batch in ds.iter_batches():
        for row in batch.to_pylist():
            h = hashlib.sha256()
            for key in sorted(row):
                value = row[key]
                if isinstance(value, dict) and "bytes" in value:  # audio struct: content only
                    value = value["bytes"]
                h.update(key.encode())
                h.update(value if isinstance(value, bytes) else json.dumps(value, sort_keys=True).encode())
            out[int(row["index"])] = h.hexdigest()
    return out
