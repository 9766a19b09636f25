"""The JND active-learning sampler (DPAM section 2.1): likelihood, fit, staircase."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from pamflow.datasets.psychometric import (
    LAPSE,
    Fit,
    Prior,
    PsychometricError,
    Staircase,
    fit,
    log_likelihood_grid,
    next_strength,
    psychometric,
)


def _listener(true_mu: float, true_sigma: float, rng: np.random.Generator, lapse: float = LAPSE):
    """A synthetic listener following the model exactly."""

    def answer(rho: float) -> int:
        return int(rng.random() < psychometric(rho, true_mu, true_sigma, lapse))

    return answer


def _run(true_mu: float, true_sigma: float, seed: int, n: int = 30):
    rng = np.random.default_rng(seed)
    answer = _listener(true_mu, true_sigma, rng)
    history: list[tuple[float, int]] = []
    for _ in range(n):
        rho = next_strength(history, rng)
        history.append((rho, answer(rho)))
    return fit(history), history


def test_psychometric_function_shape():
    assert psychometric(40.0, 40.0, 5.0) == pytest.approx(0.5)
    assert psychometric(0.0, 60.0, 2.0) == pytest.approx(LAPSE / 2)
    assert psychometric(100.0, 40.0, 2.0) == pytest.approx(1 - LAPSE / 2)
    assert psychometric(45.0, 40.0, 5.0, lapse=0.0) == pytest.approx(norm.cdf(1.0))
    p = psychometric(np.linspace(0, 100, 11), 50.0, 10.0)
    assert np.all(np.diff(p) > 0)


@pytest.mark.parametrize("lapse", [0.0, 0.05])
def test_log_likelihood_matches_the_paper_formula(lapse):
    rng = np.random.default_rng(3)
    history = [
        (float(r), int(h))
        for r, h in zip(rng.uniform(0, 100, 25), rng.integers(0, 2, 25), strict=True)
    ]
    mu_grid = np.array([5.0, 30.0, 47.5, 90.0])
    sigma_grid = np.array([1.5, 8.0, 40.0])
    ll = log_likelihood_grid(history, mu_grid=mu_grid, sigma_grid=sigma_grid, lapse=lapse)
    assert ll.shape == (4, 3)
    for i, mu in enumerate(mu_grid):
        for j, sigma in enumerate(sigma_grid):
            # L = prod_j h_j c_j + (1 - h_j)(1 - c_j), summed in logs; 1 - c via sf (no
            # cancellation far above mu), logcdf/logsf where c underflows (lapse = 0)
            expected = 0.0
            for rho, h in history:
                if lapse == 0:
                    f = norm.logcdf if h else norm.logsf
                    expected += float(f(rho, loc=mu, scale=sigma))
                    continue
                c = lapse / 2 + (1 - lapse) * norm.cdf(rho, loc=mu, scale=sigma)
                not_c = lapse / 2 + (1 - lapse) * norm.sf(rho, loc=mu, scale=sigma)
                expected += math.log(h * c + (1 - h) * not_c)
            assert ll[i, j] == pytest.approx(expected, rel=1e-9, abs=1e-9)
    assert np.all(np.isfinite(ll))


@pytest.mark.parametrize(("mu", "sigma"), [(40.0, 8.0), (20.0, 3.0), (75.0, 15.0)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fit_recovers_mu_and_sigma(mu, sigma, seed):
    # 800 answers at random strengths; over 12 seeds mu was within 2.75, sigma x0.78..1.30
    rng = np.random.default_rng(seed)
    rho = rng.uniform(0, 100, 800)
    answers = (rng.random(800) < psychometric(rho, mu, sigma)).astype(int)
    est = fit(list(zip(rho, answers, strict=True)))
    assert isinstance(est, Fit)
    assert abs(est.mu - mu) <= 4.0
    assert 0.6 <= est.sigma / sigma <= 1.5
    assert est.loglik < 0
    plain = fit(list(zip(rho, answers, strict=True)), prior=None)
    assert abs(plain.mu - est.mu) <= 0.5  # with many answers the prior does not matter


def test_fit_with_lapse_zero_and_no_prior_is_plain_ml():
    rng = np.random.default_rng(5)
    rho = rng.uniform(0, 100, 600)
    answers = (rng.random(600) < psychometric(rho, 55.0, 6.0, lapse=0.0)).astype(int)
    est = fit(list(zip(rho, answers, strict=True)), lapse=0.0, prior=None)
    assert abs(est.mu - 55.0) <= 3.0
    ll = log_likelihood_grid(list(zip(rho, answers, strict=True)), lapse=0.0)
    assert est.loglik == pytest.approx(ll.max())


def test_plain_ml_breaks_ties_in_the_middle_of_a_separable_gap():
    est = fit([(50.0, 0), (75.0, 1)], prior=None)
    assert est.mu == pytest.approx(62.5)
    assert est.sigma == pytest.approx(1.0, rel=0.2)  # sigma collapses without a prior
    weak = fit([(50.0, 0), (75.0, 1)])
    assert 55.0 < weak.mu < 70.0 and weak.sigma > 3.0


@pytest.mark.parametrize("true_mu", [10.0, 35.0, 60.0, 85.0])
def test_staircase_converges_to_the_true_threshold(true_mu):
    # measured over 40 seeds with sigma = 5: |error| <= 3.0, rms 1.3..1.5
    late: list[int] = []
    for seed in range(5):
        est, history = _run(true_mu, 5.0, seed)
        assert abs(est.mu - true_mu) <= 5.0, (seed, est)
        late += [h for _, h in history[10:]]
        # the questions concentrate near the threshold
        assert np.median([abs(r - true_mu) for r, _ in history[10:]]) <= 8.0
    assert 0.35 <= np.mean(late) <= 0.65  # answers along a converged sequence are balanced


def test_degenerate_histories_give_finite_strengths_that_move_the_right_way():
    assert next_strength([]) == 50.0
    assert next_strength([], start=20.0) == 20.0
    same: list[tuple[float, int]] = []
    diff: list[tuple[float, int]] = []
    for _ in range(4):
        up = next_strength(same)
        down = next_strength(diff)
        assert math.isfinite(up) and math.isfinite(down)
        if same:
            assert up > same[-1][0] + 3.0  # "same" -> the next question is stronger
            assert down < diff[-1][0] - 3.0  # "different" -> milder
        same.append((up, 0))
        diff.append((down, 1))
    assert same[-1][0] > 80.0 and diff[-1][0] < 20.0  # and it explores fast
    # without the weak prior the one-sided likelihood is flat up to the grid edge, and the
    # plain ML estimate leaps far away; the weak prior takes a measured step instead
    for lapse in (0.0, LAPSE):
        assert fit([(50.0, 0)], prior=None, lapse=lapse).mu > 80.0
        assert fit([(50.0, 1)], prior=None, lapse=lapse).mu < 20.0
    assert 55.0 < fit([(50.0, 0)]).mu < 75.0
    assert 25.0 < fit([(50.0, 1)]).mu < 45.0


def test_jitter_draws_from_the_rng_and_stays_in_range():
    history = [(40.0, 0), (60.0, 1), (50.0, 1), (45.0, 0), (48.0, 1)]
    est = fit(history)
    assert next_strength(history) == est.mu  # no rng: no jitter
    draws = np.array([next_strength(history, np.random.default_rng(s)) for s in range(300)])
    assert abs(draws.mean() - est.mu) < 0.1 * est.sigma
    assert draws.std() == pytest.approx(0.3 * est.sigma, rel=0.2)
    a = next_strength(history, np.random.default_rng(9))
    assert a == next_strength(history, np.random.default_rng(9))
    assert next_strength(history, np.random.default_rng(9), jitter=0.0) == est.mu
    edge = [(r, 1) for r in (5.0, 3.0, 1.0, 0.5, 0.0)]
    for s in range(20):
        assert 0.0 <= next_strength(edge, np.random.default_rng(s), jitter=3.0) <= 100.0


def test_bad_histories_and_settings_are_rejected_with_the_reason():
    with pytest.raises(PsychometricError, match=r"history\[1\].*answer"):
        fit([(10.0, 0), (20.0, 2)])
    with pytest.raises(PsychometricError, match=r"history\[0\].*finite"):
        fit([(float("nan"), 1)])
    with pytest.raises(PsychometricError, match=r"history\[0\].*pair"):
        fit([(10.0,)])
    with pytest.raises(PsychometricError, match="lapse"):
        fit([(10.0, 1)], lapse=1.0)
    with pytest.raises(PsychometricError, match="sigma_grid"):
        fit([(10.0, 1)], sigma_grid=np.array([0.0, 1.0]))
    with pytest.raises(PsychometricError, match="jitter"):
        next_strength([(10.0, 1)], jitter=-1.0)
    with pytest.raises(PsychometricError, match=r"Prior\.mu_sd"):
        Prior(mu_sd=0.0)
    # booleans and numpy integers are valid answers
    assert fit([(30.0, np.int64(0)), (70.0, True)]).mu == fit([(30.0, 0), (70.0, 1)]).mu


def test_staircase_wraps_next_strength():
    rng = np.random.default_rng(11)
    stairs = Staircase(start=40.0, rng=np.random.default_rng(2))
    twin_rng = np.random.default_rng(2)
    answer = _listener(30.0, 4.0, rng)
    history: list[tuple[float, int]] = []
    assert stairs.next() == 40.0
    for _ in range(15):
        rho = stairs.next()
        assert rho == next_strength(history, twin_rng, start=40.0)
        h = answer(rho)
        stairs.record(rho, h)
        history.append((rho, h))
    assert len(stairs) == 15 and stairs.history == history
    assert stairs.estimate == fit(history)
    assert abs(stairs.estimate.mu - 30.0) <= 6.0
    with pytest.raises(PsychometricError, match="answer"):
        stairs.record(50.0, 3)
    with pytest.raises(PsychometricError, match="start"):
        Staircase(start=120.0)
