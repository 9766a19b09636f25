"""Render ``docs/perturbations.md`` from the families themselves (one source of truth).

``python -m pamflow.perturbations.docs > docs/perturbations.md`` regenerates the page; a
test fails when the page and the code disagree.
"""

from __future__ import annotations

import inspect
import sys

from pamflow.perturbations.axis import DEFAULT_AXIS_FAMILIES
from pamflow.perturbations.base import CATEGORIES, Family, get, names

HEADER = """\
# Perturbations

Generated from the code by `python -m pamflow.perturbations.docs`; do not edit by hand.

Every family maps a strength ρ ∈ [0, 100] onto one physical parameter: ρ = 0 is the
mildest setting of the family, ρ = 100 the strongest, with the ranges of DPAM Table 1
(plus NORESQA's clipping and frequency masking and CDPAM's delay and gain). An
*exponential* mapping is `value = mild · (strong / mild) ^ (ρ / 100)`; a *linear* one is
`value = mild + (strong − mild) · ρ / 100`. Params are frozen dataclasses that serialise
to JSON; `(params, seed)` replays an output bit for bit. An axis applies at most one family
per category, in a random order (DPAM section 3.1).

Default axis families (what `sample_axis` draws from): {axis}.

| family | category | parameter | unit | ρ = 0 | ρ = 100 | mapping |
|---|---|---|---|---|---|---|
"""


def _fmt(v: float) -> str:
    return f"{v:g}"


def _doc(fam: Family) -> str:
    module = sys.modules[type(fam).__module__]
    text = inspect.getdoc(module) or ""
    cls_doc = inspect.getdoc(type(fam))
    if cls_doc and cls_doc not in text and cls_doc != inspect.getdoc(Family):
        text = f"{text}\n\n{cls_doc}" if text else cls_doc
    return text.strip()


def render() -> str:
    axis = ", ".join(f"{c}: {', '.join(fs)}" for c, fs in DEFAULT_AXIS_FAMILIES.items())
    out = [HEADER.format(axis=axis)]
    ordered = [get(n) for c in CATEGORIES for n in names(c)]
    for fam in ordered:
        out.append(
            f"| [`{fam.name}`](#{fam.name.replace('_', '-')}) | {fam.category} | {fam.parameter} "
            f"| {fam.unit} | {_fmt(fam.mild)} | {_fmt(fam.strong)} | {fam.mapping} |\n"
        )
    seen_modules: dict[str, str] = {}
    for fam in ordered:
        module = type(fam).__module__
        out.append(f"\n## {fam.name}\n\n")
        out.append(
            f"Category **{fam.category}**; code `{module.replace('.', '/')}.py`; "
            f"{fam.parameter} from {_fmt(fam.mild)} to {_fmt(fam.strong)} {fam.unit} "
            f"({fam.mapping}).\n\n"
        )
        if module in seen_modules:
            out.append(f"Shares its implementation with `{seen_modules[module]}` (see above).\n")
            cls_doc = inspect.getdoc(type(fam))
            if cls_doc and cls_doc != inspect.getdoc(type(get(seen_modules[module]))):
                out.append(f"\n{cls_doc}\n")
            continue
        seen_modules[module] = fam.name
        out.append(_doc(fam) + "\n")
    return "".join(out)


if __name__ == "__main__":  # pragma: no cover
    sys.stdout.write(render())
