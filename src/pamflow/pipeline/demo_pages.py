"""The demo's pages: ``OUT/report.html`` (what the demo made, links to each dataset's report
and to the gallery, the commands to try next) and ``OUT/gallery.html`` (a player for every
perturbation family at a few strengths on one demo clip).

The players of the gallery play the WAV files of ``OUT/gallery/`` by relative address, so
the page stays small and plays wherever the folder goes (opened as a file or served).
Both pages carry the report's style and player-checking script (:mod:`~.page`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from urllib.parse import quote

from pamflow.pipeline.page import CSP_LOCAL_MEDIA, document, escape, section


@dataclasses.dataclass(frozen=True)
class GalleryClip:
    """One WAV of the gallery: ``family`` at ``strength``, ``file`` relative to the page."""

    family: str
    category: str
    parameter: str  # what the strength sets ("SNR against active speech")
    strength: int
    file: str
    value: str  # the family's parameter at that strength, with its unit
    si_sdr_db: float
    lsd_db: float


@dataclasses.dataclass(frozen=True)
class DatasetEntry:
    """One dataset the demo made: ``report`` relative to ``OUT/report.html``."""

    name: str
    recipe: str
    path: str
    rows: int
    shards: int
    bytes: int
    report: str
    checksums: str  # "verified" or the problems, as text


def gallery_page(clips: Sequence[GalleryClip], clean: str, source: str, sample_rate: int) -> str:
    """The gallery: one row per family, one player per strength, the clean clip first."""
    strengths = sorted({c.strength for c in clips})
    families: dict[str, list[GalleryClip]] = {}
    for c in clips:
        families.setdefault(c.family, []).append(c)
    head = "<tr><th>family</th>" + "".join(f"<th>ρ = {s}</th>" for s in strengths) + "</tr>"
    rows = []
    for fam, fam_clips in families.items():
        by_strength = {c.strength: c for c in fam_clips}
        cells = "".join(
            f"<td>{_player(by_strength[s])}</td>" if s in by_strength else "<td></td>"
            for s in strengths
        )
        what = " · ".join(x for x in (fam_clips[0].category, fam_clips[0].parameter) if x)
        rows.append(
            f'<tr data-family="{escape(fam)}"><th>{escape(fam)}<br>'
            f"<small>{escape(what)}</small></th>{cells}</tr>"
        )
    intro = (
        f"<p>Every perturbation family at strengths {', '.join(map(str, strengths))} "
        f"(0 mildest … 100 strongest) on one demo clip, <code>{escape(source)}</code> "
        f"({sample_rate} Hz). Under each player: the family's parameter at that strength, "
        "and how far the result is from the clean clip (SI-SDR and log-spectral distance, "
        "in dB). The files are in <code>gallery/</code> beside this page.</p>"
        f'<figure class="player gallery-clean" data-family="clean">'
        f"<figcaption><b>clean</b>: the clip every row starts from</figcaption>"
        f'<audio controls preload="metadata" src="{escape(quote(clean))}"></audio></figure>'
    )
    table = f'<table class="gallery">{head}{"".join(rows)}</table>'
    body = [
        '<header><h1>Perturbation gallery</h1><p><a href="report.html">back to the demo '
        "report</a></p></header>",
        section("gallery", f"{len(families)} families x {len(strengths)} strengths", intro + table),
    ]
    return document("pamflow demo: perturbation gallery", body, csp=CSP_LOCAL_MEDIA)


def _player(c: GalleryClip) -> str:
    note = f"{c.value}; SI-SDR {_db(c.si_sdr_db)}, LSD {_db(c.lsd_db)}"
    return (
        f'<figure class="player" data-family="{escape(c.family)}" data-strength="{c.strength}">'
        f'<audio controls preload="metadata" src="{escape(quote(c.file))}"></audio>'
        f"<figcaption>{escape(note)}</figcaption></figure>"
    )


def _db(v: float) -> str:
    return f"{v:.1f} dB" if math.isfinite(v) else ("∞" if v > 0 else "−∞")


def _jnd_link(d: DatasetEntry) -> str:
    if d.recipe != "jnd":
        return ""
    return f' (<a href="{escape(quote(d.report))}#psychometric">JND per family</a>)'


def index_page(
    datasets: Sequence[DatasetEntry],
    gallery: str | None,
    gallery_note: str,
    commands: Sequence[tuple[str, str]],
    corpus: str,
) -> str:
    """``OUT/report.html``: the datasets (each linking its report), the gallery, next steps."""
    head = (
        "<tr><th>dataset</th><th>recipe</th><th>rows</th><th>shards</th><th>size</th>"
        "<th>folder</th><th>checksums</th></tr>"
    )
    rows = "".join(
        f'<tr data-dataset="{escape(d.name)}"><td><a href="{escape(quote(d.report))}">'
        f"{escape(d.name)}</a>{_jnd_link(d)}</td><td>{escape(d.recipe)}</td><td>{d.rows}</td>"
        f"<td>{d.shards}</td><td>{d.bytes / 1e6:.1f} MB</td><td><code>{escape(d.path)}</code>"
        f"</td><td>{escape(d.checksums)}</td></tr>"
        for d in datasets
    )
    datasets_html = (
        "<p>Each dataset's report: spec, label balance, psychometric curves per family (JND "
        "datasets), distributions and example rows with players and spectrograms.</p>"
        f'<table class="datasets">{head}{rows}</table>'
        if datasets
        else "<p>No dataset was built.</p>"
    )
    gallery_html = (
        f'<p><a href="{escape(quote(gallery))}">Perturbation gallery</a>: {escape(gallery_note)}.</p>'
        if gallery
        else "<p>No gallery was written.</p>"
    )
    steps = "".join(
        f'<li><code class="cmd">{escape(cmd)}</code>: {escape(why)}</li>' for cmd, why in commands
    )
    body = [
        f"<header><h1>pamflow demo</h1><p>On the embedded demo corpus "
        f"(<code>{escape(corpus)}</code>).</p></header>",
        section("datasets", "Datasets", datasets_html),
        section("gallery", "Perturbation gallery", gallery_html),
        section("next", "Try next", f'<ul class="links">{steps}</ul>'),
    ]
    return document("pamflow demo", body, csp=CSP_LOCAL_MEDIA)


__all__ = ["DatasetEntry", "GalleryClip", "gallery_page", "index_page"]
