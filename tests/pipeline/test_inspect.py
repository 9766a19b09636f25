"""`pamflow inspect` (summary, checksums, HTML report) on a tiny dataset of every recipe."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from pamflow.cli import main
from pamflow.datasets import get_recipe, recipe_names
from pamflow.pipeline import build


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)


@pytest.mark.parametrize("recipe", recipe_names())
def test_inspect_and_report(recipe, tmp_path, demo_corpus, capsys):
    out = str(tmp_path / recipe)
    build.build_local(
        recipe,
        {"num_examples": 4, "shard_size": 2, "clip_seconds": 1.0, **get_recipe(recipe).tiny_spec},
        out,
    )
    html = tmp_path / "report.html"
    assert main(["inspect", out, "--report", str(html)]) == 0
    printed = capsys.readouterr().out
    assert f"{recipe} dataset" in printed and "checksums verified" in printed
    parser = _Tags()
    parser.feed(html.read_text())
    assert parser.tags.count("audio") >= 4  # every example shows every audio column
    assert parser.tags.count("svg") >= 1
