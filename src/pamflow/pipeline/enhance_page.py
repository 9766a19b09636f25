"""The page of ``pamflow enhance --report``: what the scorer hears and what the adaptive EQ
did (Verma & Berger, paper 004, Figs. 1-3).

For each input kept (``views`` of :func:`pamflow.models.enhance_files.enhance_paths`): players
for the input and the output, and one image of six panels: the input's spectrogram, the
scorer's class-activation map over it (red: where it hears the cheap domain, blue: the
good one; paper Fig. 3), the gradient map ``|d score / d X|``, the mask's blocks before
smoothing and the mask itself (dB; paper Figs. 1-2), and the output's spectrogram. A table
sums up each initialisation. The page holds everything it shows (no fetches, the report's
CSP) and takes plain arrays, so it needs nothing from :mod:`pamflow.models`.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import soundfile as sf

from pamflow.pipeline.page import document, escape, fmt, kv_table, section

#: the dB range the spectrogram panels show below their peak
RANGE_DB = 90.0


def _wav(x: np.ndarray, sr: int) -> str:
    buf = io.BytesIO()
    sf.write(
        buf, np.clip(np.asarray(x, dtype=np.float32), -1.0, 1.0), sr, format="WAV", subtype="PCM_16"
    )
    return base64.b64encode(buf.getvalue()).decode("ascii")


def player(label: str, x: np.ndarray, sr: int) -> str:
    """A player (16-bit PCM WAV as a data URI) captioned ``label``."""
    seconds = len(x) / sr
    return (
        f'<figure class="player"><figcaption><b>{escape(label)}</b> ({seconds:.2f} s)</figcaption>'
        f'<audio controls preload="metadata" data-expected-duration="{seconds:.4f}" '
        f'src="data:audio/wav;base64,{_wav(x, sr)}"></audio></figure>'
    )


def panels(v: Mapping[str, Any]) -> str:
    """The six panels of one view as a base64 PNG."""
    from matplotlib.figure import Figure

    seconds = v["spec_in_db"].shape[1] * v["hop_s"]
    extent = (0.0, seconds, 0.0, v["sample_rate"] / 2000)
    top = float(np.max(v["spec_in_db"]))
    cam_lim = float(np.max(np.abs(v["cam_in"]))) or 1.0
    mask_lim = max(float(np.max(np.abs(v["mask_db"]))), float(np.max(np.abs(v["blocks_db"]))), 1.0)
    blocks_title = "mask blocks (dB)" if v["init"] == "block" else "mask: per cell, unsmoothed (dB)"
    shown = [
        ("input spectrogram (dB)", v["spec_in_db"], "magma", top - RANGE_DB, top),
        ("class activation (red: cheap)", v["cam_in"], "coolwarm", -cam_lim, cam_lim),
        ("|d score / d X|", v["grad_in"], "viridis", 0.0, float(np.max(v["grad_in"])) or 1.0),
        (blocks_title, v["blocks_db"], "coolwarm", -mask_lim, mask_lim),
        ("mask, smoothed (dB)", v["mask_db"], "coolwarm", -mask_lim, mask_lim),
        ("output spectrogram (dB)", v["spec_out_db"], "magma", top - RANGE_DB, top),
    ]
    fig = Figure(figsize=(12, 5.2), dpi=80)
    axes = fig.subplots(2, 3)
    for ax, (title, data, cmap, lo, hi) in zip(axes.flat, shown, strict=True):
        im = ax.imshow(
            data,
            origin="lower",
            aspect="auto",
            cmap=cmap,
            vmin=lo,
            vmax=hi,
            extent=extent,
            interpolation="nearest",
        )
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("time (s)", fontsize=8)
        ax.set_ylabel("kHz", fontsize=8)
        ax.tick_params(labelsize=7)
        fig.colorbar(im, ax=ax, fraction=0.05, pad=0.02).ax.tick_params(labelsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def article(v: Mapping[str, Any]) -> str:
    facts = {
        "initialisation": v["init"],
        "score before (0 = good, 1 = cheap)": v["score_before"],
        "score after (output analysed again)": v["score_after"],
        "score of X + M (what was optimised)": v["score_masked"],
        "log-spectral distance to the input (dB)": v["lsd_db"],
        "mask RMS (dB)": v["mask_rms_db"],
    }
    alt = f"spectrograms, saliency and mask of {v['name']}"
    return (
        f'<article class="example"><h3>{escape(v["name"])} ({escape(v["init"])})</h3>'
        f"{kv_table(facts)}"
        f'<div class="players">{player("input", v["audio_in"], v["sample_rate"])}'
        f"{player('output', v['audio_out'], v['sample_rate'])}</div>"
        f'<img class="panels" style="max-width:100%" alt="{escape(alt)}" '
        f'src="data:image/png;base64,{panels(v)}"></article>'
    )


def summary_table(summary: Mapping[str, Mapping[str, Any]]) -> str:
    keys = [
        ("n", "inputs"),
        ("score_before", "mean score before"),
        ("score_after", "mean score after"),
        ("score_fell", "share whose score fell"),
        ("crossed_to_good", "share crossed from cheap to good (0.5)"),
        ("improved_within_bound", "share improved (score fell by min drop) within the LSD bound"),
        ("min_drop", "min drop"),
        ("lsd_bound_db", "LSD bound (dB)"),
        ("lsd_db", "mean LSD (dB)"),
        ("mask_rms_db", "mean mask RMS (dB)"),
    ]
    head = "<tr><th>initialisation</th>" + "".join(f"<th>{escape(t)}</th>" for _, t in keys)
    rows = "".join(
        f"<tr><td>{escape(mode)}</td>" + "".join(f"<td>{escape(fmt(s[k]))}</td>" for k, _ in keys)
        for mode, s in summary.items()
    )
    return f'<table class="summary">{head}</tr>{rows}</table>'


def render_enhance_page(
    result: Mapping[str, Any], views: Sequence[Mapping[str, Any]], title: str = "pamflow enhance"
) -> str:
    """The whole page for ``enhance_paths``' ``result`` and its ``views``."""
    intro = (
        f"<h1>{escape(title)}</h1><p>Scorer-driven adaptive EQ of <code>"
        f"{escape(result['input'])}</code> into <code>{escape(result['output'])}</code>. "
        "Scores: 0 = the good domain, 1 = the cheap one.</p>"
    )
    body = [
        intro,
        section("summary", "Summary", summary_table(result["summary"])),
        section("config", "Settings", kv_table(result["config"])),
        section("inputs", "Inputs", "".join(article(v) for v in views) or "<p>none kept</p>"),
    ]
    return document(title, body)


__all__ = ["panels", "player", "render_enhance_page", "summary_table"]
