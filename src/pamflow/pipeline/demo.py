"""The main job on the embedded demo corpus (``make demo`` / ``pamflow demo``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
from rich.console import Console
from rich.table import Table


def perturbation_gallery(out: Path, console: Console, sample_rate: int = 16000) -> None:
    """Every family at strengths 0, 50 and 100 on one demo utterance, written as WAV
    files, with the measured SI-SDR and log-spectral distance of each."""
    from pamflow import perturbations
    from pamflow.corpus.sources import default_sources
    from pamflow.measures import log_spectral_distance, si_sdr

    sources = default_sources()
    clip = sources.load(sources.ids("speech")[0], sample_rate)
    out.mkdir(parents=True, exist_ok=True)
    sf.write(out / "clean.wav", clip, sample_rate, subtype="PCM_24")
    table = Table(title=f"perturbation gallery ({out})")
    for col in ("family", "rho", "value", "SI-SDR dB", "LSD dB"):
        table.add_column(col, justify="right" if col != "family" else "left")
    for fam in perturbations.families():
        for rho in (0, 50, 100):
            params = fam.sample(np.random.default_rng(0), rho, sources)
            y = fam.apply(clip, sample_rate, params, sources)
            sf.write(out / f"{fam.name}_{rho:03d}.wav", y, sample_rate, subtype="PCM_24")
            table.add_row(
                fam.name,
                str(rho),
                f"{fam.value(rho):.4g} {fam.unit}",
                f"{si_sdr(clip, y):.1f}",
                f"{log_spectral_distance(clip, y, sample_rate):.2f}",
            )
    console.print(table)


def run_demo(out: Path, console: Console) -> int:
    from pamflow.corpus import default_sources, ensure_demo_corpus

    root = ensure_demo_corpus()
    sources = default_sources()
    console.print(
        f"demo corpus: {root} ({len(sources)} recordings: "
        + ", ".join(
            f"{k} {len(sources.ids(k))}" for k in ("speech", "noise", "rir", "music", "instrument")
        )
        + ")"
    )
    perturbation_gallery(out / "gallery", console)
    return 0
