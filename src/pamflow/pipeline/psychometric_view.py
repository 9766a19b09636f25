"""The psychometric view of a JND dataset's report: P("different") against strength, per
perturbation family, with the fitted psychometric curve and the JND.

Which rows count for a family. A JND row perturbs its reference along an *axis* (its
``axis`` column) that holds one family or several, each running at its own strength
``ρ × weight`` (the steps of ``params["chain"]``). A family's panel shows two series:

- **alone**: the rows whose axis is that family only. Their answers are about that family
  alone, at strength ``ρ`` (a lone family has weight 1). This is the family's JND.
- **on combined axes**: the rows whose axis holds that family and others, at the family's
  own strength (its chain step). Their answers also hear the other families, so this
  curve sits to the left of the one alone: its JND is a lower bound, shown so that every
  family present gets a curve, and used as the family's JND only when no row has it alone.

Each series is binned by strength (bins of :data:`BIN_WIDTH`, points at the mean strength
of their rows, 95 % Wilson intervals, the count of rows written by each point) and fitted
with :func:`pamflow.datasets.psychometric.fit` on all its (strength, answer) pairs (at most
:data:`MAX_FIT_ROWS`, a seeded random subset beyond): the Gaussian-CDF model with the
sampler's 5 % lapse, a MAP estimate with its weak default prior on its default grid (μ in
[0, 100] by 0.25). The JND is the fitted μ, the strength where P("different") = 0.5.
Rows without a label or a strength (unlabelled or imported pairs) are left out.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np

from pamflow import storage
from pamflow.datasets import psychometric
from pamflow.perturbations import get as get_family
from pamflow.pipeline.page import escape, figure, mpl_text, svg

BIN_WIDTH = 10.0
#: answers one fit uses at most (a fit costs about 3 ms per 10 answers)
MAX_FIT_ROWS = 5000
#: colours of the two series (distinct from the report's bar and histogram colours)
ALONE_RGB, COMBINED_RGB = "#c44e52", "#8172b2"
_Z95 = 1.959964


@dataclasses.dataclass(frozen=True)
class Series:
    """The (strength, answer) pairs of one family's rows (answer 1 = "different"), and the
    fit of :func:`pamflow.datasets.psychometric.fit` on them (None without rows)."""

    strengths: np.ndarray
    answers: np.ndarray
    fit: psychometric.Fit | None
    fitted_rows: int

    @property
    def rows(self) -> int:
        return int(self.strengths.size)

    @property
    def one_sided(self) -> bool:
        """All answers "same" or all "different": the JND is the prior's guess."""
        return self.rows > 0 and int(self.answers.sum()) in (0, self.rows)

    def bins(self) -> list[Bin]:
        """The non-empty bins of :data:`BIN_WIDTH` over [0, 100] (100 in the last one)."""
        edges = np.arange(0.0, 100.0 + BIN_WIDTH, BIN_WIDTH)
        idx = np.clip(np.digitize(self.strengths, edges) - 1, 0, len(edges) - 2)
        out = []
        for b in range(len(edges) - 1):
            m = idx == b
            n = int(m.sum())
            if n:
                k = int(self.answers[m].sum())
                mean = float(self.strengths[m].mean())
                out.append(Bin(float(edges[b]), float(edges[b + 1]), mean, n, k, *_wilson(k, n)))
        return out


@dataclasses.dataclass(frozen=True)
class Bin:
    """Rows with strength in [lo, hi): their mean strength, count, "different" answers and
    the 95 % Wilson interval of P("different")."""

    lo: float
    hi: float
    mean: float
    rows: int
    different: int
    low: float
    high: float

    @property
    def p(self) -> float:
        return self.different / self.rows


@dataclasses.dataclass(frozen=True)
class FamilyCurves:
    family: str
    alone: Series
    combined: Series

    @property
    def jnd(self) -> float | None:
        """The family's JND: from its rows alone, else from the combined axes."""
        best = self.alone if self.alone.fit else self.combined
        return best.fit.mu if best.fit else None


def family_curves(ds: storage.Dataset) -> list[FamilyCurves]:
    """One :class:`FamilyCurves` per family present on a labelled row, sorted by name."""
    names = ds.schema.names
    if not {"strength", "axis", "label"} <= set(names):
        return []
    cols = ["strength", "axis", "label"] + (["params"] if "params" in names else [])
    table = ds.to_table(cols)
    labels = table.column("label").to_pylist()
    return curves_from_rows(
        table.column("strength").to_pylist(),
        table.column("axis").to_pylist(),
        labels,
        table.column("params").to_pylist() if "params" in cols else [None] * len(labels),
    )


