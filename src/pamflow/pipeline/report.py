"""`pamflow inspect DATASET --report report.html`: one self-contained HTML page.

The page has no external resources (a Content-Security-Policy forbids any): charts are
inline SVG made with matplotlib (no pyplot, so no global backend state), spectrograms are
base64 JPEG (a sixth of the size of PNG for these noisy images), and the players hold
base64 16-bit PCM WAV (``data:audio/wav;base64,...``), the format every browser plays.
It shows:

- a header: recipe, path, rows, shards, size, sample rate, created_at, pamflow version,
  checksum status (from :func:`pamflow.pipeline.inspect.describe`'s ``problems``);
- the spec and the recipe summary as tables;
- a bar chart per categorical column of ``info["counts"]`` (label balance...), the values
  of a label column named where the recipe's 0/1 mean something (:data:`LABEL_NAMES`:
  "different"/"same" for JND pairs);
- for JND datasets, the psychometric view (:mod:`pamflow.pipeline.psychometric_view`):
  P("different") against strength per family, binned, with the fitted curve and the JND;
- a histogram per numeric column of ``info["histograms"]`` (strength, SNR, bitrate...);
- ``examples`` rows picked with ``numpy.random.default_rng(seed)``, spread evenly over the
  values of the first label-like column present (``label``, ``pair_kind``...): each with
  its metadata, its ``params`` as key/value tables and, per audio column, a player (the
  first ``max_seconds`` of the clip, samples clipped to [-1, 1]) and a spectrogram with
  time (s) and frequency (kHz) axes (shared dB scale per row, so the clips of one row
  compare directly).

An inline script writes ``data-duration`` (seconds, as the browser decoded it) and
``data-ready="1"`` on each ``<audio>`` once its metadata loads, or ``data-error`` if it
cannot, so a headless browser can check that the players are real.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import soundfile as sf
from scipy import signal

import pamflow
from pamflow import storage
from pamflow.datasets import get_recipe
from pamflow.pipeline.page import clip_text as _clip_text
from pamflow.pipeline.page import document, params_table
from pamflow.pipeline.page import escape as _e
from pamflow.pipeline.page import figure as _figure
from pamflow.pipeline.page import finite as _finite
from pamflow.pipeline.page import fmt as _fmt
from pamflow.pipeline.page import kv_table as _kv_table
from pamflow.pipeline.page import meta_list as _meta_list
from pamflow.pipeline.page import mpl_text as _mpl
from pamflow.pipeline.page import section as _section
from pamflow.pipeline.page import svg as _svg
from pamflow.pipeline.psychometric_view import psychometric_section
from pamflow.storage.files import atomic_write_bytes, resolve

MAX_BARS = 30  # categories shown per bar chart (the most frequent)
SPECTROGRAM_RANGE_DB = 80.0
#: what the values of a 0/1 label column mean, by (recipe, column): charts and examples
#: show these names instead of the numbers
LABEL_NAMES: dict[tuple[str, str], dict[str, str]] = {
    ("jnd", "label"): {"0": "same", "1": "different"},
    ("triplet", "label"): {"0": "A closer", "1": "B closer"},
    ("nmr", "preference"): {"0": "a cleaner", "1": "b cleaner"},
}


def label_names(recipe: str, column: str) -> dict[str, str]:
    """``{"0": name, "1": name}`` for a label column whose values mean something, else ``{}``."""
    return LABEL_NAMES.get((recipe, column), {})


def write_report(
    path: str,
    out_html: str,
    info: Mapping[str, Any],
    *,
    examples: int = 6,
    seed: int = 0,
    max_seconds: float = 5.0,
) -> None:
    """Write the report of the dataset at ``path`` to ``out_html`` (local path or fsspec
    URL), atomically (temporary name, then rename). ``info`` is what
    :func:`pamflow.pipeline.inspect.describe` returns; missing keys are read from the dataset."""
    page = render_report(path, info, examples=examples, seed=seed, max_seconds=max_seconds)
    fs, out = resolve(out_html)
    parent = out.rpartition("/")[0]
    if parent and not fs.exists(parent):
        raise FileNotFoundError(
            f"{out_html}: cannot write the report: folder {parent} does not exist"
        )
    atomic_write_bytes(fs, out, page.encode("utf-8"))


def render_report(
    path: str,
    info: Mapping[str, Any],
    *,
    examples: int = 6,
    seed: int = 0,
    max_seconds: float = 5.0,
) -> str:
    """The report page as a string (see the module docstring for what it holds)."""
    if examples < 0:
        raise ValueError(f"examples must be >= 0, got {examples}")
    if not max_seconds > 0:
        raise ValueError(f"max_seconds must be > 0, got {max_seconds}")
    ds = storage.Dataset.open(path)
    summary = dict(info.get("summary") or {})
    title = f"pamflow report: {ds.recipe} dataset {path}"
    parts = [
        _header(path, ds, info),
        _section("spec", "Spec", _kv_table(info.get("spec", ds.spec) or {})),
    ]
    rest = {k: v for k, v in summary.items() if k not in ("recipe", "path", "rows", "shards")}
    if rest:
        parts.append(_section("summary", "Summary", _kv_table(rest)))
    counts = info.get("counts") or {}
    if counts:
        figs = []
        for col, c in counts.items():
            names = label_names(ds.recipe, col)
            key = ", ".join(f"{k} = {v}" for k, v in names.items())
            cap = f"{col}: {len(c)} value(s)" + (f" ({key})" if key else "")
            figs.append(
                _figure(_bar_svg(col, {names.get(k, k): n for k, n in c.items()}), cap, col)
            )
        parts.append(
            _section("balance", "Label balance", f'<div class="plots">{"".join(figs)}</div>')
        )
    psychometric = psychometric_section(ds)
    if psychometric:
        parts.append(_section("psychometric", "Psychometric curves", psychometric))
    hists = info.get("histograms") or {}
    if hists:
        titles = get_recipe(ds.recipe).histogram_columns
        figs = [
            _figure(_hist_svg(col, v, titles.get(col, col)), _hist_caption(v), col)
            for col, v in hists.items()
        ]
        parts.append(
            _section("distributions", "Distributions", f'<div class="plots">{"".join(figs)}</div>')
        )
    parts.append(_section("examples", "Examples", _examples(ds, examples, seed, max_seconds)))
    parts.append(
        f"<footer><p>Written by pamflow {_e(pamflow.__version__)}; examples picked with "
        f"seed {int(seed)}; players hold at most {max_seconds:g} s.</p></footer>"
    )
    return document(title, parts)


def pick_examples(
    labels: Sequence[Any] | None, num_rows: int, k: int, rng: np.random.Generator
) -> list[int]:
    """``k`` distinct row indices (sorted). With ``labels`` (one per row), rows are drawn
    round-robin from each label value in turn (values in random order), so every value
    gets ``k // n_values`` rows or more when it has them; without, uniformly at random."""
    k = min(k, num_rows)
    if k <= 0:
        return []
    if labels is None:
        return sorted(int(i) for i in rng.choice(num_rows, size=k, replace=False))
    groups: dict[str, list[int]] = {}
    for i, v in enumerate(labels):
        groups.setdefault(_fmt(v), []).append(i)
    names = sorted(groups)
    queues = [list(rng.permutation(groups[names[g]])) for g in rng.permutation(len(names))]
    picked: list[int] = []
    while len(picked) < k:
        for q in queues:
            if q and len(picked) < k:
                picked.append(int(q.pop()))
    return sorted(picked)


