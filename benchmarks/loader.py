"""Loader throughput: examples per second one core decodes through the torch datasets.

Writes two small datasets of JND-like pairs (two audio columns of ``--seconds`` at
``--sample-rate``), one FLAC 24-bit and one float32 WAV, into a temporary folder, then
times reading every row through ``ShardMapDataset`` (sequential and shuffled indices),
``ShardIterableDataset`` (shuffled) and a ``DataLoader`` with ``collate`` (batches of 16),
all with ``num_workers=0``, in examples per CPU-second (process CPU time, so other load on
the machine matters little). Prints the best of ``--repeats`` runs and the WAV/FLAC ratio.

    .venv/bin/python benchmarks/loader.py [--rows 300] [--seconds 2.5] [--sample-rate 16000]
"""

from __future__ import annotations

import argparse
import functools
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from pamflow.storage import Column, Schema, finalize_dataset, write_shard
from pamflow.storage.torch import ShardIterableDataset, ShardMapDataset, collate
from pamflow.testing import speech_like


def build(out: str, fmt: str, rows: int, seconds: float, sr: int, shard_rows: int) -> int:
    """Write ``rows`` pairs in shards of ``shard_rows``; return the dataset's size in bytes."""
    schema = Schema(
        [Column("reference", "audio"), Column("perturbed", "audio"), Column("strength", "float64")]
    )
    rng = np.random.default_rng(0)
    clips = [speech_like(seconds, sr, seed=k) for k in range(16)]  # content repeats; cost doesn't
    size, start = 0, 0
    for s in range(-(-rows // shard_rows)):
        batch = []
        for i in range(start, min(start + shard_rows, rows)):
            ref = clips[i % len(clips)]
            noise = rng.standard_normal(ref.size).astype(np.float32) * 10 ** (-40 / 20) * 0.1
            batch.append(
                {
                    "index": i,
                    "example_id": f"ex-{i:06d}",
                    "seed": i,
                    "params": {},
                    "reference": ref,
                    "perturbed": ref + noise,
                    "strength": 50.0,
                }
            )
        size += write_shard(out, s, batch, schema, sample_rate=sr, audio_format=fmt).bytes
        start += len(batch)
    finalize_dataset(out, recipe="bench", spec={}, seed=0, num_shards=s + 1)
    return size


def best_rate(fn: Callable[[], int], repeats: int) -> float:
    """Examples per CPU-second of this process, best of ``repeats`` runs of ``fn`` (which
    returns a count). CPU time, not wall time: the figure is what one core does, and it
    holds on a machine shared with other work."""
    best = 0.0
    for _ in range(repeats):
        t0 = time.process_time()
        n = fn()
        best = max(best, n / (time.process_time() - t0))
    return best


def measure(path: str, repeats: int) -> dict[str, float]:
    mapped = ShardMapDataset(path)
    order = np.random.default_rng(0).permutation(len(mapped)).tolist()
    stream = ShardIterableDataset(path, shuffle=True, seed=0)
    loader = DataLoader(
        mapped,
        batch_size=16,
        shuffle=False,
        num_workers=0,
        collate_fn=functools.partial(collate, length=None),
    )

    def seq() -> int:
        return sum(1 for i in range(len(mapped)) if mapped[i] is not None)

    def rand() -> int:
        return sum(1 for i in order if mapped[i] is not None)

    def it() -> int:
        return sum(1 for _ in stream)

    def dl() -> int:
        return sum(int(b["reference"].shape[0]) for b in loader)

    return {
        "map, sequential": best_rate(seq, repeats),
        "map, shuffled": best_rate(rand, repeats),
        "iterable, shuffled": best_rate(it, repeats),
        "DataLoader + collate": best_rate(dl, repeats),
    }


def first_pass(path: str, verify: bool, repeats: int) -> float:
    """Examples per CPU-second of a fresh reader's first pass (each pass a new reader, as
    each new process is): with ``verify`` it hashes every shard before reading it."""

    def one() -> int:
        return sum(1 for _ in ShardIterableDataset(path, shuffle=False, verify=verify))

    return best_rate(one, repeats)


def durable_writes(tmp: str, path: str, repeats: int) -> tuple[float, float]:
    """Seconds to write the dataset's shard files again through ``atomic_open``, without
    and with ``fsync`` (data and folder flushed before and after the rename)."""
    from pamflow.storage.files import atomic_open

    shards = sorted(Path(path, "shards").glob("part-*.parquet"))
    data = [f.read_bytes() for f in shards]
    times = []
    for fsync in (False, True):
        best = float("inf")
        for r in range(repeats):
            t0 = time.perf_counter()
            for k, blob in enumerate(data):
                with atomic_open(f"{tmp}/w{int(fsync)}-{r}-{k}.parquet", "wb", fsync=fsync) as f:
                    f.write(blob)
            best = min(best, time.perf_counter() - t0)
        times.append(best)
    return times[0], times[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=300)
    p.add_argument("--seconds", type=float, default=2.5)
    p.add_argument("--sample-rate", type=int, default=16000)
    p.add_argument("--shard-rows", type=int, default=100)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    torch.set_num_threads(1)
    results, sizes = {}, {}
    with tempfile.TemporaryDirectory(prefix="pamflow-loader-bench-") as tmp:
        for fmt, label in (("FLAC", "FLAC 24-bit"), ("WAV", "float32 WAV")):
            out = str(Path(tmp) / fmt.lower())
            sizes[label] = build(
                out, fmt, args.rows, args.seconds, args.sample_rate, args.shard_rows
            )
            results[label] = measure(out, args.repeats)
            if fmt == "FLAC":
                checked = first_pass(out, True, args.repeats)
                unchecked = first_pass(out, False, args.repeats)
                plain, synced = durable_writes(tmp, out, args.repeats)
    flac, wav = results["FLAC 24-bit"], results["float32 WAV"]
    print(
        f"{args.rows} rows x 2 audio columns of {args.seconds} s at {args.sample_rate} Hz, "
        f"num_workers=0, torch threads=1, per CPU-second, best of {args.repeats}"
    )
    print(
        f"dataset size: FLAC {sizes['FLAC 24-bit'] / 1e6:.1f} MB, "
        f"WAV {sizes['float32 WAV'] / 1e6:.1f} MB"
    )
    print(f"{'examples/s':<22}{'FLAC 24-bit':>13}{'float32 WAV':>13}{'WAV/FLAC':>10}")
    for k in flac:
        print(f"{k:<22}{flac[k]:>13.0f}{wav[k]:>13.0f}{wav[k] / flac[k]:>10.2f}")
    print(
        f"\nverified reads (FLAC, a fresh reader's first pass): {checked:.0f} examples/s with "
        f"the sha256 check, {unchecked:.0f} without: {checked / unchecked:.2f}x"
    )
    print(
        f"durable writes (the FLAC shards again, {sizes['FLAC 24-bit'] / 1e6:.1f} MB): "
        f"{plain:.3f} s without fsync, {synced:.3f} s with: {synced / plain:.2f}x"
    )


if __name__ == "__main__":
    main()
