"""Perturbation throughput: pamflow against the closest audiomentations chain, one run.

For every family, and for the default JND axis mix, both libraries process the same
2.5 s clips of demo-corpus speech at 16 kHz in this one process (single core); the table
gives x-real-time (seconds of audio per second of wall time) and the ratio
pamflow / audiomentations. Families with no audiomentations counterpart show "n/a".

    python benchmarks/perturbations.py [--clips 8] [--axes 40] [--sample-rate 16000]

audiomentations draws from global RNG; it is seeded here so the run repeats.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
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


def _time(fn: Callable[[], None], min_seconds: float = 0.5) -> float:
    """Seconds per call of ``fn`` (repeated until ``min_seconds`` have passed)."""
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= min_seconds:
            return elapsed / n


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--clips", type=int, default=8)
    ap.add_argument("--axes", type=int, default=40)
    ap.add_argument("--sample-rate", type=int, default=16000)
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
    audio_seconds = len(clips) * 2.5
    rng = np.random.default_rng(0)
    rhos = rng.uniform(0, 100, size=len(clips))
    with tempfile.TemporaryDirectory() as tmp:
        factory = audiomentations_factory(*_export_folders(sources, Path(tmp), sr))
        print(
            f"{len(clips)} clips x 2.5 s at {sr} Hz; x-real-time = audio seconds / wall seconds\n"
        )
        print(f"{'family':18} {'pamflow xRT':>12} {'audiom. xRT':>12} {'ratio':>7}")
        for name in perturbations.names():
            fam = perturbations.get(name)

            def run_pamflow(fam=fam) -> None:
                for k, x in enumerate(clips):
                    fam.apply(
                        x, sr, fam.sample(np.random.default_rng(k), rhos[k], sources), sources
                    )

            ours = audio_seconds / _time(run_pamflow)
            theirs_s = "n/a"
            ratio_s = ""
            if name in factory:
                transforms = [factory[name](r) for r in rhos]

                def run_am(transforms=transforms) -> None:
                    for t, x in zip(transforms, clips, strict=True):
                        t(samples=x, sample_rate=sr)

                theirs = audio_seconds / _time(run_am)
                theirs_s, ratio_s = f"{theirs:12.1f}", f"{ours / theirs:7.2f}"
            print(f"{name:18} {ours:12.1f} {theirs_s:>12} {ratio_s:>7}")

        import audiomentations as am

        for label, pool in (
            ("default JND axis mix", None),
            (
                "axis mix, families with a counterpart",
                [f for f in perturbations.default_axis_families() if f in factory],
            ),
        ):
            axes = [sample_axis(np.random.default_rng([7, a]), pool) for a in range(args.axes)]
            ax_rho = np.random.default_rng(8).uniform(0, 100, size=len(axes))
            chains = [ax.chain(r, sources) for ax, r in zip(axes, ax_rho, strict=True)]
            composes = [
                am.Compose(
                    [
                        factory[f](s.strength)
                        for f, s in zip(c.families, c.steps, strict=True)
                        if f in factory
                    ]
                )
                for c in chains
            ]

            def run_axes_pamflow(axes=axes, ax_rho=ax_rho) -> None:
                for a, (ax, r) in enumerate(zip(axes, ax_rho, strict=True)):
                    ax.apply(clips[a % len(clips)], sr, r, sources)

            def run_axes_am(composes=composes) -> None:
                for a, comp in enumerate(composes):
                    comp(samples=clips[a % len(clips)], sample_rate=sr)

            secs = len(axes) * 2.5
            ours = secs / _time(run_axes_pamflow, 0.1)
            theirs = secs / _time(run_axes_am, 0.1)
            print(
                f"\n{label} ({len(axes)} axes): pamflow {ours:.1f} xRT, audiomentations "
                f"{theirs:.1f} xRT, ratio {ours / theirs:.2f}"
            )


if __name__ == "__main__":
    main()