# -- sections ------------------------------------------------------------------------------
def _header(path: str, ds: storage.Dataset, info: Mapping[str, Any]) -> str:
    m = ds.info
    size = info.get("bytes", sum(s.bytes for s in ds.shards))
    sr = info.get("sample_rate", ds.sample_rate)
    audio_cols = info.get("audio_columns", list(ds.audio_columns))
    problems = info.get("problems")
    if problems is None:
        check = '<span class="bad">not verified</span> (inspect ran with --no-verify)'
    elif not problems:
        check = f'<span class="ok">all {len(ds.shards)} shard checksums verified</span>'
    else:
        items = "".join(f"<li>{_e(p)}</li>" for p in problems)
        check = f'<span class="bad">{len(problems)} problem(s)</span><ul>{items}</ul>'
    rows = [
        ("recipe", _e(ds.recipe)),
        ("path", _e(path)),
        ("rows", _e(ds.num_rows)),
        ("shards", _e(len(ds.shards))),
        ("size", _e(f"{size / 1e6:.2f} MB ({size} bytes)")),
        ("sample rate", _e(f"{sr} Hz")),
        ("audio format", _e(_fmt(m.get("audio_format")))),
        ("audio columns", _e(", ".join(audio_cols))),
        ("seed", _e(m.get("seed"))),
        ("created at", _e(m.get("created_at"))),
        ("pamflow version", _e(m.get("pamflow_version"))),
        ("schema version", _e(m.get("schema_version"))),
    ]
    if m.get("derived_from"):
        rows.append(("derived from", _e(_fmt(m["derived_from"]))))
    rows.append(("checksums", check))
    body = "".join(f"<tr><th>{_e(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return (
        f"<header><h1>{_e(ds.recipe)} dataset</h1>"
        f'<table class="kv" id="header">{body}</table></header>'
    )