def curves_from_rows(
    strength: list[Any], axes: list[Any], labels: list[Any], params: list[Any]
) -> list[FamilyCurves]:
    """:func:`family_curves` of rows given as columns (``params`` as JSON text or dicts):
    the listening-test admin page draws its answers with it before any dataset exists."""
    alone: dict[str, list[tuple[float, int]]] = {}
    combined: dict[str, list[tuple[float, int]]] = {}
    for rho, axis, label, p in zip(strength, axes, labels, params, strict=True):
        if label is None or rho is None or not axis or not np.isfinite(rho):
            continue
        if len(axis) == 1:
            alone.setdefault(axis[0], []).append((float(rho), int(label)))
            continue
        steps = _step_strengths(p)
        for fam in axis:
            if fam in steps:
                combined.setdefault(fam, []).append((steps[fam], int(label)))
    return [
        FamilyCurves(f, _series(alone.get(f, [])), _series(combined.get(f, [])))
        for f in sorted(set(alone) | set(combined))
    ]


def _step_strengths(params: Any) -> dict[str, float]:
    """Family -> its strength in the row's chain (``params["chain"]``), or ``{}``."""
    if isinstance(params, str):
        try:
            params = json.loads(params)
        except ValueError:
            return {}
    chain = params.get("chain") if isinstance(params, dict) else None
    if not isinstance(chain, list):
        return {}
    return {
        s["family"]: float(s["strength"])
        for s in chain
        if isinstance(s, dict) and isinstance(s.get("strength"), int | float)
    }


def _series(pairs: list[tuple[float, int]]) -> Series:
    rho = np.asarray([p[0] for p in pairs], dtype=np.float64)
    h = np.asarray([p[1] for p in pairs], dtype=np.int64)
    if not pairs:
        return Series(rho, h, None, 0)
    use = np.arange(len(pairs))
    if len(pairs) > MAX_FIT_ROWS:
        use = np.sort(np.random.default_rng(0).choice(len(pairs), MAX_FIT_ROWS, replace=False))
    est = psychometric.fit([(float(rho[i]), int(h[i])) for i in use])
    return Series(rho, h, est, int(use.size))


def _wilson(k: int, n: int) -> tuple[float, float]:
    p, z2 = k / n, _Z95**2
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = _Z95 * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return float(max(centre - half, 0.0)), float(min(centre + half, 1.0))


# -- the section ---------------------------------------------------------------------------
def psychometric_section(ds: storage.Dataset) -> str:
    """The section's body for a JND dataset ('' for other recipes)."""
    if ds.recipe != "jnd":
        return ""
    curves = family_curves(ds)
    intro = (
        '<p>P("different") against strength, per perturbation family: the answers binned by '
        f"strength (bins of {BIN_WIDTH:g}; each point at the mean strength of its rows, with "
        "its 95 % Wilson interval and, written beside it, its count of rows), the psychometric curve fitted by "
        "<code>pamflow.datasets.psychometric.fit</code> (Gaussian CDF with a "
        f"{100 * psychometric.LAPSE:g} % lapse rate, MAP with the sampler's weak prior) and "
        'the JND, the strength where P("different") = 0.5. '
        f'<b style="color:{ALONE_RGB}">Alone</b>: rows whose axis is that family only, at '
        f'strength ρ; the family\'s JND. <b style="color:{COMBINED_RGB}">On combined axes</b>: '
        "rows whose axis holds it and other families, at the family's own strength "
        "(ρ × its axis weight); the other families are heard too, so that JND is a lower "
        "bound, used as the family's JND only when no row has it alone. Rows without a "
        "label or a strength are left out.</p>"
    )
    if not curves:
        return intro + "<p>No labelled rows with a strength: nothing to fit.</p>"
    return (
        intro
        + _jnd_table(curves)
        + '<div class="plots">'
        + "".join(family_panel(c) for c in curves)
        + "</div>"
    )


def _jnd_table(curves: list[FamilyCurves]) -> str:
    head = (
        "<tr><th>family</th><th>JND ρ</th><th>at the JND</th><th>rows alone</th>"
        "<th>JND alone (σ)</th><th>rows on combined axes</th>"
        "<th>JND on combined axes (σ)</th></tr>"
    )
    body = "".join(
        f'<tr data-family="{escape(c.family)}"><td>{escape(c.family)}</td>'
        f"<td>{'none' if c.jnd is None else f'{c.jnd:.2f}'}</td>"
        f"<td>{escape(_parameter(c.family, c.jnd, long=True))}</td>"
        f"<td>{c.alone.rows}</td><td>{escape(_fit_text(c.alone))}</td>"
        f"<td>{c.combined.rows}</td><td>{escape(_fit_text(c.combined))}</td></tr>"
        for c in curves
    )
    return f'<table class="jnd">{head}{body}</table>'


