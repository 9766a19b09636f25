"""Fault injection, a finished dataset tampered with: every reader refuses it with one
error naming the file (never a wrong row, never a read outside the folder), and
``pamflow inspect`` reports it.

Each case damages a fresh copy of a small three-shard dataset, then reads every row through
``Dataset.iter_rows`` and through ``ShardMapDataset``."""

from __future__ import annotations

import json
import os
import re
import shutil

import numpy as np
import pytest

from pamflow.cli import main
from pamflow.storage import Column, Dataset, SchemaVersionError, StorageError
from pamflow.storage.torch import ShardMapDataset
from pamflow.testing import sine, write_dataset


def _json(root, change):
    info = json.loads((root / "dataset.json").read_text())
    change(info)
    (root / "dataset.json").write_text(json.dumps(info))


def _flip(path, count=64):
    data = bytearray(path.read_bytes())
    for k in range(count):
        data[len(data) // 2 + k] ^= 0x5A
    path.write_bytes(bytes(data))


def _other_dataset_shard(root):
    other = write_dataset(root.parent / "other", [Column("reference", "audio")],
                          [{"reference": sine(900, 0.2)} for _ in range(3)])  # fmt: skip
    shutil.copy(f"{other}/shards/part-00000.parquet", root / "shards" / "part-00001.parquet")


def _link_out(root):
    target = root.parent / "elsewhere.parquet"
    os.replace(root / "shards" / "part-00002.parquet", target)
    os.symlink(target, root / "shards" / "part-00002.parquet")


S1 = "part-00001.parquet"
CASES = [
    ("flipped-bytes", lambda r: _flip(r / "shards" / S1), rf"{S1}: sha256 mismatch"),
    ("truncated-shard", lambda r: (r / "shards" / S1).write_bytes((r / "shards" / S1).read_bytes()[:500]),
     rf"{S1}: sha256 mismatch"),
    ("deleted-shard", lambda r: (r / "shards" / S1).unlink(), rf"{S1}: cannot read shard"),
    ("swapped-shard", _other_dataset_shard, rf"{S1}: sha256 mismatch"),
    ("sha-edited", lambda r: _json(r, lambda i: i["shards"][1].update(sha256="0" * 64)),
     rf"{S1}: sha256 mismatch"),
    ("num-rows-edited", lambda r: _json(r, lambda i: i.update(num_rows=5)),
     r"num_rows is 5 but its shards list 8 rows"),
    ("shard-rows-edited", lambda r: _json(r, lambda i: (i["shards"][0].update(rows=2),
                                                        i["shards"][1].update(rows=4))),
     r"part-00000.parquet: 3 rows in the file, 2 in dataset.json"),
    ("path-traversal", lambda r: _json(r, lambda i: i["shards"][0].update(path="../x/secret.parquet")),
     r"shard path '../x/secret.parquet' is not a shard of this dataset"),
    ("absolute-path", lambda r: _json(r, lambda i: i["shards"][0].update(path="/etc/passwd")),
     r"shard path '/etc/passwd' is not a shard"),
    ("link-out", _link_out, r"links outside the dataset folder"),
    ("json-truncated", lambda r: (r / "dataset.json").write_text('{"shards": ['),
     r"dataset.json: not valid JSON"),
    ("json-field-missing", lambda r: _json(r, lambda i: i.pop("shards")),
     r"dataset.json: field 'shards' is missing"),
    ("schema-from-the-future", lambda r: _json(r, lambda i: i.update(schema_version=99)),
     r"schema version 99"),
    ("dataset-json-gone", lambda r: (r / "dataset.json").unlink(), r"dataset.json: not found"),
]  # fmt: skip


@pytest.fixture(scope="module")
def pristine(tmp_path_factory, demo_corpus):
    from pamflow.pipeline.build import build_local

    root = tmp_path_factory.mktemp("pristine") / "ds"
    spec = {"num_examples": 8, "shard_size": 3, "clip_seconds": 0.5,
            "families": ["white_noise", "eq"], "queries_per_sequence": 2}  # fmt: skip
    build_local("jnd", spec, str(root))
    return root


@pytest.mark.parametrize(("damage", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_tampered_dataset_is_refused_by_every_reader(pristine, tmp_path, damage, message, capsys):
    root = tmp_path / "ds"
    shutil.copytree(pristine, root, symlinks=True)
    assert len(list(Dataset.open(str(root)).iter_rows())) == 8  # the copy is sound
    damage(root)
    with pytest.raises((StorageError, SchemaVersionError), match=message):
        list(Dataset.open(str(root)).iter_rows())
    with pytest.raises((StorageError, SchemaVersionError), match=message):
        ds = ShardMapDataset(str(root))
        [ds[i] for i in range(len(ds))]
    # and the CLI says so in one line, with a non-zero exit
    code = main(["inspect", str(root)])
    out = capsys.readouterr()
    assert code != 0, out
    text = out.out + out.err
    assert "Traceback" not in text and (re.search(message, text) or "mismatch" in text), text


def test_the_suite_covers_enough_tamperings():
    assert len(CASES) >= 10
    assert np.unique([c[0] for c in CASES]).size == len(CASES)
