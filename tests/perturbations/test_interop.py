"""audiomentations interop: transforms as pamflow families (bit-for-bit replay, global RNGs
untouched, no registration) and pamflow families inside an audiomentations Compose."""

from __future__ import annotations

import hashlib
import json
import pickle
import random
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from pamflow import perturbations
from pamflow.perturbations import PerturbationError, base, from_audiomentations
from pamflow.perturbations.interop import AudiomentationsParams

A = pytest.importorskip("audiomentations")

SR = 16000

#: name -> (a fresh transform, strength=, random: two seeds give different outputs)
CASES: dict[str, tuple[Callable[[], Any], Any, bool]] = {
    "Gain": (lambda: A.Gain(min_gain_db=-12, max_gain_db=0), None, True),
    "GainPinned": (lambda: A.Gain(), ("gain_db", 0.0, -20.0), False),
    "AddGaussianNoise": (
        lambda: A.AddGaussianNoise(),
        ("amplitude", 1e-3, 0.1, "exponential"),
        True,
    ),
    "AddGaussianSNR": (lambda: A.AddGaussianSNR(), ("snr_db", 40.0, 0.0), True),
    "AddColorNoise": (lambda: A.AddColorNoise(), None, True),
    "LowPassFilter": (lambda: A.LowPassFilter(), None, True),
    "HighPassFilter": (lambda: A.HighPassFilter(), None, True),
    "BandPassFilter": (lambda: A.BandPassFilter(), None, True),
    "ClippingDistortion": (lambda: A.ClippingDistortion(), None, True),
    "Mp3Compression": (lambda: A.Mp3Compression(backend="fast-mp3-augment"), None, True),
    "PolarityInversion": (lambda: A.PolarityInversion(), None, False),
    "TanhDistortion": (lambda: A.TanhDistortion(), ("distortion", 0.01, 0.7), False),
    "PitchShift": (lambda: A.PitchShift(), None, True),
    "TimeStretch": (lambda: A.TimeStretch(leave_length_unchanged=True), None, True),
}


def _global_states() -> tuple[Any, Any]:
    return random.getstate(), np.random.get_state()  # noqa: NPY002


def _same_states(a: tuple[Any, Any], b: tuple[Any, Any]) -> bool:
    (pa, na), (pb, nb) = a, b
    return pa == pb and all(
        np.array_equal(u, v) if isinstance(u, np.ndarray) else u == v
        for u, v in zip(na, nb, strict=True)
    )


def _family(case: str):
    make, strength, _ = CASES[case]
    return from_audiomentations(make(), name=f"am_{case.lower()}", strength=strength)


@pytest.mark.parametrize("case", sorted(CASES))
def test_replay_bit_for_bit(case: str, speech_clip: np.ndarray) -> None:
    random.seed(123)
    np.random.seed(456)  # noqa: NPY002
    before = _global_states()
    fam = _family(case)
    params = fam.sample(np.random.default_rng(11), 60, audio=speech_clip, sample_rate=SR)
    assert params.parameters_dict is not None and params.seed >= 0
    y = fam.apply(speech_clip, SR, params)
    assert y.dtype == np.float32 and y.shape == speech_clip.shape
    assert np.abs(y).max() <= 1.0
    # from JSON, on a fresh transform: the same output, bit for bit
    data = json.loads(json.dumps(params.to_dict()))
    rebuilt = _family(case).params_from_dict(data)
    assert rebuilt == params and hash(rebuilt) == hash(params)
    assert np.array_equal(_family(case).apply(speech_clip, SR, rebuilt), y)
    # params without recorded parameters: drawn at apply from the seed, the same output
    lazy = _family(case).sample(np.random.default_rng(11), 60)
    assert lazy.parameters is None and lazy.seed == params.seed
    assert np.array_equal(fam.apply(speech_clip, SR, lazy), y)
    assert fam.resolve(lazy, speech_clip, SR) == params
    # the caller's global generators are as they were
    assert _same_states(before, _global_states())
    others = [
        fam.apply(speech_clip, SR, fam.sample(np.random.default_rng(s), 60)) for s in (1, 2, 3)
    ]
    differ = any(not np.array_equal(o, y) for o in others)
    assert differ == CASES[case][2]
    assert _same_states(before, _global_states())


def test_noise_drawn_in_apply_follows_the_seed(speech_clip: np.ndarray) -> None:
    fam = _family("AddGaussianNoise")
    p = fam.sample(np.random.default_rng(0), 50, audio=speech_clip, sample_rate=SR)
    other = AudiomentationsParams.from_dict({**p.to_dict(), "seed": p.seed + 1})
    assert other.parameters == p.parameters  # same amplitude, another noise
    a, b = fam.apply(speech_clip, SR, p), fam.apply(speech_clip, SR, other)
    assert not np.array_equal(a, b)
    assert np.std(a - speech_clip) == pytest.approx(np.std(b - speech_clip), rel=0.05)


