"""Fault injection, sources: recordings deleted, truncated or replaced after indexing.

A file that is gone or changed size is set aside for the whole build before any row is
made (recorded in ``build.json`` and ``dataset.json`` with its reason) and the build goes
on with the rest; one whose content changed is caught when a worker first loads it
(sha256 against the manifest; without one, decoding, length and level), quarantined into
the dataset with its reason, and the rows that met it are drawn again from the others,
the same whatever the worker count. Never used silently."""

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


def _built(spec, out, capsys) -> tuple[Dataset, dict[str, str]]:
    """A build that must succeed with all 12 rows verified; its quarantine by id."""
    code, err = _build(spec, out, capsys)
    assert code == 0, err
    ds = Dataset.open(str(out))
    assert ds.num_rows == 12 and ds.verify().ok
    return ds, {q["id"]: q["reason"] for q in ds.info["quarantine"]}


def test_deleted_and_resized_sources_are_quarantined_and_the_build_goes_on(
    corpus, tmp_path, capsys
):
    folder, spec = corpus
    (folder / "s1.wav").unlink()  # deleted after indexing
    clip = sf.read(folder / "s4.wav", dtype="float32")[0]
    sf.write(folder / "s4.wav", clip[:80], SR, subtype="FLOAT")  # truncated to 5 ms
    out = tmp_path / "out"
    ds, reasons = _built(spec, out, capsys)
    assert set(reasons) == {"s1.wav", "s4.wav"}
    assert reasons["s1.wav"].startswith("missing") and reasons["s4.wav"].startswith("changed")
    used = set(ds.to_table(["source_id"]).column("source_id").to_pylist())
    assert used and not used & {"s1.wav", "s4.wav"}  # no row made from a quarantined file
    assert json.loads((out / "build.json").read_text())["quarantine"] == ds.info["quarantine"]


def _same_size(path, audio):
    sf.write(path, audio.astype(np.float32), SR, subtype="FLOAT")


#: recordings changed after indexing, at the same size (so only their content tells):
#: each is caught when a worker loads it, quarantined with its reason, and the rows that
#: met it are drawn again from the others
SAME_SIZE = {
    "silent": lambda x: np.zeros_like(x),
    "other speech": lambda x: speech_like(seconds=x.size / SR, sample_rate=SR, seed=99),
    "noise": lambda x: np.random.default_rng(1).uniform(-0.5, 0.5, x.size),
    "one sample flipped": lambda x: np.concatenate([x[:100], -x[100:101], x[101:]]),
}


def test_sources_changed_at_the_same_size_are_quarantined_and_rows_redrawn(
    corpus, tmp_path, capsys
):
    folder, spec = corpus
    clean = tmp_path / "clean"
    assert _build(spec, clean, capsys)[0] == 0
    before = Dataset.open(str(clean)).to_table(["example_id", "source_id", "params"]).to_pylist()
    used = sorted({r["source_id"] for r in before})
    changed = dict(zip(used, SAME_SIZE.values(), strict=False))
    for sid, change in changed.items():
        x, _ = sf.read(folder / sid, dtype="float32")
        _same_size(folder / sid, change(x))
    out = tmp_path / "out"
    ds, reasons = _built(spec, out, capsys)
    assert set(reasons) == set(changed), reasons
    assert all(r.startswith("changed: ") and "sha256 differs" in r for r in reasons.values())
    after = ds.to_table(["example_id", "source_id"]).to_pylist()
    assert not {r["source_id"] for r in after} & set(changed)  # never used
    assert [r["example_id"] for r in after] == [r["example_id"] for r in before]


