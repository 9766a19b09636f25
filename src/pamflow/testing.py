"""Test helpers shipped with the package: deterministic signals made in code, and small
files and datasets made from them.

Tests (pamflow's and users') make their audio here rather than reading files: sines,
chirps, and a speech-like signal (voiced harmonic syllables through formant filters,
separated by pauses), all seeded; :func:`speech_clips` stacks speech-like clips into a
torch batch. :func:`audio_bytes` writes an audio file in memory exactly as given (good or
bad), :func:`write_dataset` a small finished dataset of given rows, :func:`row_digests`
fingerprints a dataset row by row, and :func:`lag_of` finds the delay between two signals.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import signal

if TYPE_CHECKING:
    import torch

    from pamflow.storage import Column, Schema


def sine(
    freq: float = 440.0, seconds: float = 1.0, sample_rate: int = 16000, amplitude: float = 0.5
) -> np.ndarray:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def chirp(
    f0: float = 100.0,
    f1: float = 4000.0,
    seconds: float = 1.0,
    sample_rate: int = 16000,
    amplitude: float = 0.5,
) -> np.ndarray:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return (amplitude * signal.chirp(t, f0, seconds, f1, method="logarithmic")).astype(np.float32)


def speech_like(
    seconds: float = 2.5, sample_rate: int = 16000, seed: int = 0, level_db: float = -20.0
) -> np.ndarray:
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
        f0 = (
            f0_base
            * (1 + 0.05 * np.sin(2 * np.pi * rng.uniform(3, 6) * t))
            * rng.uniform(0.85, 1.15)
        )
        phase = np.cumsum(f0 / sample_rate)
        pulses = (np.diff(np.floor(phase), prepend=0) > 0).astype(float)
        src = pulses + 0.02 * rng.standard_normal(seg)
        y = np.zeros(seg)
        for fc, bw in zip(
            rng.uniform([300, 900, 2200], [800, 2200, 3400]), (80, 120, 200), strict=True
        ):
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


def speech_clips(
    n: int, seed: int = 0, length: int = 4000, sample_rate: int = 16000
) -> torch.Tensor:
    """``n`` speech-like clips of ``length`` samples (seeds ``seed .. seed + n - 1``) as a
    float32 tensor ``[n, length]``: a batch of waveforms for the models."""
    import torch

    return torch.stack(
        [
            torch.from_numpy(speech_like(length / sample_rate, sample_rate, seed=seed + i))
            for i in range(n)
        ]
    )


def audio_bytes(
    x: np.ndarray, sample_rate: int, subtype: str = "PCM_16", format: str = "WAV", **kwargs: Any
) -> bytes:
    """``x`` written by soundfile as a whole file in memory, as it is: no clipping and no
    conversion (unlike :func:`pamflow.audio.encode`), so that tests can make bad files too
    (NaN samples, odd rates); ``kwargs`` go to :func:`soundfile.write`."""
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, x, sample_rate, format=format, subtype=subtype, **kwargs)
    return buf.getvalue()


def lag_of(x: np.ndarray, y: np.ndarray, max_lag: int = 2000) -> int:
    """Lag of y against x at the cross-correlation peak (positive: y is late), searched
    within ``max_lag`` samples either way."""
    n = 1 << (x.size + y.size).bit_length()
    cc = np.fft.irfft(np.fft.rfft(y, n) * np.conj(np.fft.rfft(x, n)), n)
    lags = np.r_[np.arange(0, max_lag + 1), np.arange(-max_lag, 0)]
    return int(lags[np.argmax(cc[lags])])


def write_dataset(
    out: Any,
    columns: Schema | Sequence[Column],
    rows: Sequence[dict[str, Any]],
    *,
    shard_sizes: Sequence[int] | None = None,
    recipe: str = "test",
    spec: dict[str, Any] | None = None,
    seed: int = 0,
    sample_rate: int = 16000,
    **write_options: Any,
) -> str:
    """A finished dataset of ``rows`` at ``out`` (a path or an fsspec URL): shards of
    ``shard_sizes`` rows (one shard of every row by default) written by
    :func:`pamflow.storage.write_shard` (``write_options``: ``row_group_size``,
    ``audio_format``...), then ``dataset.json``. ``columns`` declares the columns besides
    the base ones; a row lacking a base column gets ``index`` and ``seed`` = its position,
    ``example_id`` = ``f"{recipe}-{position}"`` and ``params`` = ``{}``. Returns ``str(out)``."""
    from pamflow.storage import Schema, finalize_dataset, write_shard

    out = str(out)
    schema = columns if isinstance(columns, Schema) else Schema(list(columns))
    full = [
        {"index": i, "example_id": f"{recipe}-{i}", "seed": i, "params": {}, **row}
        for i, row in enumerate(rows)
    ]
    sizes = list(shard_sizes) if shard_sizes is not None else [len(full)]
    if sum(sizes) != len(full):
        raise ValueError(f"shard_sizes {sizes} add up to {sum(sizes)}, not {len(full)} rows")
    start = 0
    for shard, size in enumerate(sizes):
        write_shard(
            out, shard, full[start : start + size], schema, sample_rate=sample_rate, **write_options
        )
        start += size
    finalize_dataset(out, recipe=recipe, spec=spec or {}, seed=seed, num_shards=len(sizes))
    return out


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
                h.update(
                    value
                    if isinstance(value, bytes)
                    else json.dumps(value, sort_keys=True).encode()
                )
            out[int(row["index"])] = h.hexdigest()
    return out
