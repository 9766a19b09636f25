"""Fault injection, the files `pamflow index` meets: FIFOs, links out of the folder, names
that are not UTF-8, next to every kind of bad audio. Each is quarantined with a reason
(never read, never hanging), the good files are indexed, and the manifest is written."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from pamflow.testing import audio_bytes, sine


@pytest.fixture
def odd(tmp_path):
    root = tmp_path / "src"
    root.mkdir()
    sf.write(root / "good.wav", sine(440, 1.0, 16000), 16000)
    os.mkfifo(root / "pipe.wav")  # reading it would block forever
    outside = tmp_path / "secret.wav"
    sf.write(outside, sine(330, 1.0, 16000), 16000)
    os.symlink(outside, root / "link-out.wav")
    os.symlink(root / "good.wav", root / "link-in.wav")  # a link inside is fine
    latin = os.fsencode(str(root)) + b"/caf\xe9.wav"  # Latin-1 bytes: not UTF-8
    with open(latin, "wb") as f:
        f.write(audio_bytes(sine(500, 1.0, 16000), 16000))
    (root / "silent.wav").write_bytes(audio_bytes(np.zeros(16000, np.float32), 16000))
    return root


def test_index_quarantines_odd_files_and_finishes(odd, tmp_path):
    out = tmp_path / "m.parquet"
    proc = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "pamflow"), "index", str(odd), "--out", str(out),
         "--kind", "speech"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    manifest = pq.read_table(out).to_pylist()
    assert sorted(r["id"] for r in manifest) == ["good.wav", "link-in.wav"]
    quarantine = {r["id"]: r["reason"] for r in pq.read_table(
        str(out).replace(".parquet", ".quarantine.parquet")).to_pylist()}  # fmt: skip
    assert quarantine["pipe.wav"] == "unreadable: not a regular file (a FIFO)"
    assert quarantine["link-out.wav"].startswith("unreadable: a link out of the indexed folder")
    assert quarantine["caf\ufffd.wav"] == "name: not valid UTF-8 (rename the file)"
    assert quarantine["silent.wav"].startswith("silent:")
