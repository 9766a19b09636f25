"""Fault injection, bad specs: each is refused by the real CLI before any work, with one
line naming the file or field, and nothing is written (issue 11's suite, table-driven).

Every case runs ``pamflow build RECIPE --local --config FILE --out OUT`` in-process."""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from pamflow.cli import main

#: (id, recipe, spec file content, what the one line must say)
CASES = [
    ("unknown-field", "jnd", "num_exmples: 10\n", r"num_exmples: Extra inputs"),
    ("bool-count", "jnd", "num_examples: true\n", r"num_examples: True is a boolean"),
    ("bool-seed", "jnd", "seed: false\n", r"seed: False is a boolean"),
    ("bool-in-range", "jnd", "strength: {low: true}\n", r"strength: .*low: True is a boolean"),
    ("negative-count", "jnd", "num_examples: -5\n", r"num_examples: Input should be greater"),
    ("zero-shard", "jnd", "shard_size: 0\n", r"shard_size: Input should be greater"),
    ("absurd-count", "jnd", "num_examples: 200000000\n", r"num_examples: .*less than or equal"),
    ("too-many-shards", "jnd", "num_examples: 5000000\nshard_size: 1\n", r"more than 100,000"),
    ("string-count", "jnd", "num_examples: lots\n", r"num_examples: Input should be a valid"),
    ("list-rate", "codec", "sample_rate: [16000]\n", r"sample_rate: Input should be a valid"),
    ("low-rate", "jnd", "sample_rate: 100\n", r"sample_rate: Input should be greater"),
    ("long-clip", "jnd", "clip_seconds: 3600\n", r"clip_seconds: Input should be less"),
    ("clip-longer-than-corpus", "jnd", "clip_seconds: 59\n", r"clip_seconds: 59.0 s is longer"),
    ("unknown-family", "jnd", "families: [white_noise, nosuch]\n", r"unknown family \['nosuch'\]"),
    ("no-families", "jnd", "families: []\n", r"at least one family"),
    ("reversed-range", "jnd", "strength: {low: 80, high: 20}\n", r"low \(80.0\) is above high"),
    ("bad-format", "jnd", "audio_format: mp3\n", r"audio_format: Input should be"),
    ("missing-manifest", "jnd", "manifests: [nowhere.parquet]\n", r"manifest 'nowhere.parquet'"),
    ("manifest-columns", "jnd", "manifests: [{bad_columns}]\n", r"lacks column\(s\)"),
    ("manifest-not-parquet", "jnd", "manifests: [{not_parquet}]\n", r"not a readable manifest"),
    ("manifest-no-noise", "jnd", "manifests: [{speech_only}]\n", r"families: .*no noise recording"),
    ("manifest-no-rir", "jnd", "manifests: [{speech_only}]\nfamilies: [reverb_drr]\n",
     r"families: reverb_drr: the sources hold no RIR"),
    ("nmr-silent", "nmr", "speech_level_db: {low: -200, high: -190}\n", r"below -100.0 dBFS"),
    ("nmr-positive", "nmr", "speech_level_db: {low: -10, high: 5}\n", r"at most 0"),
    ("nmr-range", "nmr", "snr_db: {low: 10, high: 0}\n", r"need finite low <= high"),
    ("nmr-nan", "nmr", "snr_db: {low: .nan, high: 3}\n", r"need finite low <= high"),
    ("nmr-distortion", "nmr", "distortions: [bitcrush]\n", r"unknown or repeated"),
    ("not-a-mapping", "jnd", "- 1\n- 2\n", r"a spec must be a mapping of fields, got list"),
    ("scalar", "jnd", "42\n", r"a spec must be a mapping of fields, got int"),
    ("bad-yaml", "jnd", "num_examples: [1, 2\n", r"not valid YAML"),
    ("empty", "jnd", "", r"the spec file is empty"),
    ("comments-only", "jnd", "# nothing here\n\n", r"the spec file is empty"),
    ("binary", "jnd", b"\x7fELF\x02\x01\x01\x00\xff\xfe\x00", r"not a text \(UTF-8\) spec file"),
    ("latin-1", "jnd", "# caf\xe9\nseed: 1\n".encode("latin-1"), r"not a text \(UTF-8\)"),
    ("no-queries", "jnd", "queries_per_sequence: 0\n", r"queries_per_sequence: Input should be"),
    ("strength-over-100", "jnd", "strength: {low: 0, high: 150}\n", r"strength.high: .*100"),
    ("negative-seed", "jnd", "seed: -1\n", r"seed: Input should be greater"),
    ("zero-clip", "jnd", "clip_seconds: 0\n", r"clip_seconds: Input should be greater"),
    ("fractional-rate", "jnd", "sample_rate: 16000.5\n", r"sample_rate: .*fractional part"),
    ("float-text-count", "jnd", "num_examples: 1e3\n", r"num_examples: .*valid integer"),
    ("family-not-list", "jnd", "families: white_noise\n", r"families: Input should be a valid list"),
    ("repeated-family", "jnd", "families: [eq, eq]\n", r"families: \['eq'\] listed more than once"),
    ("codec-bitrate", "codec", "bitrates: [1000]\n", r"bitrates: need distinct MP3 bitrates"),
    ("codec-no-bitrate", "codec", "bitrates: []\n", r"bitrates: need distinct MP3 bitrates"),
    ("codec-patch", "codec", "patch: mdct\n", r"patch: Input should be 'stft' or 'time'"),
    ("codec-patch-and-clip", "codec", "patch: stft\nclip_seconds: 2\n",
     r"clip_seconds: patch 'stft' sets the length to 66048"),
    ("codec-kind", "codec", "source_kinds: [noise]\n", r"source_kinds.0: Input should be"),
    ("codec-context", "codec", "context_seconds: -1\n", r"context_seconds: Input should be"),
    ("triplet-unknown-field", "triplet", "nosuch: 1\n", r"nosuch: Extra inputs"),
]  # fmt: skip


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("manifests")
    sf.write(root / "s.wav", np.random.default_rng(0).standard_normal(64000) * 0.1, 16000)
    pq.write_table(
        pa.table({"id": ["s1"], "path": ["s.wav"], "kind": ["speech"], "duration_s": [4.0]}),
        root / "speech_only.parquet",
    )
    pq.write_table(pa.table({"file": ["a.wav"], "type": ["speech"]}), root / "bad.parquet")
    (root / "not.parquet").write_text("id,path\n")
    return {
        "speech_only": str(root / "speech_only.parquet"),
        "bad_columns": str(root / "bad.parquet"),
        "not_parquet": str(root / "not.parquet"),
    }


@pytest.mark.parametrize(("recipe", "content", "message"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_bad_spec_is_refused_before_any_work(
    recipe, content, message, files, tmp_path, capsys, demo_corpus
):
    spec = tmp_path / "spec.yaml"
    if isinstance(content, str):
        for name, path in files.items():
            content = content.replace("{" + name + "}", path)
        spec.write_text(content)
    else:
        spec.write_bytes(content)
    out = tmp_path / "out"
    code = main(["build", recipe, "--local", "--config", str(spec), "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1, err  # one line, no traceback
    assert re.search(message, err), err
    assert not out.exists()  # refused before build.json or any shard


def test_the_suite_covers_enough_kinds():
    assert len(CASES) >= 30