def _parameter(family: str, rho: float | None, *, long: bool = False) -> str:
    """The family's parameter at strength ``rho``: ``31.6 dB`` (``long``: with its name,
    ``SNR against active speech 31.6 dB``); '' for a family pamflow does not know."""
    if rho is None:
        return ""
    try:
        fam = get_family(family)
    except ValueError:  # not a registered family (imported rows)
        return ""
    text = f"{fam.value(rho):.4g} {fam.unit}".strip()
    return f"{fam.parameter} {text}" if long and fam.parameter else text


def _fit_text(s: Series) -> str:
    if s.fit is None:
        return "no rows"
    text = f"{s.fit.mu:.2f} ({s.fit.sigma:.3g})"
    if s.fitted_rows < s.rows:
        text += f", fit on {s.fitted_rows} random rows"
    if s.one_sided:
        text += ", answers all one way: the prior's guess"
    elif s.fit.mu <= psychometric.STRENGTH_MIN or s.fit.mu >= psychometric.STRENGTH_MAX:
        text += ", at the edge of the range"
    return text


def family_panel(c: FamilyCurves) -> str:
    """One family's figure: binned answers, fitted curves and JNDs of both series."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.0, 3.0))
    ax = fig.add_subplot()
    x = np.linspace(0.0, 100.0, 201)
    ax.axhline(0.5, color="#999", lw=0.8, ls=":")
    for s, rgb, name, ls, marker in (
        (c.alone, ALONE_RGB, "alone", "-", "o"),
        (c.combined, COMBINED_RGB, "on combined axes", "--", "s"),
    ):
        if s.fit is None:
            continue
        bins = s.bins()
        err = np.asarray([[b.p - b.low for b in bins], [b.high - b.p for b in bins]])
        ax.errorbar(
            [b.mean for b in bins],
            [b.p for b in bins],
            yerr=err,
            fmt=marker,
            color=rgb,
            ms=5,
            capsize=2,
            lw=1,
            mfc=rgb if marker == "o" else "white",
            label=f"{name}: {s.rows} rows, JND {s.fit.mu:.1f}",
        )
        for b in bins:
            ax.annotate(
                str(b.rows),
                (b.mean, b.p),
                xytext=(4, 4 if marker == "o" else -9),
                textcoords="offset points",
                fontsize=6.5,
                color=rgb,
            )
        ax.plot(x, psychometric.psychometric(x, s.fit.mu, s.fit.sigma), ls, color=rgb, lw=1.5)
        ax.axvline(s.fit.mu, color=rgb, lw=1, ls=ls, alpha=0.8)
        ax.annotate(
            f"JND {s.fit.mu:.1f}",
            (s.fit.mu, 0.5),
            xytext=(3, -12 if marker == "o" else 8),
            textcoords="offset points",
            fontsize=7,
            color=rgb,
            fontweight="bold",
        )
    ax.set_xlim(0, 100)
    ax.set_ylim(-0.04, 1.04)
    ax.set_yticks(
        [0, 0.25, 0.5, 0.75, 1], ["0 (all same)", "0.25", "0.5", "0.75", "1 (all different)"]
    )
    ax.tick_params(labelsize=7)
    ax.set_xlabel(mpl_text(f"strength ρ of {c.family} (0 mildest … 100 strongest)"), fontsize=8)
    ax.set_ylabel('P("different")', fontsize=8)
    at = _parameter(c.family, c.jnd)
    jnd = "no JND" if c.jnd is None else f"JND ρ = {c.jnd:.2f}" + (f" ({at})" if at else "")
    ax.set_title(mpl_text(f"{c.family}: {jnd}"), fontsize=9)
    ax.legend(fontsize=6.5, loc="best", frameon=True, framealpha=0.8)
    counts = f"{c.alone.rows} rows alone, {c.combined.rows} on combined axes"
    return figure(
        svg(fig),
        f"{c.family}: {counts}",
        c.family,
        cls="plot psychometric",
        family=c.family,
        jnd=_exact(c.jnd),
        jnd_alone=_exact(c.alone.fit.mu if c.alone.fit else None),
        jnd_combined=_exact(c.combined.fit.mu if c.combined.fit else None),
        rows_alone=c.alone.rows,
        rows_combined=c.combined.rows,
        bins_alone=_bins_text(c.alone),
        bins_combined=_bins_text(c.combined),
    )


def _bins_text(s: Series) -> str:
    """``0-10:2/5 10-20:...``: per non-empty bin, its "different" answers and its rows."""
    return " ".join(f"{b.lo:g}-{b.hi:g}:{b.different}/{b.rows}" for b in s.bins())


def _exact(v: float | None) -> str | None:
    return None if v is None else repr(float(v))


__all__ = [
    "Bin",
    "FamilyCurves",
    "Series",
    "curves_from_rows",
    "family_curves",
    "family_panel",
    "psychometric_section",
]