def test_replay_in_a_fresh_process(speech_clip: np.ndarray) -> None:
    fam = _family("AddColorNoise")
    params = fam.sample(np.random.default_rng(5), 40, audio=speech_clip, sample_rate=SR)
    digest = hashlib.sha256(fam.apply(speech_clip, SR, params).tobytes()).hexdigest()
    code = (
        "import hashlib, json, sys\n"
        "import audiomentations as A\n"
        "from pamflow.perturbations import from_audiomentations\n"
        "from pamflow.testing import speech_like\n"
        "x = speech_like(seconds=2.0, sample_rate=16000, seed=7)\n"
        "fam = from_audiomentations(A.AddColorNoise(), name='x')\n"
        "p = fam.params_from_dict(json.loads(sys.argv[1]))\n"
        "print(hashlib.sha256(fam.apply(x, 16000, p).tobytes()).hexdigest())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, params.to_json()],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert out.stdout.strip() == digest


def test_strength_mapping_and_overrides(speech_clip: np.ndarray) -> None:
    fam = _family("GainPinned")
    assert fam.mapping == "linear" and (fam.mild, fam.strong) == (0.0, -20.0)
    assert fam.overrides(25) == {"min_gain_db": -5.0, "max_gain_db": -5.0}
    p = fam.sample(np.random.default_rng(0), 100)
    y = fam.apply(speech_clip, SR, p)
    assert np.allclose(y, speech_clip * 0.1, atol=1e-6)
    clip = from_audiomentations(
        A.ClippingDistortion(), name="c", strength=("percentile_threshold", 0, 40)
    )
    assert clip.overrides(50) == {"min_percentile_threshold": 20, "max_percentile_threshold": 20}
    snr = from_audiomentations(
        A.AddGaussianSNR(),
        name="snr",
        category="additive",
        strength=lambda rho: {"min_snr_db": 40 - rho / 4, "max_snr_db": 40 - rho / 4},
    )
    assert snr.category == "additive" and snr.mapping == "callable"
    assert snr.sample(np.random.default_rng(0), 80).overrides_dict == {
        "min_snr_db": 20.0,
        "max_snr_db": 20.0,
    }
    with pytest.raises(PerturbationError, match="no attribute"):
        from_audiomentations(A.Gain(), name="g", strength=("loudness", 0, 1))
    with pytest.raises(PerturbationError, match="category"):
        from_audiomentations(A.Gain(), name="g", category="nope")
    with pytest.raises(PerturbationError, match="waveform transform"):
        from_audiomentations(object(), name="g")
    with pytest.raises(PerturbationError, match="strength"):
        fam.sample(np.random.default_rng(0), 101)


def test_not_registered_unless_asked() -> None:
    before = perturbations.names()
    fam = from_audiomentations(A.PolarityInversion(), name="am_polarity")
    assert perturbations.names() == before
    with pytest.raises(PerturbationError, match="unknown perturbation"):
        perturbations.get("am_polarity")
    # unregistered families pickle by value
    again = pickle.loads(pickle.dumps(fam))
    assert again.name == fam.name and again is not fam
    try:
        reg = from_audiomentations(A.PolarityInversion(), name="am_polarity", register=True)
        assert perturbations.get("am_polarity") is reg
        assert pickle.loads(pickle.dumps(reg)) is reg
        with pytest.raises(PerturbationError, match="twice"):
            from_audiomentations(A.Gain(), name="am_polarity", register=True)
    finally:
        base._REGISTRY.pop("am_polarity", None)
    assert perturbations.names() == before


def test_adapter_inside_compose(speech_clip: np.ndarray) -> None:
    adapter = perturbations.AudiomentationsAdapter("mulaw", strength=70, p=1.0)
    assert isinstance(adapter, A.core.transforms_interface.BaseWaveformTransform)
    chain = A.Compose([A.Gain(min_gain_db=-6, max_gain_db=-6, p=1.0), adapter])
    random.seed(0)
    y = chain(samples=speech_clip, sample_rate=SR)
    assert y.shape == speech_clip.shape and not np.allclose(y, speech_clip)
    recorded = adapter.parameters["pamflow"]
    assert recorded["family"] == "mulaw" and recorded["strength"] == 70.0
    fam = perturbations.get("mulaw")
    params = fam.params_from_dict(recorded["params"])
    gained = A.Gain(min_gain_db=-6, max_gain_db=-6, p=1.0)(speech_clip, SR)
    assert np.array_equal(fam.apply(gained, SR, params), y)
    # frozen parameters replay; random.seed makes the Compose repeatable
    chain.freeze_parameters()
    assert np.array_equal(chain(samples=speech_clip, sample_rate=SR), y)
    chain.unfreeze_parameters()
    random.seed(0)
    assert np.array_equal(chain(samples=speech_clip, sample_rate=SR), y)
    # p = 0 never applies
    off = perturbations.AudiomentationsAdapter("mulaw", strength=70, p=0.0)
    assert np.array_equal(off(speech_clip, SR), speech_clip)
    # it pickles (Compose pipelines go to DataLoader workers)
    clone = pickle.loads(pickle.dumps(adapter))
    assert clone.parameters["pamflow"] == recorded


def test_missing_extra_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from pamflow.perturbations import interop

    monkeypatch.setitem(sys.modules, "audiomentations", None)
    with pytest.raises(ImportError, match=r"pamflow\[audiomentations\]") as err:
        from_audiomentations(object(), name="x")
    assert "\n" not in str(err.value)
    monkeypatch.setattr(interop, "_ADAPTER", [])
    with pytest.raises(ImportError, match=r"pip install"):
        _ = interop.AudiomentationsAdapter
