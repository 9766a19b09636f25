"""The report in a real browser (headless Chromium): every player decodes its audio, the
plots are in the page, and a screenshot shows them, the psychometric curves of each family
included; the demo's gallery page plays its WAV files."""

from __future__ import annotations

import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pamflow import storage
from pamflow.pipeline.build import build_local
from pamflow.pipeline.inspect import describe
from pamflow.pipeline.psychometric_view import ALONE_RGB, COMBINED_RGB
from pamflow.pipeline.report import write_report

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing (apt-get install -y chromium)"
    ),
]
SPEC = {
    "num_examples": 12,
    "shard_size": 6,
    "clip_seconds": 1.0,
    "queries_per_sequence": 4,
    "families": ["white_noise", "mp3", "eq"],
}
#: the bar and histogram colours of pamflow.pipeline.report
BAR_RGB, HIST_RGB = (0x4C, 0x72, 0xB0), (0x55, 0xA8, 0x68)


def chromium(user_dir: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--mute-audio",
        "--hide-scrollbars",
        f"--user-data-dir={user_dir}",
        "--virtual-time-budget=5000",
        *args,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


class Dom(HTMLParser):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.audio: list[dict[str, str]] = []
        self.svg_in_plot = 0
        self.images = 0
        self.psychometric: dict[str, dict[str, str]] = {}  # family -> its figure's attributes
        self._in_plot = False
        self._figure: dict[str, str] = {}
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "audio":
            self.audio.append(a)
        elif tag == "figure":
            self._in_plot = "plot" in a.get("class", "")
            self._figure = a
        elif tag == "svg" and self._in_plot:
            self.svg_in_plot += 1
            if "psychometric" in self._figure.get("class", "").split():
                self.psychometric[self._figure["data-family"]] = self._figure
        elif tag == "img" and a.get("src", "").startswith("data:image/"):
            self.images += 1


@pytest.fixture(scope="module")
def report(tmp_path_factory, demo_corpus):
    root = tmp_path_factory.mktemp("browser")
    out = str(root / "jnd")
    build_local("jnd", SPEC, out)
    info = describe(out)
    path = root / "report.html"
    write_report(out, str(path), info, examples=6)
    return path, info


def test_players_load_in_chromium(report, tmp_path):
    path, info = report
    dom = Dom(chromium(tmp_path / "profile", "--dump-dom", path.as_uri()).stdout)
    assert len(dom.audio) == 12
    for a in dom.audio:  # written by the page's script once the browser decoded the header
        assert "data-error" not in a, a.get("data-error")
        assert a.get("data-ready") == "1", "loadedmetadata never fired"
        assert float(a["data-duration"]) == pytest.approx(
            float(a["data-expected-duration"]), abs=0.01
        )
        assert float(a["data-duration"]) > 0
    assert dom.svg_in_plot == len(info["counts"]) + len(info["histograms"]) + len(dom.psychometric)
    assert dom.images == 12


def test_screenshot_shows_the_plots(report, tmp_path):
    path, _ = report
    png = tmp_path / "report.png"
    # tall enough for the psychometric panels and the histograms below them
    chromium(tmp_path / "profile", f"--screenshot={png}", "--window-size=1200,4000", path.as_uri())
    img = np.asarray(Image.open(png).convert("RGB")).astype(int)
    assert img.shape == (4000, 1200, 3)

    def pixels(rgb: tuple[int, int, int]) -> int:
        return int((np.abs(img - np.array(rgb)).sum(axis=2) <= 12).sum())

    # the bar charts and histograms are drawn (not just present in the DOM)
    assert pixels(BAR_RGB) > 2000, "no bar chart visible"
    assert pixels(HIST_RGB) > 2000, "no histogram visible"
    assert img.std() > 20  # a page, not a blank or error screen


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


def test_psychometric_view_in_chromium(report, tmp_path):
    """One psychometric panel per family present, drawn: the points and curves of each
    series (alone, on combined axes) show in their colours on a screenshot."""
    path, _ = report
    dom = Dom(chromium(tmp_path / "profile", "--dump-dom", path.as_uri()).stdout)
    axes = storage.Dataset.open(str(path.parent / "jnd")).to_table(["axis"])
    present = {f for axis in axes.column("axis").to_pylist() for f in axis}
    assert set(dom.psychometric) == present
    for fam, a in dom.psychometric.items():
        assert 0 <= float(a["data-jnd"]) <= 100, fam
    png = tmp_path / "psychometric.png"
    chromium(tmp_path / "profile", f"--screenshot={png}", "--window-size=1200,6000", path.as_uri())
    img = np.asarray(Image.open(png).convert("RGB")).astype(int)

    def pixels(rgb: tuple[int, int, int]) -> int:
        return int((np.abs(img - np.array(rgb)).sum(axis=2) <= 12).sum())

    for kind, colour in (("alone", ALONE_RGB), ("combined", COMBINED_RGB)):
        series = sum(1 for a in dom.psychometric.values() if a.get(f"data-jnd-{kind}"))
        if series:  # each drawn series: markers, error bars, the curve, the JND line
            assert pixels(_rgb(colour)) > 400 * series, f"no {kind} curves visible"


def test_gallery_plays_in_chromium(tmp_path, demo_corpus):
    """The demo's gallery page plays the WAV files beside it (its CSP lets it)."""
    from rich.console import Console

    from pamflow.pipeline.demo import perturbation_gallery

    perturbation_gallery(tmp_path / "gallery", Console(quiet=True), strengths=(50,))
    page = tmp_path / "gallery.html"
    dom = Dom(chromium(tmp_path / "profile", "--dump-dom", page.as_uri()).stdout)
    assert len(dom.audio) == len(list((tmp_path / "gallery").glob("*.wav"))) > 10
    for a in dom.audio:
        assert "data-error" not in a, (a["src"], a.get("data-error"))
        assert a.get("data-ready") == "1", f"{a['src']}: loadedmetadata never fired"
        assert float(a["data-duration"]) > 1