def _no_hash_manifest(folder, tmp_path):
    """A manifest without sha256 or sizes (written by hand, or by another tool): the
    load-time checks then rest on decoding, length, duration and level."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = index_corpus(str(folder), kind="speech").manifest_table()
    n = table.num_rows
    for col in ("sha256", "size_bytes"):
        i = table.schema.get_field_index(col)
        table = table.set_column(i, col, pa.nulls(n, table.schema.field(col).type))
    path = tmp_path / "nohash.parquet"
    pq.write_table(table, path)
    return str(path)


#: the same recordings broken in ways only decoding them shows
NO_HASH = {
    "s0.wav": ("unreadable:", lambda p: p.write_bytes(b"RIFF" + bytes(60))),
    "s1.wav": ("too short:", lambda p: _same_size(p, speech_like(seconds=3.0,
                                                               sample_rate=SR)[:80])),
    "s2.wav": ("silent:", lambda p: _same_size(p, np.zeros(3 * SR))),
    "s3.wav": ("changed: lasts 1.500 s", lambda p: _same_size(
        p, speech_like(seconds=1.5, sample_rate=SR, seed=3))),
    "s4.wav": ("unreadable:", lambda p: p.write_text("not audio at all\n" * 100)),
}  # fmt: skip


def test_load_time_checks_without_a_manifest_hash(corpus, tmp_path, capsys):
    folder, spec = corpus
    manifest = _no_hash_manifest(folder, tmp_path)
    spec.write_text(
        spec.read_text().replace(spec.read_text().split("\n")[0], f"manifests: [{manifest}]")
    )
    for sid, (_, breaks) in NO_HASH.items():
        breaks(folder / sid)
    out = tmp_path / "out"
    ds, reasons = _built(spec, out, capsys)
    assert set(reasons) <= set(NO_HASH)
    for sid, reason in reasons.items():
        assert reason.startswith(NO_HASH[sid][0]), (sid, reason)
    assert set(ds.to_table(["source_id"]).column("source_id").to_pylist()) == {"s5.wav"}


def test_when_every_source_is_bad_the_build_stops_with_one_line(corpus, tmp_path, capsys):
    folder, spec = corpus
    for f in folder.iterdir():
        x, _ = sf.read(f, dtype="float32")
        _same_size(f, np.zeros_like(x))
    code, err = _build(spec, tmp_path / "out", capsys)
    assert code == 2
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in err, err  # the progress bar aside
    assert "no speech recordings" in errors[0]
    assert not (tmp_path / "out" / "dataset.json").exists()


def test_every_source_gone_is_refused_before_any_work(corpus, tmp_path, capsys):
    folder, spec = corpus
    for f in folder.iterdir():
        f.unlink()
    code, err = _build(spec, tmp_path / "out", capsys)
    assert code == 2 and "no speech recordings" in err, err
    assert not (tmp_path / "out").exists()


@pytest.mark.integration
def test_redrawn_rows_are_the_same_whatever_the_workers_or_shard_size(
    corpus, tmp_path, prefect_server, dask_cluster
):
    import yaml

    from pamflow.flows import build_dataset
    from pamflow.pipeline import build
    from pamflow.testing import row_digests

    folder, spec = corpus
    for sid in ("s1.wav", "s4.wav"):  # content changed, same size: found only on load
        x, _ = sf.read(folder / sid, dtype="float32")
        _same_size(folder / sid, x[::-1])
    data = yaml.safe_load(spec.read_text())
    local, flow = str(tmp_path / "local"), str(tmp_path / "flow")
    build.build_local("jnd", data, local)
    build_dataset("jnd", data, flow, cluster=dask_cluster.scheduler_address)
    assert row_digests(flow) == row_digests(local) and len(row_digests(local)) == 12
    whole = str(tmp_path / "one-shard")  # only the rows that met a bad recording change
    build.build_local("jnd", {**data, "shard_size": 12}, whole)
    assert row_digests(whole) == row_digests(local)
    found = [Dataset.open(p).info["quarantine"] for p in (local, flow)]
    assert found[0] == found[1] and {q["id"] for q in found[0]} <= {"s1.wav", "s4.wav"}
    assert found[0]  # at least one row met a changed recording
