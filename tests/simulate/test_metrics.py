"""Memorisation metric (d1/d2 < 1/3) on constructed cases and against brute force."""

from __future__ import annotations

import numpy as np
import pytest

from scipy import stats

from rfdiff.simulate.metrics import MEMORIZATION_RATIO, binomial_interval, memorization_report, nearest_two


def _train():
    # four training points far apart: two of class 0, two of class 1
    train = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    return train, np.array([0, 0, 1, 1])


def test_exact_copy_is_memorised_and_far_sample_is_not():
    train, labels = _train()
    samples = np.array([train[0], train[3], [5.0, 5.0], [100.0, 100.0], [5.0, 0.0]])
    rep = memorization_report(samples, train, labels, 2)
    # exact copies: d1 = 0; centre of the square: d1 = d2; far away: d1/d2 → 1; midpoint of an edge: d1 = d2
    assert rep.memorized.tolist() == [True, True, False, False, False]
    assert rep.assigned_class[:2].tolist() == [0, 1]
    assert rep.assigned_class[3] == 1  # nearest training point of (100, 100) is (10, 10), class 1


def test_threshold_is_one_third():
    train, labels = _train()
    # on the segment from (0,0) to (10,0): at x, d1 = x, d2 = 10 − x; d1/d2 = 1/3 at x = 2.5
    xs = np.array([2.4, 2.6])
    samples = np.stack([xs, np.zeros(2)], axis=1)
    d1, d2, _ = nearest_two(samples, train)
    assert d1 / d2 == pytest.approx(xs / (10 - xs), rel=1e-12)
    rep = memorization_report(samples, train, labels, 2)
    assert rep.memorized.tolist() == [True, False]
    assert MEMORIZATION_RATIO == pytest.approx(1 / 3)


def test_nearest_two_matches_brute_force():
    rng = np.random.default_rng(1)
    train = rng.normal(size=(57, 9)).astype(np.float32)
    samples = rng.normal(size=(33, 9))
    d1, d2, i1 = nearest_two(samples, train, chunk=7)  # chunking must not matter
    dist = np.linalg.norm(samples[:, None, :] - train[None].astype(np.float64), axis=-1)
    srt = np.sort(dist, axis=1)
    np.testing.assert_allclose(d1, srt[:, 0], rtol=1e-10)
    np.testing.assert_allclose(d2, srt[:, 1], rtol=1e-10)
    assert np.array_equal(i1, dist.argmin(axis=1))


def test_per_class_fractions_and_intervals():
    train, labels = _train()
    rng = np.random.default_rng(0)
    copies0 = train[[0, 1]][rng.integers(0, 2, 30)] + rng.normal(0, 1e-3, (30, 2))  # 30 memorised, class 0
    novel1 = np.array([[5.0, 10.0]] * 10)  # 10 midpoints between the two class-1 points: not memorised
    copies1 = np.tile(train[2], (10, 1))  # 10 memorised class-1 copies
    rep = memorization_report(np.concatenate([copies0, novel1, copies1]), train, labels, 3)
    assert rep.count.tolist() == [30, 20, 0]
    assert rep.fraction[0] == 1.0 and rep.fraction[1] == pytest.approx(0.5)
    assert np.isnan(rep.fraction[2]) and np.isnan(rep.ci_low[2]) and np.isnan(rep.ci_high[2])  # no sample
    # 30 of 30: the exact lower bound is (α/2)^(1/m) = 0.025^(1/30), not 1 as a bootstrap would say
    assert rep.ci_high[0] == 1.0 and rep.ci_low[0] == pytest.approx(0.025 ** (1 / 30), rel=1e-12)
    # 10 of 20, symmetric about 1/2: scipy's exact interval
    ci = stats.binomtest(10, 20).proportion_ci(0.95, method="exact")
    assert (rep.ci_low[1], rep.ci_high[1]) == pytest.approx((ci.low, ci.high), rel=1e-12)
    assert rep.ci_low[1] + rep.ci_high[1] == pytest.approx(1.0, rel=1e-12)
    assert rep.overall == pytest.approx(40 / 50)


def test_nothing_memorised_has_a_positive_upper_bound():
    train, labels = _train()
    far = np.array([[5.0, 5.0]] * 7 + [[5.0, 10.0]] * 12)  # none memorised: 7 in class 0 or 1, 12 in class 1
    rep = memorization_report(far, train, labels, 2, level=0.9)
    assert np.all(rep.fraction == 0.0) and np.all(rep.ci_low == 0.0)
    # k = 0: high solves (1 − high)^m = α/2, i.e. high = 1 − (α/2)^(1/m) > 0
    np.testing.assert_allclose(rep.ci_high, 1 - 0.05 ** (1 / rep.count), rtol=1e-12)
    assert np.all(rep.ci_high > 0)


@pytest.mark.parametrize("level", [0.95, 0.8])
def test_binomial_interval_matches_scipy_exact(level):
    table = [(0, 1), (1, 1), (0, 5), (5, 5), (2, 5), (0, 40), (1, 40), (2, 40), (39, 40), (40, 40), (17, 40),
             (0, 1000), (3, 1000), (500, 1000), (1000, 1000)]
    k, n = np.array(table).T
    lo, hi = binomial_interval(k, n, level)
    for (kk, nn), a, b in zip(table, lo, hi):
        ci = stats.binomtest(int(kk), int(nn)).proportion_ci(level, method="exact")
        # both are Beta quantiles; scipy's own root-finding agrees with the closed form to ~1e-12
        assert (a, b) == pytest.approx((ci.low, ci.high), rel=1e-9, abs=1e-14), (kk, nn)
    assert np.all(hi[k == 0] > 0) and np.all(lo[k == n] < 1)


def test_binomial_interval_coverage_by_simulation():
    """2000 binomial draws at p = 0.05, n = 40: empirical coverage matches the exact coverage of the procedure.

    Exact coverage C = Σ_k Binom(k; 40, 0.05) [p ∈ CI(k)] = 0.9861 (≥ 0.95, as Clopper–Pearson guarantees);
    the empirical rate over 2000 independent draws has standard error √(C(1−C)/2000) = 0.0026, so a 4-σ
    tolerance (false-failure rate 6e-5) is 0.0105.
    """
    p, n, draws = 0.05, 40, 2000
    ks = np.arange(n + 1)
    lo, hi = binomial_interval(ks, np.full_like(ks, n))
    exact = float(np.sum(stats.binom.pmf(ks, n, p)[(lo <= p) & (p <= hi)]))
    assert exact >= 0.95
    k = np.random.default_rng(2024).binomial(n, p, size=draws)
    lo, hi = binomial_interval(k, np.full_like(k, n))
    empirical = float(np.mean((lo <= p) & (p <= hi)))
    se = np.sqrt(exact * (1 - exact) / draws)
    assert abs(empirical - exact) <= 4 * se, (empirical, exact)
    assert empirical >= 0.95 - 4 * se


def test_errors():
    train, labels = _train()
    with pytest.raises(ValueError, match="ratio"):
        memorization_report(train, train, labels, 2, ratio=1.5)
    with pytest.raises(ValueError, match="at least two"):
        nearest_two(train, train[:1])
    with pytest.raises(ValueError, match="dimension"):
        nearest_two(np.zeros((2, 3)), train)
    with pytest.raises(ValueError, match="level"):
        binomial_interval(1, 2, level=1.0)
    with pytest.raises(ValueError, match="0 <= k <= n"):
        binomial_interval(3, 2)
    with pytest.raises(ValueError, match="integers"):
        binomial_interval(0.5, 2)
