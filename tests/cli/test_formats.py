"""docs/formats.md is generated from the readers it describes, and what it says of them
holds."""

import os
from pathlib import Path

import pytest

from pamflow.cli.formats import COMMAND, DPAM_ROW, TRIPLET_ROW, render
from pamflow.datasets import get_recipe
from pamflow.datasets.importers import LabelsError, read_dpam_list, read_judgments
from pamflow.datasets.triplet import read_triplet_list
from pamflow.flows.settings import absolute

DOC = Path(__file__).resolve().parents[2] / "docs" / "formats.md"


def test_formats_page_is_generated_from_the_code():
    assert DOC.read_text(encoding="utf-8") == render(), f"docs/formats.md is stale: run `{COMMAND}`"


@pytest.mark.parametrize(("recipe", "row"), [("jnd", DPAM_ROW), ("triplet", TRIPLET_ROW)])
def test_the_imported_rows_cover_the_recipe_columns(recipe, row):
    names = [c.name for c in get_recipe(recipe).schema(None).columns]
    assert list(row) == names, f"update the {recipe} row of pamflow/cli/formats.py"


def test_judgments_last_answer_counts_and_bad_rows_name_the_row(tmp_path):
    votes = tmp_path / "votes.csv"
    votes.write_text(
        "\ufeffanswer,example_id,listener,extra\n Yes ,a,x,z\n\nSame,a,x,z\nd,a,y\n",
        encoding="utf-8",
    )
    assert read_judgments(votes) == {"a": [("x", 0), ("y", 1)]}  # x's last answer counts
    votes.write_text("example_id,listener,answer\na,x,1\n\na,x,maybe\n", encoding="utf-8")
    with pytest.raises(LabelsError, match=r"votes.csv:3: answer 'maybe'"):
        read_judgments(votes)  # the blank line is not counted
    votes.write_text("example_id,listener,answer\na,x\n", encoding="utf-8")
    with pytest.raises(LabelsError, match=r"votes.csv:2: empty answer"):
        read_judgments(votes)


def test_dpam_list_fields_are_trimmed_and_labels_truncated(tmp_path):
    lst = tmp_path / "list.txt"
    lst.write_text(" r.wav\t t.wav\t 1.0\t white\textra\n\nr.wav\tu.wav\t0\n")
    rows = read_dpam_list(lst)
    assert [(r["line"], r["ref_path"], r["label"], r["noise_type"]) for r in rows] == [
        (1, "r.wav", 1, "white"),
        (3, "r.wav", 0, None),
    ]
    lst.write_text("ref_path\ttest_path\tlabel\n")
    with pytest.raises(LabelsError, match=r"list.txt:1: label 'label'"):
        read_dpam_list(lst)


def test_triplet_list_header_may_reorder_columns(tmp_path):
    lst = tmp_path / "list.txt"
    lst.write_text("LABEL\ts2\ts1\tref\tnote\n1\tb.wav\ta.wav\tr.wav\tx\n")
    (row,) = read_triplet_list(lst)
    assert (row["ref"], row["s1"], row["s2"], row["label"]) == ("r.wav", "a.wav", "b.wav", 1)
    assert row["votes"] is None and row["agreement"] is None
    lst.write_text("r\ta\tb\t1\t3\t0.4\n")
    with pytest.raises(LabelsError, match="agreement 0.4 is not in"):
        read_triplet_list(lst)


def test_local_paths_are_made_absolute_and_urls_kept():
    assert absolute("data/x") == os.path.join(os.getcwd(), "data", "x")
    assert absolute("~/x") == os.path.join(os.path.expanduser("~"), "x")
    assert absolute("s3://bucket/x") == "s3://bucket/x"
    assert absolute("memory://x") == "memory://x"
