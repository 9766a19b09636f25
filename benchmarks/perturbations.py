"""Perturbation throughput: pamflow against the closest audiomentations chain, one run.

For every family, and for random axes drawn as the JND recipe draws them, both libraries
process the same 2.5 s clips of demo-corpus speech at 16 kHz in this one process (one
core); the tables give x-real-time (seconds of audio per CPU second) and the ratio
pamflow / audiomentations. Families with no audiomentations counterpart show "n/a".

    python benchmarks/perturbations.py [--clips 8] [--axes 40] [--rounds 3]
                                       [--sample-rate 16000] [--families a,b,...]

How it is timed, so that the two libraries pay for the same things:

* both draw fresh parameters for every call: pamflow's ``sample`` from one generator per
  clip made before timing (a build makes one per row), audiomentations from its global RNG
  (seeded here so the run repeats). No call repeats the params of another, so caches of
  results (reverb's built RIRs) do not flatter pamflow; caches of what a worker keeps from
  row to row (prepared bank RIRs, loaded recordings) are warm, as in a build: one untimed
  pass per family warms both libraries (loaded files, lazy imports).
* CPU time of this process; the two libraries alternate, ``--rounds`` times, and each keeps
  its best round, so load from other processes moves the ratios little.
* the axis mixes draw ``--axes`` new axes each round; pamflow samples each chain (as a
  recipe does) and applies it, audiomentations runs the same families at the same strengths
  (transforms built before timing). The table under each mix splits its time by family.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf

from pamflow import perturbations
from pamflow.corpus.sources import default_sources
from pamflow.perturbations import sample_axis


def audiomentations_factory(noise_dir: str, rir_dir: str) -> dict[str, Callable[[float], object]]:
    """family -> (rho -> the closest audiomentations transform at that strength)."""
    import audiomentations as am

    def snr(rho: float) -> float:
        return perturbations.get("white_noise").value(rho)

    def bg(label: str) -> Callable[[float], object]:
        return lambda r: am.AddBackgroundNoise(
            sounds_path=str(Path(noise_dir) / label), min_snr_db=snr(r), max_snr_db=snr(r), p=1.0
        )

    return {
        "white_noise": lambda r: am.AddGaussianSNR(min_snr_db=snr(r), max_snr_db=snr(r), p=1.0),
        "pink_noise": lambda r: am.AddColorNoise(
            min_snr_db=snr(r), max_snr_db=snr(r), min_f_decay=-3.01, max_f_decay=-3.01, p=1.0
        ),
        "applause_noise": bg("applause"),
        "water_drop_noise": bg("water_drop"),
        "room_noise": bg("room"),
        "babble_noise": bg("babble"),
        "reverb_drr": lambda r: am.ApplyImpulseResponse(ir_path=rir_dir, p=1.0),
        "reverb_rt60": lambda r: am.ApplyImpulseResponse(ir_path=rir_dir, p=1.0),
        "mp3": lambda r: am.Mp3Compression(
            min_bitrate=_legal_bitrate(r),
            max_bitrate=_legal_bitrate(r),
            backend="fast-mp3-augment",
            p=1.0,
        ),
        "mulaw": lambda r: am.BitCrush(min_bit_depth=_bits(r), max_bit_depth=_bits(r), p=1.0),
        "eq": lambda r: am.SevenBandParametricEQ(
            min_gain_db=-12 * r / 100, max_gain_db=12 * r / 100, p=1.0
        ),
        "dropouts": lambda r: am.TimeMask(
            min_band_part=0.0001, max_band_part=max(0.0001, 0.2 * r / 100), p=1.0
        ),
        "clipping": lambda r: am.ClippingDistortion(
            min_percentile_threshold=0, max_percentile_threshold=max(1, int(r * 0.4)), p=1.0
        ),
        "freq_mask": lambda r: am.BandStopFilter(p=1.0),
        "gain": lambda r: am.Gain(min_gain_db=-20 * r / 100, max_gain_db=-20 * r / 100, p=1.0),
        "delay": lambda r: am.Shift(min_shift=0.0, max_shift=0.25 * r / 100 / 2.5 + 1e-6, p=1.0),
    }


def _bits(rho: float) -> int:
    """μ-law bits at ``rho`` as a BitCrush depth (which allows 1..32 bits)."""
    return int(np.clip(perturbations.get("mulaw").value(rho), 1, 32))


def _legal_bitrate(rho: float) -> int:
    from fast_mp3_augment import SUPPORTED_BITRATES

    want = perturbations.get("mp3").value(rho)
    return int(min(SUPPORTED_BITRATES, key=lambda b: abs(b - want)))


def _export_folders(sources, tmp: Path, sr: int) -> tuple[str, str]:
    noise_dir, rir_dir = tmp / "noise", tmp / "rir"
    for sid in sources.ids("noise"):
        d = noise_dir / str(sources.entry(sid)["label"])
        d.mkdir(parents=True, exist_ok=True)
        sf.write(d / (Path(sid).stem + ".wav"), sources.load(sid, sr), sr, subtype="FLOAT")
    rir_dir.mkdir(parents=True, exist_ok=True)
    for sid in sources.ids("rir"):
        sf.write(rir_dir / (Path(sid).stem + ".wav"), sources.load(sid, sr), sr, subtype="FLOAT")
    return str(noise_dir), str(rir_dir)


def _cpu_seconds(fn: Callable[[], None], min_seconds: float) -> float:
    """CPU seconds per call of ``fn`` (called until ``min_seconds`` have passed)."""
    n, t0 = 0, time.process_time()
    while True:
        fn()
        n += 1
        elapsed = time.process_time() - t0
        if elapsed >= min_seconds:
            return elapsed / n


def _best_of(fns: dict[str, Callable[[], None]], rounds: int, min_seconds: float) -> dict:
    """Each of ``fns`` timed ``rounds`` times, alternating; the best round of each."""
    best = {k: float("inf") for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            best[k] = min(best[k], _cpu_seconds(fn, min_seconds))
    return best


def family_rows(names, clips, sr, sources, factory, rounds, min_seconds):
    """``(family, pamflow xRT, audiomentations xRT or None)`` for each family."""
    audio_seconds = sum(x.size for x in clips) / sr
    strengths = np.random.default_rng(0).uniform(0, 100, size=len(clips))
    for name in names:
        fam = perturbations.get(name)
        rngs = [np.random.default_rng([k, 1]) for k in range(len(clips))]

        def run_pamflow(fam=fam, rngs=rngs) -> None:
            for k, x in enumerate(clips):
                fam.apply(x, sr, fam.sample(rngs[k], strengths[k], sources), sources)

        fns = {"pamflow": run_pamflow}
        if name in factory:
            transforms = [factory[name](r) for r in strengths]

            def run_am(transforms=transforms) -> None:
                for t, x in zip(transforms, clips, strict=True):
                    t(samples=x, sample_rate=sr)

            fns["audiomentations"] = run_am
        for fn in fns.values():  # warm-up: files loaded, lazy imports, caches of a worker
            fn()
        best = _best_of(fns, rounds, min_seconds)
        theirs = best.get("audiomentations")
        yield name, audio_seconds / best["pamflow"], (audio_seconds / theirs if theirs else None)


def axis_mix(pool, clips, sr, sources, factory, n_axes, rounds):
    """Total CPU seconds of pamflow and audiomentations over ``rounds`` sets of
    ``n_axes`` axes, split by family (``"(sampling)"``: drawing pamflow's chains)."""
    spent: dict[str, dict[str, float]] = {"pamflow": defaultdict(float), "am": defaultdict(float)}
    for r in range(-1, rounds):  # round -1 warms up and is not counted
        axes = [sample_axis(np.random.default_rng([7, r + 1, a]), pool) for a in range(n_axes)]
        rhos = np.random.default_rng([8, r + 1]).uniform(0, 100, size=n_axes)
        # audiomentations: the same families at the same strengths, built before timing
        plans = [ax.chain(rho, sources) for ax, rho in zip(axes, rhos, strict=True)]
        composes = [
            [(s.family, factory[s.family](s.strength)) for s in c.steps if s.family in factory]
            for c in plans
        ]
        for lib in ("pamflow", "am"):
            acc: dict[str, float] = defaultdict(float)
            for a, (ax, rho) in enumerate(zip(axes, rhos, strict=True)):
                y = clips[a % len(clips)]
                if lib == "pamflow":
                    t0 = time.process_time()
                    chain = ax.chain(float(rho), sources)
                    acc["(sampling)"] += time.process_time() - t0
                    for step in chain.steps:
                        fam = perturbations.get(step.family)
                        t0 = time.process_time()
                        y = fam.apply(y, sr, fam.params_from_dict(step.params), sources)
                        acc[step.family] += time.process_time() - t0
                else:
                    for family, t in composes[a]:
                        t0 = time.process_time()
                        y = t(samples=y, sample_rate=sr)
                        acc[family] += time.process_time() - t0
            if r >= 0:
                for k, v in acc.items():
                    spent[lib][k] += v
    return spent


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--clips", type=int, default=8)
    ap.add_argument("--axes", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--min-seconds", type=float, default=0.2, help="per timing, CPU seconds")
    ap.add_argument("--sample-rate", type=int, default=16000)
    ap.add_argument("--families", default="", help="comma-separated; default: every family")
    args = ap.parse_args()
    sr = args.sample_rate
    np.random.seed(0)  # noqa: NPY002  (audiomentations draws from global RNG)
    random.seed(0)
    sources = default_sources()
    n = int(2.5 * sr)
    clips = [
        np.resize(sources.load(i, sr), n).astype(np.float32)
        for i in sources.ids("speech")[: args.clips]
    ]
    names = [f for f in args.families.split(",") if f] or perturbations.names()
    with tempfile.TemporaryDirectory() as tmp:
        factory = audiomentations_factory(*_export_folders(sources, Path(tmp), sr))
        print(
            f"{len(clips)} clips x 2.5 s at {sr} Hz, one core; x-real-time = audio seconds / "
            f"CPU seconds, best of {args.rounds} alternating rounds\n"
        )
        print("| family | pamflow xRT | audiomentations xRT | ratio |")
        print("|---|---:|---:|---:|")
        rows = family_rows(names, clips, sr, sources, factory, args.rounds, args.min_seconds)
        for name, ours, theirs in rows:
            if theirs is None:
                print(f"| {name} | {ours:.1f} | n/a | |", flush=True)
            else:
                print(f"| {name} | {ours:.1f} | {theirs:.1f} | {ours / theirs:.2f} |", flush=True)
        if args.axes <= 0:
            return
        shared = [f for f in perturbations.default_axis_families() if f in factory]
        for label, pool in (
            ("default JND axis mix", None),
            ("axis mix, families with a counterpart", shared),
        ):
            spent = axis_mix(pool, clips, sr, sources, factory, args.axes, args.rounds)
            secs = args.rounds * args.axes * n / sr
            ours, theirs = sum(spent["pamflow"].values()), sum(spent["am"].values())
            print(
                f"\n{label} ({args.rounds} x {args.axes} axes): pamflow {secs / ours:.1f} xRT, "
                f"audiomentations {secs / theirs:.1f} xRT, ratio {theirs / ours:.2f}\n"
            )
            print("| family | pamflow ms per axis | audiomentations ms per axis |")
            print("|---|---:|---:|")
            n_ax = args.rounds * args.axes
            for fam in sorted(set(spent["pamflow"]) | set(spent["am"])):
                mine = 1000 * spent["pamflow"].get(fam, 0.0) / n_ax
                other = spent["am"].get(fam)
                other_s = f"{1000 * other / n_ax:.3f}" if other is not None else "n/a"
                print(f"| {fam} | {mine:.3f} | {other_s} |")


if __name__ == "__main__":
    main()
