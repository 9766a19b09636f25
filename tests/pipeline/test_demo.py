"""`pamflow demo` ends with OUT/report.html: it links every dataset's report and the
gallery page, whose players (every family at every gallery strength) play files that exist;
and the command ends with a five-line summary."""

from __future__ import annotations

import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import pytest
import soundfile as sf
from rich.console import Console

from pamflow import perturbations
from pamflow.pipeline.build import build_local
from pamflow.pipeline.demo import GALLERY_STRENGTHS, run_demo, write_demo_report

TINY = {"num_examples": 4, "shard_size": 2, "clip_seconds": 1.0}


class Links(HTMLParser):
    """The page's links, its players (with the data-* of the figure they sit in)."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.players: list[tuple[dict[str, str], str]] = []
        self._figure: dict[str, str] = {}
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "a":
            self.links.append(a["href"])
        elif tag == "figure":
            self._figure = a
        elif tag == "audio":
            self.players.append((self._figure, a["src"]))


@pytest.fixture(scope="module")
def demo(tmp_path_factory, demo_corpus) -> tuple[Path, list[str]]:
    """A demo folder as `pamflow demo` leaves it (the gallery, then the datasets), with
    two datasets so that the page must link more than one, and the summary."""
    out = tmp_path_factory.mktemp("demo") / "out"
    run_demo(out, Console(quiet=True))
    build_local(
        "jnd",
        {**TINY, "families": ["white_noise", "eq"], "queries_per_sequence": 2},
        str(out / "jnd"),
    )
    build_local("triplet", TINY, str(out / "triplet"))
    return out, write_demo_report(out)


def test_report_links_every_dataset_report_and_the_gallery(demo):
    out, _ = demo
    page = (out / "report.html").read_text(encoding="utf-8")
    links = Links(page).links
    datasets = sorted(p.name for p in out.iterdir() if (p / "dataset.json").is_file())
    assert datasets == ["jnd", "triplet"]
    for name in datasets:
        assert f"reports/{name}.html" in links
        report = (out / "reports" / f"{name}.html").read_text(encoding="utf-8")
        assert f"{name} dataset" in report and str(out / name) in report
    assert "reports/jnd.html#psychometric" in links
    assert 'id="psychometric"' in (out / "reports" / "jnd.html").read_text(encoding="utf-8")
    assert "gallery.html" in links
    for href in links:  # every link leads to a file beside the page
        assert (out / unquote(href.split("#", 1)[0])).is_file(), href


def test_gallery_plays_every_family_at_every_strength(demo):
    out, _ = demo
    page = (out / "gallery.html").read_text(encoding="utf-8")
    assert "report.html" in Links(page).links
    players = Links(page).players
    seen = [(f["data-family"], f.get("data-strength")) for f, _ in players]
    want = [(fam.name, str(s)) for fam in perturbations.families() for s in GALLERY_STRENGTHS]
    assert sorted(seen) == sorted([*want, ("clean", None)])  # one each, no more
    for figure, src in players:
        path = out / unquote(src)
        assert path.parent == out / "gallery" and path.is_file(), src
        info = sf.info(str(path))
        assert info.samplerate == 16000 and info.frames > 16000  # a real clip
        if figure["data-family"] != "clean":
            fam, strength = figure["data-family"], int(figure["data-strength"])
            assert path.name == f"{fam}_{strength:03d}.wav"


def test_summary_is_five_lines(demo):
    out, lines = demo
    assert len(lines) == 5
    assert lines[0].startswith("made: 2 datasets: ")
    assert f"jnd (4 rows, 2 shards) in {out / 'jnd'}" in lines[0]
    assert f"triplet (4 rows, 2 shards) in {out / 'triplet'}" in lines[0]
    assert lines[1].startswith("made: a perturbation gallery") and str(out / "gallery") in lines[1]
    assert lines[2].startswith(f"report: {out / 'report.html'}")
    assert lines[3].startswith(f"next: pamflow inspect {out / 'jnd'}")
    assert lines[4].startswith(f"next: pamflow train dpam --data {out / 'jnd'}")


@pytest.mark.integration
@pytest.mark.slow
def test_pamflow_demo_command(tmp_path, demo_corpus):
    """The command as `make demo` runs it (a smaller dataset): report.html, five lines."""
    out = tmp_path / "demo"
    cmd = [str(Path(sys.executable).parent / "pamflow"), "demo", "--out", str(out)]
    done = subprocess.run(
        [*cmd, "--num-examples", "20", "--workers", "1"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (out / "report.html").is_file() and (out / "reports" / "jnd.html").is_file()
    tail = done.stdout.rstrip("\n").splitlines()[-5:]
    assert [line.split(":", 1)[0] for line in tail] == ["made", "made", "report", "next", "next"]
    assert tail[0] == f"made: 1 dataset: jnd (20 rows, 1 shard) in {out / 'jnd'}"
    assert tail[2].startswith(f"report: {out / 'report.html'}")
