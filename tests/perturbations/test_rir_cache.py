"""The reverb families' caches (issue 13): bounded, and a cached RIR is the RIR built afresh,
bit for bit, for every recording, rate and params that changes it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf

from pamflow.corpus.sources import Sources
from pamflow.perturbations import reverb, rir_cache
from pamflow.perturbations.base import get
from pamflow.testing import speech_like


@pytest.fixture(autouse=True)
def empty_caches():
    rir_cache.clear()
    yield
    rir_cache.clear()


def _rir(seed: int, sr: int = 16000) -> np.ndarray:
    """A direct impulse after 5 ms and a decaying noise tail (0.25 s)."""
    rng = np.random.default_rng(seed)
    n = sr // 4
    h = rng.standard_normal(n) * np.exp(-25.0 * np.arange(n) / sr) * 0.05
    h[: int(0.008 * sr)] = 0.0
    h[int(0.005 * sr)] = 0.9
    return h.astype(np.float32)


def _sources(tmp_path, name: str, seed: int) -> Sources:
    path = tmp_path / f"{name}.wav"
    sf.write(path, _rir(seed), 16000, subtype="FLOAT")
    return Sources([{"id": "rir/a.wav", "path": str(path), "kind": "rir", "rt60_s": 0.28}])


def test_lru_is_bounded_in_entries_and_in_bytes():
    lru: rir_cache.LRU[str] = rir_cache.LRU(max_entries=3, max_bytes=100)
    for k in "abcd":
        lru.put(k, k, 10)
    assert len(lru) == 3 and lru.get("a") is None and lru.get("b") == "b"
    lru.put("e", "e", 85)  # 4 entries, 115 bytes: the least recently used (c, d) go
    assert lru.get("c") is None and lru.get("d") is None and lru.get("b") == "b"
    assert lru.nbytes == 95
    lru.put("big", "big", 101)  # over the bound alone: not kept, nothing evicted for it
    assert lru.get("big") is None and len(lru) == 2


def test_cached_rirs_are_the_rirs_built_afresh(demo_sources):
    x = speech_like(seconds=0.5, sample_rate=16000, seed=1)
    for name in ("reverb_drr", "reverb_rt60"):
        fam = get(name)
        for sr in (16000, 8000):
            for k, rho in enumerate((0.0, 60.0, 100.0)):
                drawn = fam.sample(np.random.default_rng(k), rho, demo_sources)
                for p in (drawn, replace(drawn, engine="float64")):
                    rir_cache.clear()
                    cold = reverb.build_rir(p, sr, demo_sources)
                    y_cold = fam.apply(x, sr, p, demo_sources)
                    rir_cache.clear()
                    fam.apply(x, sr, p, demo_sources)  # fills the caches
                    hits = rir_cache.BUILT.hits + rir_cache.SPECTRA.hits
                    assert np.array_equal(reverb.build_rir(p, sr, demo_sources), cold)
                    assert np.array_equal(fam.apply(x, sr, p, demo_sources), y_cold)
                    assert rir_cache.BUILT.hits + rir_cache.SPECTRA.hits > hits
    # what the public functions hand out is the caller's: writing to it changes no cache
    h = reverb.prepared_rir(demo_sources, demo_sources.ids("rir")[0], 16000)
    h[:] = 0.0
    assert np.any(reverb.prepared_rir(demo_sources, demo_sources.ids("rir")[0], 16000))


def test_the_key_holds_the_recording_the_rate_and_the_params(tmp_path):
    one, two = _sources(tmp_path, "one", 1), _sources(tmp_path, "two", 2)  # same id
    p = reverb.DrrParams(drr_db=5.0, rir_id="rir/a.wav")
    h1, h2 = reverb.build_rir(p, 16000, one), reverb.build_rir(p, 16000, two)
    assert not np.array_equal(h1[: min(h1.size, h2.size)], h2[: min(h1.size, h2.size)])
    assert reverb.build_rir(p, 8000, one).size < h1.size
    assert not np.array_equal(reverb.build_rir(reverb.DrrParams(6.0, "rir/a.wav"), 16000, one), h1)
    q = reverb.Rt60Params(rt60_s=0.6, rir_id="rir/a.wav", seed=1)
    assert not np.array_equal(
        reverb.build_rir(q, 16000, one),
        reverb.build_rir(reverb.Rt60Params(0.6, q.rir_id, 2), 16000, one),
    )
    # and each is what a cold cache builds
    for params, sources, sr in ((p, two, 16000), (p, one, 8000), (q, one, 16000)):
        warm = reverb.build_rir(params, sr, sources)
        rir_cache.clear()
        assert np.array_equal(reverb.build_rir(params, sr, sources), warm)


class _Writeable:
    """Sources whose one RIR is a writeable array the caller may change in place."""

    def __init__(self, h: np.ndarray) -> None:
        self.h = h

    def __contains__(self, rir_id: object) -> bool:
        return rir_id == "r"

    def load(self, rir_id: str, sample_rate: int) -> np.ndarray:
        return self.h


def test_a_writeable_recording_is_known_by_its_samples():
    src = _Writeable(_rir(3))
    p = reverb.DrrParams(drr_db=0.0, rir_id="r")
    before = reverb.build_rir(p, 16000, src)
    src.h[int(0.005 * 16000)] = -0.5  # the same array, another direct path
    after = reverb.build_rir(p, 16000, src)
    rir_cache.clear()
    assert np.array_equal(after, reverb.build_rir(p, 16000, src))
    assert not np.array_equal(after, before)


def test_a_recycled_array_id_is_another_recording():
    serials, ids = set(), set()
    for _ in range(10):
        a = np.ones(1000)
        a.setflags(write=False)
        serials.add(rir_cache.recording_key(a).serial)
        ids.add(id(a))
        del a  # freed at once: its address is free for the next array
    assert len(ids) < 10  # CPython gave a later array the address of an earlier one
    assert len(serials) == 10
