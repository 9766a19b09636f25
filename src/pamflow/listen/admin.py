"""The admin page: listeners, progress, exclusions, psychometric fits, 2AFC agreement.

One page (``/admin``) and one page per listener (``/admin/listeners/N``), behind the admin
token. For JND campaigns: the campaign-wide psychometric view of
:mod:`pamflow.pipeline.psychometric_view` (P("different") against strength per family,
fitted curve and JND) over the answers of the listeners kept, then per listener and
sequence the fitted JND, its spread and the listener's consistency, and a figure of their
answers with the fitted curves. For 2AFC campaigns: each triplet's votes, majority and
agreement, and each listener's agreement with the others.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from pamflow.datasets import psychometric
from pamflow.listen import stats
from pamflow.listen.campaign import Campaign
from pamflow.listen.db import shown_url
from pamflow.listen.pages import document
from pamflow.listen.plan import QUESTION, Planner
from pamflow.listen.session import pseudonym
from pamflow.pipeline import psychometric_view
from pamflow.pipeline.page import escape, figure, kv_table, mpl_text, svg

#: listeners whose figures the overview draws (the latest first); the rest: their page
FIGURES = 12
COLOURS = ("#c44e52", "#4c72b0", "#55a868", "#8172b2", "#ccb974", "#64b5cd")


def login_page(c: Campaign, wrong: bool = False) -> str:
    note = '<p class="bad">That is not the admin token.</p>' if wrong else ""
    inner = (
        f"<h1>{escape(c.title)}: admin</h1>{note}<div class=card>"
        '<form method="post" action="/admin/login"><label>Admin token '
        '<input type="password" name="token" id="token" autocomplete="off"></label> '
        '<button type="submit" id="login">Log in</button></form></div>'
    )
    return document(f"{c.title}: admin", f'<main data-phase="login">{inner}</main>', script=False)


def overview(
    c: Campaign, planner: Planner, listeners: list[Any], items: list[Any], cache: dict
) -> str:
    by_listener: dict[int, list[Any]] = {}
    for r in items:
        by_listener.setdefault(int(r.listener_id), []).append(r)
    ids = stats.kept(listeners, False)
    answered = sum(1 for r in items if r.phase == QUESTION and r.answer is not None)
    summary = {
        "campaign": c.name,
        "kind": c.kind,
        "database": shown_url(str(c.database)),
        "listeners": len(listeners),
        "finished": sum(1 for r in listeners if r.finished_at is not None),
        "excluded": sum(1 for r in listeners if r.excluded),
        "questions answered": answered,
        "audio cache": f"{cache['items']} items, {cache['bytes'] / 2**20:.1f} MiB, "
        f"{cache['hits']} hits, {cache['misses']} renders",
    }
    parts = [
        f"<h1>{escape(c.title)}: admin</h1>",
        kv_table(summary),
        '<form method="post" action="/admin/export"><button type="submit" id="export">'
        f"Export a {c.recipe} dataset</button> <span class=muted>of the listeners kept; "
        "<a href='/admin/answers.csv'>every answer as CSV</a></span></form>",
        "<h2>Listeners</h2>",
        _listener_table(c, planner, listeners, by_listener),
    ]
    if c.kind == "jnd":
        fits = stats.jnd_fits(items, stats.kept(listeners, True))
        parts += [
            '<section id="fits"><h2>Psychometric fits</h2>',
            "<p class=muted>Every family's answers (the listeners kept), then each listener's "
            "sequences: the fitted JND ρ, its spread σ and the share of answers on their side "
            "of it (consistency, DPAM 3.2).</p>",
            _campaign_curves(items, ids),
            _fit_table(fits, {int(r.id) for r in listeners if r.excluded}),
            '<div class="plots">',
            *(
                _listener_figure(lid, fits)
                for lid in sorted({k[0] for k in fits}, reverse=True)[:FIGURES]
            ),
            "</div></section>",
        ]
    else:
        parts += [
            '<section id="agreement"><h2>Agreement on 2AFC triplets</h2>',
            _agreement(items, ids),
            "</section>",
        ]
    body = f'<main data-phase="admin">{"".join(parts)}</main>'
    return document(f"{c.title}: admin", body, script=False)


def listener_page(c: Campaign, listener: Any, items: list[Any]) -> str:
    lid = int(listener.id)
    rows = "".join(
        f"<tr><td>{r.position}</td><td>{escape(r.phase)}</td><td>{_opt(r.sequence, 1)}</td>"
        f"<td>{_opt(r.query, 1)}</td><td>{escape(r.sentinel or '')}</td>"
        f"<td>{'' if r.strength is None else f'{r.strength:.2f}'}</td>"
        f"<td>{'' if r.answer is None else r.answer}</td>"
        f"<td>{'' if r.correct is None else ('yes' if r.correct else 'no')}</td>"
        f"<td>{r.plays or ''}</td><td>{r.response_ms or ''}</td></tr>"
        for r in items
    )
    head = (
        "<tr><th>position</th><th>phase</th><th>sequence</th><th>question</th><th>sentinel</th>"
        "<th>strength</th><th>answer</th><th>right</th><th>plays</th><th>ms</th></tr>"
    )
    fits = stats.jnd_fits(items, {lid}) if c.kind == "jnd" else {}
    inner = (
        f"<h1>{pseudonym(lid)}</h1>"
        + kv_table(
            {
                "started": listener.created_at,
                "finished": listener.finished_at or "not yet",
                "excluded": listener.exclusion if listener.excluded else "no",
                "comment": listener.comment or "",
            }
        )
        + (_fit_table(fits, set()) + _listener_figure(lid, fits) if fits else "")
        + f'<table class="admin">{head}{rows}</table><p><a href="/admin">back</a></p>'
    )
    body = f'<main data-phase="admin-listener" data-listener="{lid}">{inner}</main>'
    return document(f"{c.title}: {pseudonym(lid)}", body, script=False)


def _opt(v: Any, plus: int = 0) -> str:
    return "" if v is None else str(int(v) + plus)


def _listener_table(c: Campaign, planner: Planner, listeners: list[Any], by: dict) -> str:
    head = (
        "<tr><th>listener</th><th>started</th><th>stage</th><th>questions</th>"
        "<th>excluded</th><th>comment</th></tr>"
    )
    rows = []
    for r in listeners:
        its = by.get(int(r.id), [])
        done = sum(1 for i in its if i.phase == QUESTION and i.answer is not None)
        open_ = [i for i in its if i.answer is None]
        stage = "done" if r.finished_at else (open_[0].phase if open_ else "comment")
        flag = escape(r.exclusion) if r.excluded else ""
        rows.append(
            f'<tr data-listener="{r.id}" data-excluded="{int(bool(r.excluded))}">'
            f'<td><a href="/admin/listeners/{r.id}">{pseudonym(int(r.id))}</a></td>'
            f"<td>{r.created_at:%Y-%m-%d %H:%M}</td><td>{stage}</td>"
            f"<td>{done}/{planner.questions}</td><td class=flag>{flag}</td>"
            f"<td>{escape((r.comment or '')[:200])}</td></tr>"
        )
    return f'<table class="admin listeners">{head}{"".join(rows)}</table>'


def _campaign_curves(items: list[Any], ids: set[int]) -> str:
    rows = stats.answered_questions(items, ids)
    if not rows:
        return "<p>No answers yet.</p>"
    params = [json.loads(r.params) for r in rows]
    curves = psychometric_view.curves_from_rows(
        [r.strength for r in rows],
        [p["axis"]["families"] for p in params],
        [r.answer for r in rows],
        params,
    )
    return (
        '<div class="plots">'
        + "".join(psychometric_view.family_panel(c) for c in curves)
        + "</div>"
    )


def _fit_table(fits: dict[tuple[int, int], stats.SequenceFit], excluded: set[int]) -> str:
    head = (
        "<tr><th>listener</th><th>sequence</th><th>axis</th><th>answers</th>"
        "<th>JND ρ</th><th>σ</th><th>consistency</th></tr>"
    )
    rows = "".join(
        f'<tr data-listener="{f.listener}" data-sequence="{f.sequence}" '
        f'data-jnd="{f.fit.mu!r}"><td>{pseudonym(f.listener)}'
        f"{' (excluded)' if f.listener in excluded else ''}</td><td>{f.sequence + 1}</td>"
        f"<td>{escape(' + '.join(f.families))}</td><td>{len(f.answers)}</td>"
        f"<td>{f.fit.mu:.2f}</td><td>{f.fit.sigma:.3g}</td><td>{100 * f.consistency:.0f} %</td></tr>"
        for f in fits.values()
    )
    return f'<table class="admin fits">{head}{rows}</table>'


def _listener_figure(lid: int, fits: dict[tuple[int, int], stats.SequenceFit]) -> str:
    from matplotlib.figure import Figure

    mine = [f for k, f in fits.items() if k[0] == lid]
    fig = Figure(figsize=(4.6, 2.8))
    ax = fig.add_subplot()
    x = np.linspace(0.0, 100.0, 201)
    ax.axhline(0.5, color="#999", lw=0.8, ls=":")
    for k, f in enumerate(mine):
        colour = COLOURS[k % len(COLOURS)]
        jitter = (np.arange(len(f.answers)) % 5 - 2) * 0.012
        ax.plot(f.strengths, np.asarray(f.answers) + jitter, "o", color=colour, ms=4, alpha=0.8)
        label = f"seq {f.sequence + 1} ({'+'.join(f.families)}): JND {f.fit.mu:.1f}"
        ax.plot(
            x,
            psychometric.psychometric(x, f.fit.mu, f.fit.sigma),
            color=colour,
            lw=1.5,
            label=mpl_text(label),
        )
        ax.axvline(f.fit.mu, color=colour, lw=1, ls="--", alpha=0.8)
    ax.set_xlim(0, 100)
    ax.set_ylim(-0.06, 1.06)
    ax.set_yticks([0, 0.5, 1], ["same", "0.5", "different"])
    ax.tick_params(labelsize=7)
    ax.set_xlabel("strength ρ", fontsize=8)
    ax.set_ylabel('P("different")', fontsize=8)
    ax.set_title(f"{pseudonym(lid)}: answers and fitted curves", fontsize=9)
    ax.legend(fontsize=6, loc="lower right", frameon=True, framealpha=0.8)
    jnds = " ".join(f"{f.fit.mu!r}" for f in mine)
    return figure(
        svg(fig),
        f"{pseudonym(lid)}: {sum(len(f.answers) for f in mine)} answers",
        "listener",
        cls="plot listener-fit",
        listener=lid,
        jnds=jnds,
    )


def _agreement(items: list[Any], ids: set[int]) -> str:
    found = stats.triplets(items, ids)
    if not found:
        return "<p>No answers yet.</p>"
    shares = [t.majority()[1] for t in found.values()]
    head = "<tr><th>triplet</th><th>votes</th><th>A closer</th><th>B closer</th><th>majority</th><th>agreement</th></tr>"
    rows = "".join(
        f'<tr data-triplet="{k}" data-votes="{len(t.votes)}" data-b="{t.b_votes}">'
        f"<td>{k}</td><td>{len(t.votes)}</td><td>{len(t.votes) - t.b_votes}</td><td>{t.b_votes}</td>"
        f"<td>{'tie' if t.majority()[0] is None else 'AB'[t.majority()[0] or 0]}</td>"
        f"<td>{100 * t.majority()[1]:.0f} %</td></tr>"
        for k, t in found.items()
    )
    per = stats.listener_agreement(found)
    lrows = "".join(
        f'<tr data-listener="{lid}"><td>{pseudonym(lid)}</td><td>{a}/{n}</td>'
        f"<td>{100 * a / n:.0f} %</td></tr>"
        for lid, (a, n) in sorted(per.items())
        if n
    )
    return (
        f"<p>{len(found)} triplets with votes; mean agreement with the majority "
        f"{100 * float(np.mean(shares)):.1f} %.</p>"
        f'<table class="admin agreement">{head}{rows}</table><h3>Listeners against the others</h3>'
        f'<table class="admin">{"<tr><th>listener</th><th>agree</th><th>share</th></tr>"}{lrows}</table>'
    )


__all__ = ["listener_page", "login_page", "overview"]
