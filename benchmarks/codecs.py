"""The codec suite measured: every codec family's engine, speed, lag and length change, each
against its nearest peer, and the codec recipe's pairs per second with each MP3 engine.

1. Families (``mp3``, ``aac``, ``opus``, ``vorbis``, ``gsm``, ``amr_nb``, ``alaw``, ``mulaw``,
   ``packet_loss`` and ``dropouts``) at strength 50 on 2.5 s clips of demo-corpus speech:
   x-real-time at 16 kHz (CPU time, ffmpeg children included, best of 3 timing windows), the ratio to
   the family's nearest peer measured in the same run, the length change, and the lag
   (cross-correlation peak, searched both ways) at 16, 22.05, 44.1 and 48 kHz.
2. The codec recipe: pairs per second of ``CodecRecipe.generate`` (the default spec: 2.5 s
   music clips with 0.25 s of context each side, MP3 at 16 kb/s) with the in-process LAME
   engine (the default) and with ffmpeg (one encoder/decoder pair per chunk of 64 rows).

    .venv/bin/python benchmarks/codecs.py [--clips 6] [--rows 64] [--quick]

CPU time (the process and its ffmpeg children), one process: compare the ratios.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

from pamflow import perturbations
from pamflow.audio import resample
from pamflow.audio.dsp import measure_lag
from pamflow.corpus.sources import default_sources
from pamflow.datasets.base import get_recipe

SECONDS = 2.5
RATES = (16000, 22050, 44100, 48000)
#: each family's nearest peer (the ratio column): another codec of its kind
PEERS = {
    "mp3": "mp3",
    "aac": "mp3",
    "opus": "mp3",
    "vorbis": "mp3",
    "gsm": "amr_nb",
    "amr_nb": "gsm",
    "alaw": "mulaw",
    "mulaw": "alaw",
    "packet_loss": "dropouts",
    "dropouts": "packet_loss",
}


def _cpu() -> float:
    """CPU seconds of this process and its finished children (ffmpeg): what a build pays,
    and steady on a shared machine where wall time is not."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _best(fn: Callable[[], None], min_s: float) -> float:
    """Best seconds per call over 3 windows of at least ``min_s`` each."""
    best = float("inf")
    for _ in range(3):
        n, t0 = 0, _cpu()
        while True:
            fn()
            n += 1
            dt = _cpu() - t0
            if dt >= min_s:
                break
        best = min(best, dt / n)
    return best


def families(clips: list[np.ndarray], min_s: float) -> str:
    rows, speed = [], {}
    for name in PEERS:
        fam = perturbations.get(name)
        params = fam.sample(np.random.default_rng(0), 50.0)
        engine = getattr(params, "engine", "numpy")

        def run(fam=fam, params=params) -> None:
            for x in clips:
                fam.apply(x, 16000, params)

        run()  # warm up: the ffmpeg codecs measure their delay once
        speed[name] = len(clips) * SECONDS / _best(run, min_s)
        lags, grow = [], set()
        for sr in RATES:
            x = resample(clips[0], 16000, sr)
            y = fam.apply(x, sr, params)
            grow.add(y.size - x.size)
            lags.append(measure_lag(x, y, 200, signed=True)[0])
        setting = {k: v for k, v in params.to_dict().items() if k not in ("engine", "seed")}
        rows.append([name, engine, setting, lags, grow])
    out = [
        "| family | engine | setting at strength 50 | xRT (16 kHz) | peer | ratio to peer | "
        "length change | lag at 16 / 22.05 / 44.1 / 48 kHz |",
        "|---|---|---|---:|---|---:|---:|---|",
    ]
    for name, engine, setting, lags, grow in rows:
        peer = PEERS[name]
        ratio = "1.00" if peer == name else f"{speed[name] / speed[peer]:.2f}"
        s = ", ".join(
            f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in setting.items()
        )
        out.append(
            f"| {name} | {engine} | {s} | {speed[name]:.0f} | {peer} | {ratio} | "
            f"{'/'.join(str(g) for g in sorted(grow))} | {' / '.join(str(v) for v in lags)} |"
        )
    return "\n".join(out)


def recipe_pairs(rows: int, min_s: float) -> str:
    recipe = get_recipe("codec")
    sources = default_sources()
    out = ["| MP3 engine | pairs/s | ratio to ffmpeg |", "|---|---:|---:|"]
    rate = {}
    for engine in ("ffmpeg", "lame"):
        spec = recipe.parse({"num_examples": rows, "codecs": [{"family": "mp3", "engine": engine}]})
        list(recipe.generate(spec, sources, 0, 2))  # warm up: sources and the codec delay

        def run(spec=spec) -> None:
            for _ in recipe.generate(spec, sources, 0, rows):
                pass

        rate[engine] = rows / _best(run, min_s)
    for engine in ("ffmpeg", "lame"):
        out.append(f"| {engine} | {rate[engine]:.1f} | {rate[engine] / rate['ffmpeg']:.2f} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clips", type=int, default=6)
    ap.add_argument("--rows", type=int, default=64, help="codec recipe rows per timing")
    ap.add_argument("--min-seconds", type=float, default=0.5, help="per timing window")
    ap.add_argument("--quick", action="store_true", help="2 clips, 8 rows, short windows")
    args = ap.parse_args()
    n, rows, min_s = (2, 8, 0.01) if args.quick else (args.clips, args.rows, args.min_seconds)
    sources = default_sources()
    ids = sources.ids("speech")[:n]
    clips = [
        np.resize(sources.load(i, 16000), int(SECONDS * 16000)).astype(np.float32) for i in ids
    ]
    print(
        f"{len(clips)} clips x {SECONDS} s of speech; xRT = audio seconds / CPU seconds (ffmpeg children included)\n"
    )
    print(f"### 1. Codec families\n\n{families(clips, min_s)}\n", flush=True)
    print(f"### 2. Codec recipe pairs (default spec, {rows} rows)\n\n{recipe_pairs(rows, min_s)}\n")


if __name__ == "__main__":
    main()
