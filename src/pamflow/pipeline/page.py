"""Pieces of pamflow's HTML pages, shared by the dataset report (:mod:`~.report`), its
psychometric view (:mod:`~.psychometric_view`) and the demo's pages (:mod:`~.demo_pages`).

Every page carries the same style and player-checking script (``assets/``, inlined), so the
pages look alike and a headless browser can check every ``<audio>`` the same way. Charts
are inline SVG made with matplotlib (no pyplot, so no global backend state): text stays
text (escaped), ids are fixed and there is no date, so the same data gives the same bytes.
"""

from __future__ import annotations

import html
import io
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from typing import Any

import numpy as np

#: a page that holds everything it shows (the dataset report): nothing may be fetched
CSP = (
    "default-src 'none'; img-src data:; media-src data:; "
    "style-src 'unsafe-inline'; script-src 'unsafe-inline'"
)
#: a page that plays audio files beside it (the demo's gallery): media from its own folder
CSP_LOCAL_MEDIA = (
    "default-src 'none'; img-src data:; media-src 'self' file: data:; "
    "style-src 'unsafe-inline'; script-src 'unsafe-inline'"
)
#: the pages' style and player-checking script, package data beside this module
_ASSETS = resources.files("pamflow.pipeline") / "assets"
_SVG_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.S)
_SVG_XMLNS = re.compile(r'\s+xmlns(?::\w+)?="[^"]*"')


def asset(name: str) -> str:
    return (_ASSETS / name).read_text(encoding="utf-8")


def document(title: str, body: Iterable[str], *, csp: str = CSP) -> str:
    """A whole page: ``<head>`` (CSP, style), the ``body`` parts, the script."""
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{csp}">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{escape(title)}</title><style>{asset('report.css')}</style></head><body>",
            *body,
            f"<script>{asset('report.js')}</script></body></html>\n",
        ]
    )


# -- plots ---------------------------------------------------------------------------------
def figure(svg_text: str, caption: str, col: str, *, cls: str = "plot", **attrs: Any) -> str:
    """A chart in a ``<figure class="plot">`` (more classes in ``cls``); ``attrs`` become
    ``data-*`` attributes (``jnd_alone=...`` gives ``data-jnd-alone="..."``), None left out."""
    extra = "".join(
        f' data-{k.replace("_", "-")}="{escape(fmt(v))}"' for k, v in attrs.items() if v is not None
    )
    cap = f"<figcaption>{escape(caption)}</figcaption>"
    return (
        f'<figure class="{escape(cls)}" data-column="{escape(col)}"{extra}>{svg_text}{cap}</figure>'
    )


def svg(fig: Any) -> str:
    """The figure as an inline ``<svg>`` element (see the module docstring)."""
    import matplotlib

    fig.tight_layout()
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "pamflow"}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    head, _, body = _SVG_METADATA.sub("", text[text.index("<svg") :]).partition(">")
    return _SVG_XMLNS.sub("", head) + ">" + body  # HTML needs no namespaces: no URLs in the page


# -- text ----------------------------------------------------------------------------------
def section(ident: str, title: str, body: str) -> str:
    return f'<section id="{ident}"><h2>{escape(title)}</h2>{body}</section>'


def kv_table(data: Mapping[str, Any], cls: str = "kv") -> str:
    rows = "".join(
        f"<tr><th>{escape(k)}</th><td>{escape(fmt(v))}</td></tr>" for k, v in data.items()
    )
    return f'<table class="{cls}">{rows}</table>'


def meta_list(data: Mapping[str, Any]) -> str:
    items = "".join(
        f"<div><dt>{escape(k)}</dt><dd>{escape(fmt(v))}</dd></div>" for k, v in data.items()
    )
    return f'<dl class="meta">{items}</dl>'


def params_table(params: Any, depth: int = 0) -> str:
    """A ``params`` cell as nested key/value tables: a dict is a table, a chain (a list of
    ``{family, strength, params}`` steps) a table of steps with their params as
    ``key=value`` text, anything else short text (floats to 4 significant digits)."""
    if isinstance(params, str):
        try:
            params = json.loads(params)
        except ValueError:
            return escape(clip_text(params, 4000))
    if isinstance(params, dict) and depth > 0 and not any(_nested(v) for v in params.values()):
        return escape(inline(params)) if params else "none"  # a flat dict: one line
    if isinstance(params, dict) and params and depth < 3:
        rows = "".join(
            f"<tr><th>{escape(k)}</th><td>{params_table(v, depth + 1)}</td></tr>"
            for k, v in params.items()
        )
        return f'<table class="kv params">{rows}</table>'
    if isinstance(params, list) and params and all(_is_step(s) for s in params):
        head = "<tr><th>step</th><th>family</th><th>strength ρ</th><th>params</th></tr>"
        rows = "".join(
            f"<tr><td>{k + 1}</td><td>{escape(s['family'])}</td>"
            f"<td>{escape(fmt(s['strength']))}</td><td>{escape(inline(s.get('params')))}</td></tr>"
            for k, s in enumerate(params)
        )
        return f'<table class="steps">{head}{rows}</table>'
    if isinstance(params, list) and params and all(isinstance(v, dict) for v in params):
        return "<br>".join(escape(inline(v)) for v in params)
    return escape(fmt(params) if params != [] else "none")


def _nested(v: Any) -> bool:
    return isinstance(v, dict) or (isinstance(v, list) and any(isinstance(x, dict) for x in v))


def _is_step(s: Any) -> bool:
    return isinstance(s, dict) and "family" in s and "strength" in s


def inline(v: Any) -> str:
    """A dict as ``key=value, ...`` text (nested dicts in braces), anything else :func:`fmt`."""
    if isinstance(v, dict):
        return ", ".join(
            f"{k}={{{inline(x)}}}" if isinstance(x, dict) else f"{k}={fmt(x)}" for k, x in v.items()
        )
    return fmt(v)


def fmt(v: Any) -> str:
    """A value as short text: floats with 4 significant digits, lists joined, dicts as JSON."""
    if v is None:
        return "null"
    if isinstance(v, bool | str):
        return str(v)
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list | tuple):
        return ", ".join(fmt(x) for x in v)
    if isinstance(v, dict):
        return clip_text(json.dumps(v, sort_keys=True, default=str), 600)
    return str(v)


def escape(v: Any) -> str:
    return html.escape(str(v), quote=True)


def mpl_text(s: str) -> str:
    """Text for matplotlib, shown literally (a ``$`` would start mathtext)."""
    return s.replace("$", r"\$")


def clip_text(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def finite(values: Sequence[Any]) -> np.ndarray:
    v = np.asarray([x for x in values if isinstance(x, int | float)], dtype=float)
    return v[np.isfinite(v)]


__all__ = [
    "CSP",
    "CSP_LOCAL_MEDIA",
    "asset",
    "clip_text",
    "document",
    "escape",
    "figure",
    "finite",
    "fmt",
    "inline",
    "kv_table",
    "meta_list",
    "mpl_text",
    "params_table",
    "section",
    "svg",
]
