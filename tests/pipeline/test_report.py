"""The HTML report of `pamflow inspect --report`: self-contained, playable, escaped."""

from __future__ import annotations

import base64
import io
import os
from collections import Counter
from html.parser import HTMLParser

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from pamflow import storage
from pamflow.cli import main
from pamflow.pipeline.build import build_local
from pamflow.pipeline.inspect import describe
from pamflow.pipeline.report import pick_examples, render_report, write_report

SPEC = {
    "num_examples": 12,
    "shard_size": 6,
    "clip_seconds": 1.0,
    "queries_per_sequence": 4,
    "families": ["white_noise", "mp3", "eq"],
}
NASTY = "<script>alert(1)</script>"


class Page(HTMLParser):
    """Every start tag with its attributes, and the article/figure each one sits in."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.players: list[tuple[int, str, str]] = []  # (row index, column, src)
        self.images: list[str] = []
        self.plots: list[str] = []  # data-column of the figures holding an <svg>
        self.text: list[str] = []
        self._article: int | None = None
        self._figure: dict[str, str] = {}
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags.append((tag, a))
        if tag == "article":
            self._article = int(a["data-index"])
        elif tag == "figure":
            self._figure = a
        elif tag == "audio":
            self.players.append((self._article, self._figure.get("data-column"), a["src"]))
        elif tag == "img":
            self.images.append(a["src"])
        elif tag == "svg" and "plot" in self._figure.get("class", ""):
            self.plots.append(self._figure["data-column"])

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def count(self, tag: str) -> int:
        return sum(1 for t, _ in self.tags if t == tag)


@pytest.fixture(scope="module")
def jnd(tmp_path_factory, demo_corpus) -> str:
    out = str(tmp_path_factory.mktemp("report") / "jnd")
    build_local("jnd", SPEC, out)
    return out


@pytest.fixture(scope="module")
def info(jnd):
    return describe(jnd)


@pytest.fixture(scope="module")
def report(jnd, info, tmp_path_factory):
    html_path = tmp_path_factory.mktemp("html") / "report.html"
    write_report(jnd, str(html_path), info, examples=6, seed=0)
    return html_path.read_text(encoding="utf-8")


def _wav(src: str) -> tuple[np.ndarray, int, str]:
    prefix = "data:audio/wav;base64,"
    assert src.startswith(prefix), src[:40]
    data = base64.b64decode(src[len(prefix) :], validate=True)
    x, sr = sf.read(io.BytesIO(data), dtype="float32")
    return x, sr, sf.info(io.BytesIO(data)).subtype


def test_players_hold_the_rows_audio(jnd, report):
    page = Page(report)
    ds = storage.Dataset.open(jnd)
    assert page.count("audio") == 6 * 2
    assert len({i for i, _, _ in page.players}) == 6
    for index, column, src in page.players:
        x, sr, subtype = _wav(src)
        assert (sr, subtype, x.ndim) == (16000, "PCM_16", 1)
        want, _ = ds.decode_audio(ds.row(index)[column])
        assert x.shape == want.shape
        # the same clip, only quantised to 16 bits (and clipped to full scale)
        assert np.max(np.abs(x - np.clip(want, -1, 1))) <= 1.01 / 32768
    columns = Counter(c for _, c, _ in page.players)
    assert columns == {"reference": 6, "perturbed": 6}


def test_examples_spread_over_labels(jnd, report):
    labels = storage.Dataset.open(jnd).to_table(["label"]).column("label").to_pylist()
    assert Counter(labels) == {0: 8, 1: 4}  # unbalanced, so random picks would rarely give 3/3
    picked = sorted({i for i, _, _ in Page(report).players})
    assert Counter(labels[i] for i in picked) == {0: 3, 1: 3}


def test_plots_and_spectrograms(jnd, info, report):
    page = Page(report)
    axes = storage.Dataset.open(jnd).to_table(["axis"]).column("axis").to_pylist()
    families = {f for axis in axes for f in axis}  # one psychometric panel per family
    assert sorted(page.plots) == sorted([*info["counts"], *info["histograms"], *families])
    assert set(info["histograms"]) == {"strength", "distance"}
    assert len(page.images) == 12  # one spectrogram per player
    for src in page.images:
        assert src.startswith("data:image/jpeg;base64,")
        img = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1], validate=True)))
        assert img.size == (340, 150)
        assert np.asarray(img).std() > 5  # not a blank image


def test_spectrograms_have_time_and_frequency_axes(report):
    page = Page(report)
    alts = [a["alt"] for t, a in page.tags if t == "img"]
    assert alts and all(a.endswith(": time (s), frequency (kHz)") for a in alts)
    for src in page.images:
        img = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1], validate=True)))
        gray = np.asarray(img.convert("L")).astype(int)
        # the axes' margins: white paper (left, below) with dark tick labels written on it
        left, bottom = gray[:, :40], gray[-35:, 50:]
        for margin in (left, bottom):
            assert np.median(margin) > 240
            assert (margin < 100).sum() > 30  # tick labels and the axis label
        assert gray[10:100, 60:330].std() > 5  # the spectrogram itself


def test_spectrogram_axes_are_time_in_s_and_frequency_in_khz(monkeypatch):
    import matplotlib.axes

    from pamflow.pipeline.report import _spectrogram_jpeg

    seen = []
    real = matplotlib.axes.Axes.imshow

    def imshow(self, *args, **kwargs):
        seen.append((self, kwargs.get("extent")))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "imshow", imshow)
    _spectrogram_jpeg(np.zeros((257, 40)), 0.0, 2.5, 16000)
    [(ax, extent)] = seen
    assert extent == (0.0, 2.5, 0.0, 8.0)  # seconds, then kHz up to Nyquist
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("time (s)", "frequency (kHz)")


def test_named_labels_and_params_tables(jnd, report):
    page = Page(report)
    labels = storage.Dataset.open(jnd).to_table(["label"]).column("label").to_pylist()
    # the label chart names its bars; the examples say "different (1)" / "same (0)"
    bars = report.split('data-column="label">', 1)[1].split("</figure>", 1)[0]
    assert ">different</text>" in bars and ">same</text>" in bars
    assert "(0 = same, 1 = different)" in bars
    text = " ".join(page.text)
    shown = {i for i, _, _ in page.players}
    want = Counter("different (1)" if labels[i] else "same (0)" for i in shown)
    assert text.count("different (1)") == want["different (1)"]
    assert text.count("same (0)") == want["same (0)"]
    # params: key/value tables, the chain as a table of steps; no raw JSON
    assert "<pre>" not in report and '{"axis"' not in report
    ds = storage.Dataset.open(jnd)
    articles = report.split('<article class="example"')[1:]
    assert len(articles) == 6
    for art in articles:
        index = int(art.split('data-index="', 1)[1].split('"', 1)[0])
        params = ds.row(index)["params"]
        table = art.split('<table class="kv params">', 1)[1]
        for key in params:
            assert f"<th>{key}</th>" in table
        steps = table.split("<th>chain</th>", 1)[1].split('<table class="steps">', 1)[1]
        steps = steps.split("</table>", 1)[0]
        for step in params["chain"]:
            assert f"<td>{step['family']}</td>" in steps
            assert f"<td>{step['strength']:.4g}</td>" in steps


def test_header_spec_and_checksum_status(jnd, info, report):
    text = " ".join(Page(report).text)
    manifest = storage.Dataset.open(jnd).info
    for value in (
        jnd,
        manifest["created_at"],
        manifest["pamflow_version"],
        "16000 Hz",
        "all 2 shard checksums verified",
        "white_noise, mp3, eq",
        "queries_per_sequence",
    ):
        assert value in text, value
    bad = render_report(
        jnd, {**info, "problems": ["part-00001.parquet: sha256 mismatch"]}, examples=0
    )
    assert "1 problem(s)" in bad and "part-00001.parquet: sha256 mismatch" in bad
    assert "not verified" in render_report(
        jnd, {k: v for k, v in info.items() if k != "problems"}, examples=0
    )


def test_self_contained(report):
    page = Page(report)
    assert "http://" not in report and "https://" not in report
    for tag, attrs in page.tags:
        for name in ("src", "href", "xlink:href"):
            if name in attrs:
                assert attrs[name].startswith(("data:", "#")), (tag, attrs[name][:60])
        assert tag not in ("link", "iframe", "object", "embed")
    csp = [
        a for t, a in page.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"
    ]
    assert csp and "default-src 'none'" in csp[0]["content"]


def test_text_is_escaped(jnd, info):
    nasty = {
        **info,
        "spec": {**info["spec"], "manifests": [NASTY]},
        "summary": {**info["summary"], NASTY: NASTY},
        "counts": {"label": {NASTY: 3, "$x$ & y": 2}},
        "problems": [NASTY],
    }
    out = render_report(jnd, nasty, examples=1)
    page = Page(out)
    assert NASTY not in out
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out
    assert page.count("script") == 1  # the report's own, nothing injected
    text = " ".join(page.text)
    assert NASTY in text  # shown to the reader as text (spec, summary, problems, chart labels)
    assert ">$x$ &amp; y</text>" in out  # a chart label, literal: no mathtext, escaped in the SVG


def test_cap_examples_and_determinism(jnd, info, report):
    short = Page(render_report(jnd, info, examples=3, seed=0, max_seconds=0.25))
    assert len(short.players) == 6
    for _, _, src in short.players:
        assert _wav(src)[0].shape == (4000,)
    assert "first 0.25 of 1.00 s" in " ".join(short.text)
    assert Page(render_report(jnd, info, examples=0)).count("audio") == 0
    assert render_report(jnd, info) == report  # same seed, same bytes
    with pytest.raises(ValueError, match="examples"):
        render_report(jnd, info, examples=-1)


def test_pick_examples():
    labels = ["a"] * 10 + ["b"] * 2 + ["c"]
    picked = pick_examples(labels, 13, 6, np.random.default_rng(3))
    assert picked == sorted(set(picked)) and len(picked) == 6
    assert Counter(labels[i] for i in picked) == {"a": 3, "b": 2, "c": 1}
    assert picked == pick_examples(labels, 13, 6, np.random.default_rng(3))
    assert pick_examples(labels, 13, 50, np.random.default_rng(0)) == list(range(13))
    plain = [pick_examples(None, 1000, 5, np.random.default_rng(s)) for s in range(2)]
    assert plain[0] != plain[1] and all(len(set(p)) == 5 for p in plain)
    assert pick_examples(None, 0, 5, np.random.default_rng(0)) == []


def test_cli_writes_report_atomically(jnd, tmp_path):
    html_path = tmp_path / "out" / "report.html"
    html_path.parent.mkdir()
    assert main(["inspect", jnd, "--report", str(html_path)]) == 0
    assert os.listdir(html_path.parent) == ["report.html"]  # no temporary file left behind
    assert Page(html_path.read_text(encoding="utf-8")).count("audio") == 12
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write_report(jnd, str(tmp_path / "missing" / "r.html"), describe(jnd, verify=False))