def _examples(ds: storage.Dataset, k: int, seed: int, max_seconds: float) -> str:
    names = ds.schema.names
    label_col = next((c for c in get_recipe(ds.recipe).label_columns if c in names), None)
    labels = ds.to_table([label_col]).column(label_col).to_pylist() if label_col else None
    picked = pick_examples(labels, ds.num_rows, k, np.random.default_rng(seed))
    if not picked:
        return "<p>No examples (the dataset is empty or examples=0).</p>"
    spread = f" spread over the values of <code>{_e(label_col)}</code>" if label_col else ""
    intro = (
        f"<p>{len(picked)} of {ds.num_rows} rows, picked at random (seed {int(seed)}){spread}. "
        f"Spectrograms of one row share a dB scale ({SPECTROGRAM_RANGE_DB:g} dB range).</p>"
    )
    return intro + "".join(_example(ds, i, max_seconds) for i in picked)


def _example(ds: storage.Dataset, i: int, max_seconds: float) -> str:
    row = ds.row(i)
    audio_cols = [c for c in ds.audio_columns if c in row]
    meta = {c: v for c, v in row.items() if c not in audio_cols and c != "params"}
    for c, v in meta.items():
        name = label_names(ds.recipe, c).get(str(v))
        if name:
            meta[c] = f"{name} ({v})"
    # column -> (audio, the part shown, rate, its spectrogram in dB if long enough), or None
    clips: dict[str, tuple[np.ndarray, np.ndarray, int, np.ndarray | None] | None] = {}
    for c in audio_cols:
        if row[c] is None:
            clips[c] = None
            continue
        x, sr = ds.decode_audio(row[c])
        shown = x[: int(round(max_seconds * sr))]
        clips[c] = (x, shown, sr, _spectrogram_db(shown, sr) if shown.shape[0] >= 16 else None)
    peaks = [float(clip[3].max()) for clip in clips.values() if clip and clip[3] is not None]
    vmax = max(peaks, default=0.0)
    players = []
    for col, clip in clips.items():
        if clip is None:
            players.append(
                f'<figure class="player"><figcaption>{_e(col)}: no audio</figcaption></figure>'
            )
        else:
            players.append(_player(col, *clip, vmax))
    params = row.get("params")
    details = ""
    if params is not None:
        details = f"<details open><summary>params</summary>{params_table(params)}</details>"
    eid = row.get("example_id", f"row {i}")
    return (
        f'<article class="example" data-index="{i}"><h3>{_e(eid)}</h3>'
        f'{_meta_list(meta)}<div class="players">{"".join(players)}</div>'
        f"{details}</article>"
    )


def _player(
    col: str, x: np.ndarray, shown: np.ndarray, sr: int, db: np.ndarray | None, vmax: float
) -> str:
    total = x.shape[0] / sr
    peak = float(np.max(np.abs(shown))) if shown.size else 0.0
    rms = float(np.sqrt(np.mean(np.square(shown, dtype=np.float64)))) if shown.size else 0.0
    buf = io.BytesIO()
    sf.write(buf, np.clip(shown, -1.0, 1.0), sr, format="WAV", subtype="PCM_16")
    wav = base64.b64encode(buf.getvalue()).decode("ascii")
    note = (
        f"{total:.2f} s"
        if shown.shape[0] == x.shape[0]
        else f"first {shown.shape[0] / sr:.2f} of {total:.2f} s"
    )
    note += f", peak {_dbfs(peak)}, RMS {_dbfs(rms)}" + (
        ", clipped for playback" if peak > 1 else ""
    )
    img = ""
    if db is not None:
        jpeg = _spectrogram_jpeg(db, vmax, shown.shape[0] / sr, sr)
        img = (
            f'<img class="spectrogram" alt="{_e(f"spectrogram of {col}: time (s), frequency (kHz)")}" '
            f'src="data:image/jpeg;base64,{jpeg}">'
        )
    return (
        f'<figure class="player" data-column="{_e(col)}"><figcaption><b>{_e(col)}</b> '
        f"({_e(note)})</figcaption>"
        f'<audio controls preload="metadata" data-expected-duration="{shown.shape[0] / sr:.4f}" '
        f'src="data:audio/wav;base64,{wav}"></audio>{img}</figure>'
    )


