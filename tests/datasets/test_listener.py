"""The simulated listener: perceptual distance, answers, panel, and staircases over real audio."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from scipy.stats import norm

from pamflow.datasets.listener import (
    JND_DISTANCE_DB,
    ListenerError,
    ListenerPanel,
    SimulatedListener,
    perceptual_distance,
)
from pamflow.datasets.psychometric import Staircase
from pamflow.measures import active_power
from pamflow.testing import speech_like

SR = 16000


def _snr_db(rho: float) -> float:
    """Additive-noise axis of DPAM Table 1: SNR 66 dB at rho = 0 down to 2 dB at rho = 100."""
    return 66.0 - 0.64 * rho


def _noise_axis(seed: int, colour: str = "white"):
    """A reference and a function rho -> reference + noise at SNR(rho) (against active speech)."""
    x = speech_like(2.5, SR, seed=seed)
    rng = np.random.default_rng(1000 + seed)
    noise = rng.standard_normal(x.size)
    if colour == "pink":
        spec = np.fft.rfft(noise)
        freqs = np.fft.rfftfreq(x.size, 1 / SR)
        spec[1:] /= np.sqrt(freqs[1:])
        spec[0] = 0.0
        noise = np.fft.irfft(spec, x.size)
    noise /= np.sqrt(np.mean(noise**2))
    p = active_power(x, SR)

    def perturb(rho: float) -> np.ndarray:
        gain = np.sqrt(p / 10.0 ** (_snr_db(rho) / 10.0))
        return (x + gain * noise).astype(np.float32)

    return x, perturb


@pytest.fixture(scope="module")
def speech():
    return _noise_axis(0)


def test_distance_is_zero_for_identical_audio_and_symmetric(speech):
    x, perturb = speech
    assert perceptual_distance(x, x.copy(), SR) == 0.0
    y = perturb(40.0)
    d = perceptual_distance(x, y, SR)
    assert d > 0
    assert perceptual_distance(y, x, SR) == pytest.approx(d, rel=1e-9)
    # the same gain on both sides changes nothing (no playback level is assumed)
    assert perceptual_distance(0.3 * x, 0.3 * y, SR) == pytest.approx(d, rel=1e-6)
    assert perceptual_distance(np.zeros(8000), np.zeros(8000), SR) == 0.0


def test_distance_grows_with_white_noise_level(speech):
    x, _ = speech
    noise = np.random.default_rng(7).standard_normal(x.size)
    p = active_power(x, SR)
    snrs = [66, 60, 50, 40, 34, 30, 20, 10, 2]
    d = [perceptual_distance(x, x + noise * np.sqrt(p / 10 ** (s / 10)), SR) for s in snrs]
    assert np.all(np.diff(d) > 0), d
    assert d[0] < 0.05  # 66 dB SNR: next to nothing
    assert 0.2 < d[4] < 1.0  # 34 dB SNR (rho = 50): near the typical JND distance
    assert d[-1] > 10.0


def test_distance_is_monotone_along_a_dense_noise_axis():
    x, perturb = _noise_axis(1)
    d = np.array([perceptual_distance(x, perturb(r), SR) for r in np.linspace(0, 100, 41)])
    assert np.all(np.diff(d) > 0)


def test_a_level_change_is_bounded_by_its_size(speech):
    x, _ = speech
    for gain_db in (0.5, 1.0, 3.0):
        d = perceptual_distance(x, x * 10 ** (-gain_db / 20), SR)
        assert 0.2 * gain_db < d <= gain_db + 1e-9


def test_distance_rejects_bad_audio(speech):
    x, _ = speech
    bad = x.copy()
    bad[10] = np.nan
    with pytest.raises(ListenerError, match="test.*NaN"):
        perceptual_distance(x, bad, SR)
    with pytest.raises(ListenerError, match="too short"):
        perceptual_distance(x[:100], x[:100], SR)
    with pytest.raises(ListenerError, match="sample_rate"):
        perceptual_distance(x, x, 0)
    with pytest.raises(ListenerError, match="ref.*mono"):
        perceptual_distance(np.zeros((2, 3, 4)), x, SR)


def test_p_different_follows_the_psychometric_function():
    listener = SimulatedListener(threshold=0.5, slope=0.1, lapse=0.04, seed=1)
    assert listener.p_different(0.5) == pytest.approx(0.5)
    assert listener.p_different(0.6) == pytest.approx(0.02 + 0.96 * norm.cdf(1.0))
    assert listener.p_different(0.0) == pytest.approx(0.02, abs=1e-6)
    assert listener.p_different(10.0) == pytest.approx(0.98)
    p = [listener.p_different(d) for d in np.linspace(0, 1, 11)]
    assert np.all(np.diff(p) > 0)
    with pytest.raises(ListenerError, match="distance"):
        listener.p_different(float("nan"))


def test_answers_come_from_the_listeners_own_generator():
    a = SimulatedListener(0.5, 0.1, 0.05, seed=42)
    b = SimulatedListener.from_dict(a.to_dict())
    answers_a = [a.answer_distance(0.55) for _ in range(2000)]
    answers_b = [b.answer_distance(0.55) for _ in range(2000)]
    assert answers_a == answers_b
    assert np.mean(answers_a) == pytest.approx(a.p_different(0.55), abs=0.04)
    c = pickle.loads(pickle.dumps(SimulatedListener(0.5, 0.1, 0.05, seed=42)))
    assert [c.answer_distance(0.55) for _ in range(50)] == answers_a[:50]


def test_answer_uses_the_audio_pair(speech):
    x, perturb = speech
    listener = SimulatedListener(threshold=JND_DISTANCE_DB, slope=0.05, lapse=0.0, seed=3)
    assert [listener.answer(x, perturb(0.0), SR) for _ in range(20)] == [0] * 20
    assert [listener.answer(x, perturb(100.0), SR) for _ in range(20)] == [1] * 20


def test_true_jnd_strength_solves_the_distance_curve():
    listener = SimulatedListener(threshold=0.6, slope=0.1, lapse=0.0)
    assert listener.true_jnd_strength(lambda r: r / 50.0) == pytest.approx(30.0, abs=0.02)
    assert listener.true_jnd_strength(lambda r: 0.01 * np.exp(r / 20)) == pytest.approx(
        20 * np.log(60.0), abs=0.02
    )
    assert listener.true_jnd_strength(lambda r: 1.0 + r) == 0.0  # always above threshold
    assert listener.true_jnd_strength(lambda r: 0.001 * r) == 100.0  # never reaches it


def test_listener_parameters_are_validated():
    with pytest.raises(ListenerError, match="threshold"):
        SimulatedListener(threshold=0.0, slope=0.1)
    with pytest.raises(ListenerError, match="slope"):
        SimulatedListener(threshold=0.5, slope=-1.0)
    with pytest.raises(ListenerError, match="lapse"):
        SimulatedListener(threshold=0.5, slope=0.1, lapse=1.0)
    with pytest.raises(ListenerError, match="slope_ratio"):
        ListenerPanel(slope_ratio=(0.5, 0.1))


def test_panel_draws_a_reproducible_log_normal_population():
    panel = ListenerPanel()
    people = panel.sample(np.random.default_rng(0), 2000)
    again = panel.sample(np.random.default_rng(0), 2000)
    assert [p.to_dict() for p in people[:20]] == [p.to_dict() for p in again[:20]]
    t = np.array([p.threshold for p in people])
    assert np.median(t) == pytest.approx(JND_DISTANCE_DB, rel=0.08)
    assert np.std(np.log(t)) == pytest.approx(panel.threshold_log_sd, rel=0.1)
    ratio = np.array([p.slope / p.threshold for p in people])
    assert ratio.min() >= panel.slope_ratio[0] and ratio.max() <= panel.slope_ratio[1]
    lapses = np.array([p.lapse for p in people])
    assert lapses.min() >= panel.lapse[0] and lapses.max() <= panel.lapse[1]
    assert len({p.seed for p in people}) == len(people)
    # on the class, sample() draws from the default panel
    default = ListenerPanel.sample(np.random.default_rng(0), 5)
    explicit = ListenerPanel().sample(np.random.default_rng(0), 5)
    assert [p.to_dict() for p in default] == [p.to_dict() for p in explicit]
    narrow = ListenerPanel(threshold_median=2.0, threshold_log_sd=0.0).sample(
        np.random.default_rng(0), 3
    )
    assert [p.threshold for p in narrow] == [2.0, 2.0, 2.0]


def test_staircase_on_real_audio_converges_to_the_listeners_jnd():
    # measured over 16 listeners x 30 questions: error bias 0.1, rms 0.7, max 1.5 strength units
    listeners = ListenerPanel().sample(np.random.default_rng(7), 4)
    for i, listener in enumerate(listeners):
        x, perturb = _noise_axis(i % 2)
        truth = listener.true_jnd_strength(
            lambda r, x=x, f=perturb: perceptual_distance(x, f(r), SR)
        )
        assert 25.0 < truth < 75.0  # the calibration puts the JND mid-axis
        stairs = Staircase(rng=np.random.default_rng(100 + i))
        for _ in range(30):
            rho = stairs.next()
            stairs.record(rho, listener.answer(x, perturb(rho), SR))
        assert abs(stairs.estimate.mu - truth) <= 4.0, (listener, truth, stairs.estimate)


def test_panel_labels_are_balanced_with_ten_questions_per_reference_and_axis():
    # DPAM: 10 questions per reference and direction; measured 47..57 % "different" over
    # six panels of 10 listeners
    listeners = ListenerPanel().sample(np.random.default_rng(3), 8)
    answers: list[int] = []
    for i, listener in enumerate(listeners):
        for ref in range(2):
            for colour in ("white", "pink"):
                x, perturb = _noise_axis(10 + ref, colour)
                stairs = Staircase(rng=np.random.default_rng(1000 + 10 * i + ref))
                for _ in range(10):
                    rho = stairs.next()
                    stairs.record(rho, listener.answer(x, perturb(rho), SR))
                answers += [h for _, h in stairs.history]
    share = float(np.mean(answers))
    assert 0.40 <= share <= 0.60, share
