"""Fault injection, sources: recordings deleted, truncated or replaced after indexing.

A file that is gone or changed size is set aside for the whole build before any row is
made (recorded in ``build.json`` and ``dataset.json`` with its reason) and the build goes
on with the rest; one whose content changed at the same size is caught when it is loaded
(sha256 against the manifest), with one line naming it, never used silently."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from pamflow.cli import main
from pamflow.corpus import index_corpus, write_index
from pamflow.storage import Dataset
from pamflow.testing import speech_like

SR = 16000


@pytest.fixture
def corpus(tmp_path):
    folder = tmp_path / "speech"
    folder.mkdir()
    for k in range(6):
        sf.write(folder / f"s{k}.wav", speech_like(seconds=3.0, sample_rate=SR, seed=k), SR,
                 subtype="FLOAT")  # fmt: skip
    manifest = str(tmp_path / "corpus.parquet")
    write_index(index_corpus(str(folder), kind="speech"), manifest)
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"manifests: [{manifest}]\nfamilies: [white_noise, eq]\nnum_examples: 12\n"
        "shard_size: 4\nclip_seconds: 1.0\nqueries_per_sequence: 2\n"
    )
    return folder, spec


def _build(spec, out, capsys) -> tuple[int, str]:
    code = main(["build", "jnd", "--local", "--config", str(spec), "--out", str(out)])
    return code, capsys.readouterr().err


def test_deleted_and_resized_sources_are_quarantined_and_the_build_goes_on(
    corpus, tmp_path, capsys
):
    folder, spec = corpus
    (folder / "s1.wav").unlink()  # deleted after indexing
    clip = sf.read(folder / "s4.wav", dtype="float32")[0]
    sf.write(folder / "s4.wav", clip[:80], SR, subtype="FLOAT")  # truncated to 5 ms
    out = tmp_path / "out"
    code, err = _build(spec, out, capsys)
    assert code == 0, err
    ds = Dataset.open(str(out))
    assert ds.num_rows == 12 and ds.verify().ok
    reasons = {q["id"]: q["reason"] for q in ds.info["quarantine"]}
    assert set(reasons) == {"s1.wav", "s4.wav"}
    assert reasons["s1.wav"].startswith("missing") and reasons["s4.wav"].startswith("changed")
    used = set(ds.to_table(["source_id"]).column("source_id").to_pylist())
    assert used and not used & {"s1.wav", "s4.wav"}  # no row made from a quarantined file
    assert json.loads((out / "build.json").read_text())["quarantine"] == ds.info["quarantine"]


def test_a_source_changed_at_the_same_size_is_named_not_used(corpus, tmp_path, capsys):
    folder, spec = corpus
    data, _ = sf.read(folder / "s2.wav", dtype="float32")
    sf.write(folder / "s2.wav", np.zeros_like(data), SR, subtype="FLOAT")  # silent, same size
    for k in range(6):  # every recording silent: whichever a row draws, it is caught
        if k != 2:
            sf.write(folder / f"s{k}.wav", np.zeros_like(data), SR, subtype="FLOAT")
    code, err = _build(spec, tmp_path / "out", capsys)
    assert code == 2
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in err, err  # the progress bar aside
    assert "changed since it was indexed" in errors[0] and "sha256 differs" in errors[0]
    assert not (tmp_path / "out" / "dataset.json").exists()


def test_every_source_gone_is_refused_before_any_work(corpus, tmp_path, capsys):
    folder, spec = corpus
    for f in folder.iterdir():
        f.unlink()
    code, err = _build(spec, tmp_path / "out", capsys)
    assert code == 2 and "no speech recordings" in err, err
    assert not (tmp_path / "out").exists()
