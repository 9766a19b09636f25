"""Decoding audio cells: the numpy fast path for float WAV agrees with libsndfile."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf

from pamflow.audio import encode
from pamflow.storage import StorageError, decode_audio
from pamflow.storage.codec import _float_wav
from pamflow.testing import audio_bytes


def test_float_wav_fast_path_matches_libsndfile():
    rng = np.random.default_rng(3)
    x = (0.7 * rng.standard_normal(3001)).astype(np.float32)  # odd length, overs kept
    data = encode(x, 22050, format="WAV", subtype="FLOAT")
    fast = _float_wav(data)
    assert fast is not None
    y, sr = fast
    ref, ref_sr = sf.read(io.BytesIO(data), dtype="float32")
    assert sr == ref_sr == 22050 and y.dtype == np.float32 and y.flags.writeable
    assert np.array_equal(y, ref) and np.array_equal(y, x)
    assert decode_audio({"bytes": data, "path": "a.wav"})[0].tolist() == x.tolist()


@pytest.mark.parametrize("subtype", ["PCM_24", "DOUBLE"])
def test_other_wavs_take_the_general_path(subtype):
    x = np.linspace(-0.5, 0.5, 800, dtype=np.float32)
    data = audio_bytes(x, 16000, subtype)
    assert _float_wav(data) is None
    y, sr = decode_audio(data)
    assert sr == 16000 and y.dtype == np.float32 and np.max(np.abs(y - x)) < 1e-6


def test_stereo_float_wav_is_downmixed_by_general_path():
    x = np.stack([np.full(100, 0.2), np.full(100, 0.4)], axis=1).astype(np.float32)
    data = audio_bytes(x, 8000, "FLOAT")
    assert _float_wav(data) is None
    y, _ = decode_audio(data)
    assert y.shape == (100,) and np.allclose(y, 0.3)


def test_bad_cells_are_named():
    x = np.zeros(100, np.float32)
    x[5] = np.nan
    with pytest.raises(StorageError, match=r"e1_ref.wav.*NaN or inf"):
        decode_audio({"bytes": audio_bytes(x, 8000, "FLOAT"), "path": "e1_ref.wav"})
    truncated = encode(np.zeros(1000, np.float32), 8000, format="WAV", subtype="FLOAT")[:-400]
    assert _float_wav(truncated) is None  # left to libsndfile, like any other file
    assert decode_audio(truncated)[0].shape == (900,)
    with pytest.raises(StorageError, match=r"audio cell e2_ref.flac: empty file"):
        decode_audio({"bytes": b"", "path": "e2_ref.flac"})
    with pytest.raises(StorageError, match="empty"):
        decode_audio({"bytes": None, "path": "e3_ref.wav"})
