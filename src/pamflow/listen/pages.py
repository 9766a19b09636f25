"""The listener's pages: plain HTML forms (POST, then a redirect), one script
(``assets/listen.js``: play buttons, answer buttons enabled once every clip was heard).

Each page's ``<main>`` carries ``data-phase`` (and ``data-item``, ``data-progress``) so
that a person's browser, a test driving one and a load generator read the same page.
Nothing on a page says whether a question is a sentinel.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from pamflow.listen.campaign import Campaign
from pamflow.listen.plan import ATTENTION, CALIBRATION, TEACHING
from pamflow.pipeline.page import asset, escape

_ASSETS = resources.files("pamflow.listen") / "assets"
#: the pages' Content-Security-Policy: nothing from elsewhere, the one script from here
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; media-src 'self'; "
    "img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


def static(name: str) -> bytes:
    """A file of ``assets/`` (``listen.js``, ``listen.css``)."""
    if name not in ("listen.js", "listen.css"):
        raise KeyError(name)
    return (_ASSETS / name).read_bytes()


def document(title: str, body: str, *, script: bool = True) -> str:
    css = asset("report.css") + static("listen.css").decode()
    tail = '<script src="/static/listen.js"></script>' if script else ""
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{css}</style></head><body>{body}{tail}"
        "</body></html>\n"
    )


def _main(phase: str, inner: str, **attrs: Any) -> str:
    extra = "".join(f' data-{k}="{escape(v)}"' for k, v in attrs.items() if v is not None)
    return f'<main data-phase="{phase}"{extra}>{inner}</main>'


def landing(c: Campaign, *, full: bool) -> str:
    n = c.jnd.sequences * c.jnd.questions if c.kind == "jnd" else c.afc.questions
    what = (
        f"{n} questions: you hear a reference and a second recording and say whether they "
        "are exactly the same or different"
        if c.kind == "jnd"
        else f"{n} questions: you hear a reference and two recordings, A and B, and say "
        "which of them sounds closer to the reference"
    )
    start = (
        "<p><b>This test is full: no more sessions can start.</b></p>"
        if full
        else '<form method="post" action="/start"><button type="submit" id="start" '
        'class="answer">Start the test</button></form>'
    )
    inner = (
        f"<h1>{escape(c.title)}</h1>"
        + (f'<div class="card">{escape(c.instructions)}</div>' if c.instructions else "")
        + '<div class="card"><p>Use headphones in a quiet place if you can. The test has a '
        "volume calibration, a short attention check, "
        f"{c.session.teaching} teaching examples and {what}. You may replay every clip.</p>"
        "<p class=muted>Your answers are stored under a pseudonym with the audio you heard; "
        "keep the link of your session to come back to it.</p>"
        f"{start}</div>"
    )
    return document(c.title, _main("start", inner), script=False)


def _player(base: str, item: int, role: str, label: str) -> str:
    src = f"{base}/audio/{item}/{role}.flac"
    return (
        f'<audio preload="auto" data-role="{role}" src="{escape(src)}"></audio>'
        f'<button type="button" class="play" data-for="{role}">▶ {escape(label)}</button>'
    )


def _form(base: str, item: int, buttons: str, extra: str = "") -> str:
    return (
        f'<form method="post" action="{escape(base)}/answer">'
        f'<input type="hidden" name="item" value="{item}">'
        '<input type="hidden" name="plays" value="0"><input type="hidden" name="ms" value="0">'
        f'{extra}<div class="answers">{buttons}</div></form>'
    )


def _buttons(pairs: list[tuple[int, str]], ident: str = "answer") -> str:
    return "".join(
        f'<button type="submit" name="answer" value="{v}" class="answer" '
        f'id="{ident}-{v}" data-needs-audio>{escape(text)}</button>'
        for v, text in pairs
    )


def item_page(c: Campaign, base: str, row: Any, done: int, total: int) -> str:
    """The page of the item a listener is at."""
    params = json.loads(row.params)
    item = int(row.id)
    if row.phase == CALIBRATION:
        inner = (
            "<h2>Volume calibration</h2><div class=card><p>Play the clip: it alternates loud "
            "and soft speech. Set your volume so that the loud parts are comfortable and the "
            "soft parts still audible, then keep it there until the end of the test.</p>"
            f'<div class="players">{_player(base, item, "calibration", "Play the calibration clip")}'
            "</div>"
            + _form(
                base,
                item,
                '<button type="submit" name="answer" value="1" class="answer" id="continue" '
                "data-needs-audio>Continue</button>",
                '<label><input type="checkbox" id="confirm" data-needs-check required> I hear '
                "the soft parts, the loud ones are comfortable, and I will not change the "
                "volume</label>",
            )
            + "</div>"
        )
        return document(c.title, _main(CALIBRATION, inner, item=item))
    if row.phase == ATTENTION:
        words = [(k, w) for k, w in enumerate(params["choices"])]
        inner = (
            "<h2>Attention check</h2><div class=card><p>Play the sentence, then pick the word "
            "you heard in it.</p>"
            f'<div class="players">{_player(base, item, "sentence", "Play the sentence")}</div>'
            + _form(base, item, _buttons(words, "word"))
            + "</div>"
        )
        return document(c.title, _main(ATTENTION, inner, item=item))
    if c.kind == "jnd":
        players = _player(base, item, "reference", "Reference") + _player(
            base, item, "test", "Second recording"
        )
        ask = "Are the two recordings exactly the same, or different?"
        answers = _buttons([(0, "Same"), (1, "Different")])
    else:
        players = (
            _player(base, item, "reference", "Reference")
            + _player(base, item, "a", "A")
            + _player(base, item, "b", "B")
        )
        ask = "Which of A and B sounds closer to the reference?"
        answers = _buttons([(0, "A is closer"), (1, "B is closer")])
    if row.phase == TEACHING:
        head = f"<h2>Teaching example {int(params['teaching']) + 1} of {c.session.teaching}</h2>"
        head += "<p class=muted>After you answer, you are told the right answer.</p>"
        progress = None
    else:
        progress = f"{done + 1}/{total}"
        head = f'<h1>{escape(c.title)}</h1><p class="progress">Question {done + 1} of {total}</p>'
    inner = (
        f"{head}<div class=card><p>{ask} You may replay them.</p>"
        f'<div class="players">{players}</div>{_form(base, item, answers)}</div>'
    )
    return document(c.title, _main(str(row.phase), inner, item=item, progress=progress))


def feedback(c: Campaign, base: str, row: Any) -> str:
    """After a teaching example: the right answer and what to listen for."""
    params = json.loads(row.params)
    right = row.answer == row.expected
    if c.kind == "jnd":
        truth = "different" if row.expected == 1 else "exactly the same"
        families = [s["family"] for s in params.get("chain", [])]
        why = (
            f"The second recording was degraded ({', '.join(families)}). Listen for hiss, "
            "muffled or harsh sound, echoes, clicks or gaps: any difference counts."
            if families
            else "It was the very same recording played twice."
        )
    else:
        closer = "A" if row.expected == 0 else "B"
        truth = f"{closer} is closer to the reference"
        why = f"{closer} was the reference itself; the other one was degraded."
    verdict = "Right" if right else "Not quite"
    inner = (
        f'<div class="card feedback {"right" if right else "wrong"}"><h2>{verdict}: the '
        f"answer was “{escape(truth)}”.</h2><p>{escape(why)}</p>"
        f'<a href="{escape(base)}" id="continue">Continue</a></div>'
    )
    return document(c.title, _main("feedback", inner, item=int(row.id), right=int(right)))


def comment_page(c: Campaign, base: str, limit: int) -> str:
    inner = (
        "<h2>Thank you: the questions are over</h2><div class=card><p>Any comment on the "
        "test (sound, instructions, anything)? It is optional.</p>"
        f'<form method="post" action="{escape(base)}/comment">'
        f'<textarea name="comment" id="comment" rows="5" maxlength="{limit}"></textarea>'
        f'<p class=muted><span id="left">{limit}</span> characters left</p>'
        '<button type="submit" class="answer" id="finish">Finish</button></form></div>'
    )
    return document(c.title, _main("comment", inner))


def done_page(c: Campaign) -> str:
    inner = "<h2>Thank you!</h2><div class=card><p>Your answers are saved. You may close this page.</p></div>"
    return document(c.title, _main("done", inner), script=False)


def error_page(title: str, message: str, status: int) -> str:
    inner = f"<h2>{escape(message)}</h2>"
    return document(title, _main("error", inner, status=status), script=False)


__all__ = [
    "CSP",
    "comment_page",
    "document",
    "done_page",
    "error_page",
    "feedback",
    "item_page",
    "landing",
    "static",
]
