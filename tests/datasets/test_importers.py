"""Human labels: judgments into a new dataset version; the published DPAM JND list layout."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from pamflow import storage
from pamflow.datasets.importers import LabelsError, import_dpam_list, import_judgments
from pamflow.pipeline import build
from pamflow.testing import row_digests, speech_like


@pytest.fixture(scope="module")
def unlabelled(tmp_path_factory, demo_corpus):
    out = str(tmp_path_factory.mktemp("jnd") / "jnd")
    build.build_local(
        "jnd",
        {
            "num_examples": 6,
            "shard_size": 3,
            "clip_seconds": 1.0,
            "labels": "none",
            "queries_per_sequence": 3,
            "families": ["white_noise", "eq"],
        },
        out,
    )
    return out


def test_judgments_make_a_new_labelled_dataset_and_leave_the_old_one(unlabelled, tmp_path):
    before = row_digests(unlabelled)
    ids = [r["example_id"] for r in storage.Dataset.open(unlabelled).iter_rows(["example_id"])]
    csv = tmp_path / "judgments.csv"
    csv.write_text(
        "example_id,listener,answer\n"
        f"{ids[0]},a,1\n{ids[0]},b,1\n{ids[0]},c,0\n"
        f"{ids[1]},a,same\n{ids[2]},a,1\n{ids[2]},b,0\n"
    )
    out = str(tmp_path / "labelled")
    summary = import_judgments(unlabelled, str(csv), out)
    assert summary["labelled"] == 2 and summary["ties"] == 1 and summary["votes"] == 6
    rows = {r["example_id"]: r for r in storage.Dataset.open(out).iter_rows()}
    assert rows[ids[0]]["label"] == 1 and rows[ids[0]]["agreement"] == pytest.approx(2 / 3)
    assert rows[ids[0]]["votes"] == 3 and rows[ids[0]]["label_source"] == "human"
    assert rows[ids[1]]["label"] == 0 and rows[ids[2]]["label"] is None
    assert rows[ids[3]]["label"] is None and rows[ids[3]]["votes"] is None
    info = json.loads((tmp_path / "labelled" / "dataset.json").read_text())
    assert info["derived_from"]
    assert row_digests(unlabelled) == before  # the source dataset is untouched


def test_judgments_with_unknown_ids_or_answers_are_refused(unlabelled, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("example_id,listener,answer\nnope,a,1\n")
    with pytest.raises(LabelsError, match="not in"):
        import_judgments(unlabelled, str(bad), str(tmp_path / "x"))
    bad.write_text("example_id,listener,answer\nnope,a,maybe\n")
    with pytest.raises(LabelsError, match=":2: answer 'maybe'"):
        import_judgments(unlabelled, str(bad), str(tmp_path / "y"))
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_dpam_list_import_quarantines_bad_files(tmp_path):
    sr = 22050
    x = speech_like(1.0, sr, seed=1)
    sf.write(tmp_path / "ref.wav", x, sr, subtype="FLOAT")
    sf.write(
        tmp_path / "test.wav",
        x + 0.01 * np.random.default_rng(0).standard_normal(x.size),
        sr,
        subtype="FLOAT",
    )
    sf.write(tmp_path / "silent.wav", np.zeros(sr, np.float32), sr)
    (tmp_path / "list.txt").write_text(
        "ref.wav\ttest.wav\t1\t white\nref.wav\tmissing.wav\t0\nref.wav\tsilent.wav\t0\n"
        "ref.wav\tref.wav\t0\n"
    )
    out = str(tmp_path / "dpam")
    summary = import_dpam_list(str(tmp_path / "list.txt"), out)
    assert summary == {"recipe": "jnd", "path": out, "rows": 2, "quarantined": 2}
    ds = storage.Dataset.open(out)
    rows = list(ds.iter_rows())
    assert [r["label"] for r in rows] == [1, 0] and rows[0]["axis"] == ["white"]
    reasons = [q["reason"] for q in ds.info["quarantine"]]
    assert any("missing.wav" in r for r in reasons) and any("silent" in r for r in reasons)
    ref, got_sr = ds.decode_audio(rows[0]["reference"])
    assert got_sr == sr and np.max(np.abs(ref - x)) < 1e-6


def test_one_vote_per_listener_and_example_the_last_one_counting(unlabelled, tmp_path):
    ids = [r["example_id"] for r in storage.Dataset.open(unlabelled).iter_rows(["example_id"])]
    csv = tmp_path / "j.csv"
    # a BOM (Excel's UTF-8), listener a answers ids[0] five times, changing their mind last
    csv.write_bytes(
        "\ufeffexample_id,listener,answer\n".encode()
        + "".join(f"{ids[0]},a,1\n" for _ in range(4)).encode()
        + f"{ids[0]},a,0\n{ids[0]},b,0\n{ids[1]},ü-listener,1\n".encode()
    )
    out = str(tmp_path / "out")
    summary = import_judgments(unlabelled, str(csv), out)
    assert summary["votes"] == 3 and summary["labelled"] == 2
    rows = {r["example_id"]: r for r in storage.Dataset.open(out).iter_rows()}
    assert rows[ids[0]]["votes"] == 2 and rows[ids[0]]["label"] == 0
    assert rows[ids[0]]["agreement"] == 1.0 and rows[ids[1]]["label"] == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"example_id,listener,answer\nX,,1\n", r":2: empty listener"),
        (b"example_id,listener,answer\nX,a\x00b,1\n", r":2: listener 'a\\x00b' holds control"),
        (b"example_id,listener,answer\nX,J\xf6rg,1\n", r"not UTF-8 text .*save the CSV as UTF-8"),
        (b"example_id,listener,answer\nX,a," + b"1" * 200_000 + b"\n", r"not a readable CSV row"),
        (b"example_id,listener,answer\nX," + b"a" * 5000 + b",1\n", r":2: listener is 5000 char"),
        (b"id,who,answer\nX,a,1\n", r"missing column\(s\) \['example_id', 'listener'\]"),
    ],
)
def test_bad_judgments_files_get_one_line_naming_file_and_line(
    unlabelled, tmp_path, content, message
):
    csv = tmp_path / "bad.csv"
    csv.write_bytes(content)
    with pytest.raises(LabelsError, match=message) as err:
        import_judgments(unlabelled, str(csv), str(tmp_path / "out"))
    assert str(csv) in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "out").exists()
