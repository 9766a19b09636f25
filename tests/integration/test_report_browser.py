"""The report in a real browser (headless Chromium): every player decodes its audio, the
plots are in the page, and a screenshot shows them."""

from __future__ import annotations

import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pamflow.pipeline.build import build_local
from pamflow.pipeline.inspect import describe
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
        self._in_plot = False
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "audio":
            self.audio.append(a)
        elif tag == "figure":
            self._in_plot = "plot" in a.get("class", "")
        elif tag == "svg" and self._in_plot:
            self.svg_in_plot += 1
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
    assert dom.svg_in_plot == len(info["counts"]) + len(info["histograms"])
    assert dom.images == 12


def test_screenshot_shows_the_plots(report, tmp_path):
    path, _ = report
    png = tmp_path / "report.png"
    chromium(tmp_path / "profile", f"--screenshot={png}", "--window-size=1200,2000", path.as_uri())
    img = np.asarray(Image.open(png).convert("RGB")).astype(int)
    assert img.shape == (2000, 1200, 3)

    def pixels(rgb: tuple[int, int, int]) -> int:
        return int((np.abs(img - np.array(rgb)).sum(axis=2) <= 12).sum())

    # the bar charts and histograms are drawn (not just present in the DOM)
    assert pixels(BAR_RGB) > 2000, "no bar chart visible"
    assert pixels(HIST_RGB) > 2000, "no histogram visible"
    assert img.std() > 20  # a page, not a blank or error screen
