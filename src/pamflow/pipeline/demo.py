"""The main job on the embedded demo corpus (``make demo`` / ``pamflow demo``).

``pamflow demo --out OUT`` runs :func:`run_demo` (the demo corpus, the perturbation
gallery: ``OUT/gallery/*.wav`` and its page ``OUT/gallery.html``), builds ``OUT/jnd`` and
inspects it, then :func:`write_demo_report` writes each dataset's report
(``OUT/reports/NAME.html``) and ``OUT/report.html``, which links them and the gallery, and
gives the five lines the command ends with: what was made, where the report is, what to
try next.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
from rich.console import Console
from rich.table import Table

from pamflow.pipeline.demo_pages import DatasetEntry, GalleryClip, gallery_page, index_page

#: the strengths of the gallery: audible but mild, the middle, and strong
GALLERY_STRENGTHS = (20, 50, 90)
GALLERY_PAGE = "gallery.html"
REPORT_PAGE = "report.html"


def perturbation_gallery(
    out: Path,
    console: Console,
    sample_rate: int = 16000,
    strengths: tuple[int, ...] = GALLERY_STRENGTHS,
) -> list[GalleryClip]:
    """Every family at ``strengths`` on one demo utterance, written as WAV files in ``out``
    (``clean.wav``, ``FAMILY_020.wav``...), with the measured SI-SDR and log-spectral
    distance of each; and the page ``out.parent / "gallery.html"`` that plays them."""
    from pamflow import perturbations
    from pamflow.corpus.sources import default_sources
    from pamflow.measures import log_spectral_distance, si_sdr

    sources = default_sources()
    source = sources.ids("speech")[0]
    clip = sources.load(source, sample_rate)
    out.mkdir(parents=True, exist_ok=True)
    sf.write(out / "clean.wav", clip, sample_rate, subtype="PCM_24")
    table = Table(title=f"perturbation gallery ({out})")
    for col in ("family", "rho", "value", "SI-SDR dB", "LSD dB"):
        table.add_column(col, justify="right" if col != "family" else "left")
    clips = []
    for fam in perturbations.families():
        for rho in strengths:
            params = fam.sample(np.random.default_rng(0), rho, sources)
            y = fam.apply(clip, sample_rate, params, sources)
            name = f"{fam.name}_{rho:03d}.wav"
            sf.write(out / name, y, sample_rate, subtype="PCM_24")
            value = f"{fam.value(rho):.4g} {fam.unit}".strip()
            sdr, lsd = si_sdr(clip, y), log_spectral_distance(clip, y, sample_rate)
            table.add_row(fam.name, str(rho), value, f"{sdr:.1f}", f"{lsd:.2f}")
            clips.append(
                GalleryClip(
                    fam.name,
                    fam.category,
                    fam.parameter,
                    rho,
                    f"{out.name}/{name}",
                    value,
                    sdr,
                    lsd,
                )
            )
    console.print(table)
    page = gallery_page(clips, f"{out.name}/clean.wav", source, sample_rate)
    (out.parent / GALLERY_PAGE).write_text(page, encoding="utf-8")
    return clips


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


def write_demo_report(out: Path) -> list[str]:
    """Write the report of every dataset in ``out`` (its folders holding a ``dataset.json``)
    to ``out/reports/NAME.html`` and ``out/report.html``, which links them and the gallery
    page; return the demo's summary: five lines (what was made, where the report is, the
    commands to try next)."""
    from pamflow import perturbations, storage
    from pamflow.corpus import ensure_demo_corpus
    from pamflow.pipeline.inspect import describe
    from pamflow.pipeline.report import write_report

    (out / "reports").mkdir(parents=True, exist_ok=True)
    entries = []
    for folder in sorted(p for p in out.iterdir() if (p / "dataset.json").is_file()):
        info = describe(str(folder))
        report = f"reports/{folder.name}.html"
        write_report(str(folder), str(out / report), info)
        ds = storage.Dataset.open(str(folder))
        problems = info.get("problems") or []
        entries.append(
            DatasetEntry(
                name=folder.name,
                recipe=ds.recipe,
                path=str(folder),
                rows=ds.num_rows,
                shards=len(ds.shards),
                bytes=int(info["bytes"]),
                report=report,
                checksums=f"{len(problems)} problem(s)" if problems else "all verified",
            )
        )
    corpus = ensure_demo_corpus()
    families = len(perturbations.families())
    strengths = ", ".join(map(str, GALLERY_STRENGTHS))
    has_gallery = (out / GALLERY_PAGE).is_file()
    gallery_note = f"{families} families at strengths {strengths} on one demo clip"
    # DPAM trains on JND pairs: point the next steps at the demo's JND dataset
    first = next((e.path for e in entries if e.recipe == "jnd"), str(out / "jnd"))
    commands = [
        (
            f"pamflow inspect {first}",
            "rows, label balance, checksums; --report FILE writes the page",
        ),
        (
            f"pamflow train dpam --data {first} --out {out / 'runs' / 'dpam'} --epochs 1",
            "a first DPAM metric on these pairs (a minute or two on a CPU)",
        ),
        ("pamflow perturbations", "the perturbation families and their strength mappings"),
    ]
    page = index_page(
        entries, GALLERY_PAGE if has_gallery else None, gallery_note, commands, str(corpus)
    )
    (out / REPORT_PAGE).write_text(page, encoding="utf-8")
    made = "; ".join(
        f"{e.name} ({_n(e.rows, 'row')}, {_n(e.shards, 'shard')}) in {e.path}" for e in entries
    )
    return [
        f"made: {_n(len(entries), 'dataset')}: {made or 'none'}",
        f"made: a perturbation gallery, {gallery_note}, in {out / 'gallery'}"
        if has_gallery
        else "made: no perturbation gallery",
        f"report: {out / REPORT_PAGE} (open it in a browser: dataset reports and the gallery)",
        f"next: {commands[0][0]}   # {commands[0][1]}",
        f"next: {commands[1][0]}   # {commands[1][1]}",
    ]


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
