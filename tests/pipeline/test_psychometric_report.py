"""The psychometric view of a JND report: one panel per family present, binned answers and
JNDs that are :func:`pamflow.datasets.psychometric.fit` on the dataset's own rows."""

from __future__ import annotations

import json
from collections import defaultdict
from html.parser import HTMLParser
from types import SimpleNamespace

import numpy as np
import pytest

from pamflow import storage
from pamflow.datasets import psychometric
from pamflow.pipeline import psychometric_view
from pamflow.pipeline.build import build_local
from pamflow.pipeline.inspect import describe
from pamflow.pipeline.report import render_report

#: 6 sequences of 8 questions over 4 families of 4 categories: some axes hold one family,
#: some several
SPEC = {
    "num_examples": 48,
    "shard_size": 24,
    "clip_seconds": 1.0,
    "queries_per_sequence": 8,
    "families": ["white_noise", "mp3", "eq", "pops"],
}


class Panels(HTMLParser):
    """The psychometric figures (their data-* attributes and <text> in their SVG) and the
    rows of the JND table."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.panels: dict[str, dict[str, str]] = {}
        self.texts: dict[str, list[str]] = defaultdict(list)
        self.table: dict[str, list[str]] = {}
        self._panel: str | None = None
        self._row: str | None = None
        self._in_text = False
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "figure" and "psychometric" in a.get("class", "").split():
            self._panel = a["data-family"]
            self.panels[self._panel] = a
        elif tag == "text":
            self._in_text = True
        elif tag == "tr" and "data-family" in a:
            self._row = a["data-family"]
            self.table[self._row] = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "figure":
            self._panel = None
        elif tag == "text":
            self._in_text = False
        elif tag == "tr":
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._panel and self._in_text:
            self.texts[self._panel].append(data)
        if self._row is not None and data.strip():
            self.table[self._row].append(data.strip())


@pytest.fixture(scope="module")
def jnd(tmp_path_factory, demo_corpus) -> str:
    out = str(tmp_path_factory.mktemp("psychometric") / "jnd")
    build_local("jnd", SPEC, out)
    return out


@pytest.fixture(scope="module")
def page(jnd) -> str:
    return render_report(jnd, describe(jnd, verify=False), examples=2)


def expected_pairs(path: str) -> tuple[dict, dict]:
    """Straight from the rows: per family, the (strength, answer) pairs of the rows whose
    axis is that family alone, and those of the combined axes at the family's chain step."""
    rows = storage.Dataset.open(path).to_table(["strength", "axis", "label", "params"])
    alone, combined = defaultdict(list), defaultdict(list)
    for r in rows.to_pylist():
        if r["label"] is None:
            continue
        if len(r["axis"]) == 1:
            alone[r["axis"][0]].append((r["strength"], r["label"]))
        else:
            for step in json.loads(r["params"])["chain"]:
                combined[step["family"]].append((step["strength"], r["label"]))
    return alone, combined


def test_one_panel_per_family_present(jnd, page):
    alone, combined = expected_pairs(jnd)
    axes = storage.Dataset.open(jnd).to_table(["axis"]).column("axis").to_pylist()
    present = {f for axis in axes for f in axis}
    assert alone and combined, "the spec should give axes of one family and of several"
    panels = Panels(page)
    assert set(panels.panels) == present == set(panels.table)
    assert page.index('id="psychometric"') < page.index('id="distributions"')
    for fam, a in panels.panels.items():
        assert a["data-rows-alone"] == str(len(alone[fam]))
        assert a["data-rows-combined"] == str(len(combined[fam]))
        assert "<svg" in page.split(f'data-family="{fam}" data-jnd', 1)[1].split("</figure>")[0]


def test_jnd_is_the_fit_of_the_rows(jnd, page):
    alone, combined = expected_pairs(jnd)
    panels = Panels(page)
    for fam, a in panels.panels.items():
        fits = {
            k: psychometric.fit(v) if v else None
            for k, v in (("alone", alone[fam]), ("combined", combined[fam]))
        }
        for kind, fit in fits.items():
            key = f"data-jnd-{kind}"
            if fit is None:
                assert key not in a
            else:
                assert float(a[key]) == fit.mu
                # P("different") at the JND is one half (the lapse is symmetric)
                assert psychometric.psychometric(fit.mu, fit.mu, fit.sigma) == pytest.approx(0.5)
        headline = fits["alone"] or fits["combined"]
        assert float(a["data-jnd"]) == headline.mu
        # the JND written where a reader sees it: the panel title and the JND table
        title = next(t for t in panels.texts[fam] if t.startswith(f"{fam}: JND"))
        assert f"JND ρ = {headline.mu:.2f}" in title
        assert panels.table[fam][:2] == [fam, f"{headline.mu:.2f}"]


def test_bins_count_the_rows(jnd, page):
    alone, combined = expected_pairs(jnd)
    panels = Panels(page)
    for fam, a in panels.panels.items():
        for kind, pairs in (("alone", alone[fam]), ("combined", combined[fam])):
            want = []
            if pairs:
                rho = np.array([p[0] for p in pairs])
                h = np.array([p[1] for p in pairs])
                b = np.minimum((rho // 10).astype(int), 9)  # bins of 10, 100 in the last
                for k in sorted(set(b)):
                    want.append(f"{10 * k}-{10 * k + 10}:{h[b == k].sum()}/{(b == k).sum()}")
            assert a[f"data-bins-{kind}"].split() == want
        # the counts are written by the points, and the axes say what they show
        texts = panels.texts[fam]
        assert 'P("different")' in texts and "1 (all different)" in texts
        assert "0 (all same)" in texts
        assert any(t.startswith(f"strength ρ of {fam}") for t in texts)
        for part in (a["data-bins-alone"] + " " + a["data-bins-combined"]).split():
            assert part.rsplit("/", 1)[1] in texts


def test_page_says_how_rows_count(page):
    assert "Psychometric curves" in page
    for words in (
        "whose axis is that family only",
        "lower bound",
        "pamflow.datasets.psychometric.fit",
    ):
        assert words in page


def test_fit_is_capped(jnd, monkeypatch):
    monkeypatch.setattr(psychometric_view, "MAX_FIT_ROWS", 5)
    curves = psychometric_view.family_curves(storage.Dataset.open(jnd))
    big = [s for c in curves for s in (c.alone, c.combined) if s.rows > 5]
    assert big and all(s.fitted_rows == 5 for s in big)
    assert "fit on 5 random rows" in psychometric_view._jnd_table(curves)


def test_no_view_without_labels_or_for_other_recipes(tmp_path, demo_corpus):
    out = str(tmp_path / "human")
    build_local("jnd", {**SPEC, "num_examples": 8, "labels": "none"}, out)
    body = psychometric_view.psychometric_section(storage.Dataset.open(out))
    assert "No labelled rows" in body and "<svg" not in body
    assert psychometric_view.psychometric_section(SimpleNamespace(recipe="triplet")) == ""