# -- plots ---------------------------------------------------------------------------------
def _bar_svg(col: str, counts: Mapping[str, int]) -> str:
    from matplotlib.figure import Figure

    items = sorted(counts.items(), key=lambda kv: (-int(kv[1]), str(kv[0])))[:MAX_BARS]
    names = [_mpl(_clip_text(str(k), 32)) for k, _ in items][::-1]
    values = [int(v) for _, v in items][::-1]
    total = max(sum(int(v) for v in counts.values()), 1)
    fig = Figure(figsize=(5.0, 0.9 + 0.28 * len(items)))
    ax = fig.add_subplot()
    bars = ax.barh(range(len(values)), values, color="#4c72b0")
    ax.set_yticks(range(len(values)), names)
    ax.bar_label(bars, [f"{v} ({100 * v / total:.0f}%)" for v in values], padding=3, fontsize=8)
    ax.set_xlim(0, max(values, default=1) * 1.3 or 1)
    more = f" (top {MAX_BARS} of {len(counts)})" if len(counts) > MAX_BARS else ""
    ax.set_title(_mpl(f"{col}{more}"), fontsize=10)
    ax.set_xlabel("rows")
    return _svg(fig)


def _hist_svg(col: str, values: Sequence[Any], title: str) -> str:
    from matplotlib.figure import Figure

    v = _finite(values)
    fig = Figure(figsize=(5.0, 2.6))
    ax = fig.add_subplot()
    if v.size:
        bins = int(np.clip(np.ceil(np.sqrt(v.size)) + 1, 5, 40))
        ax.hist(v, bins=bins, color="#55a868", edgecolor="white")
    else:
        ax.text(0.5, 0.5, "no values", ha="center", va="center", transform=ax.transAxes)
    ax.set_title(_mpl(col), fontsize=10)
    ax.set_xlabel(_mpl(title))
    ax.set_ylabel("rows")
    return _svg(fig)


def _hist_caption(values: Sequence[Any]) -> str:
    v = _finite(values)
    missing = len(values) - v.size
    if not v.size:
        return f"no finite values ({missing} null or non-finite)"
    text = (
        f"n={v.size}, min {v.min():.4g}, median {np.median(v):.4g}, "
        f"mean {v.mean():.4g}, max {v.max():.4g}"
    )
    return text + (f"; {missing} null or non-finite" if missing else "")


def _spectrogram_db(x: np.ndarray, sr: int) -> np.ndarray:
    """Power spectrogram in dB (re full scale): Hann windows of ~32 ms, 75 % overlap."""
    nper = int(min(2 ** round(np.log2(0.032 * sr)), max(x.shape[0], 16)))
    _, _, s = signal.spectrogram(
        np.asarray(x, dtype=np.float64),
        fs=sr,
        window="hann",
        nperseg=nper,
        noverlap=nper * 3 // 4,
        scaling="spectrum",
    )
    return 10.0 * np.log10(s + 1e-12)


#: size of a spectrogram image, in pixels: the plot and its time and frequency axes
SPECTROGRAM_SIZE = (340, 150)


def _spectrogram_jpeg(db: np.ndarray, vmax: float, seconds: float, sr: int) -> str:
    """The spectrogram as a JPEG with axes: time in s, frequency in kHz (0 to Nyquist)."""
    from matplotlib.figure import Figure

    w, h = SPECTROGRAM_SIZE
    fig = Figure(figsize=(w / 100, h / 100), dpi=100)
    ax = fig.add_axes((0.13, 0.25, 0.85, 0.72))
    ax.imshow(
        db,
        origin="lower",
        aspect="auto",
        cmap="magma",
        interpolation="nearest",
        vmin=vmax - SPECTROGRAM_RANGE_DB,
        vmax=vmax,
        extent=(0.0, seconds, 0.0, sr / 2000),
    )
    ax.set_xlabel("time (s)", fontsize=7, labelpad=1)
    ax.set_ylabel("frequency (kHz)", fontsize=7, labelpad=1)
    ax.tick_params(labelsize=7, length=2, pad=1)
    buf = io.BytesIO()
    fig.savefig(buf, format="jpeg", dpi=100, pil_kwargs={"quality": 85})
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _dbfs(a: float) -> str:
    return f"{20 * np.log10(a):.1f} dBFS" if a > 0 else "silent"


__all__ = ["pick_examples", "render_report", "write_report"]
