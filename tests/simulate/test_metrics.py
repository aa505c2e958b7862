"""Memorisation metric (d1/d2 < 1/3) on constructed cases and against brute force."""

from __future__ import annotations

import numpy as np
import pytest

from rfdiff.simulate.metrics import MEMORIZATION_RATIO, memorization_report, nearest_two


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


def test_per_class_fractions_and_bootstrap():
    train, labels = _train()
    rng = np.random.default_rng(0)
    copies0 = train[[0, 1]][rng.integers(0, 2, 30)] + rng.normal(0, 1e-3, (30, 2))  # 30 memorised, class 0
    novel1 = np.array([[5.0, 10.0]] * 10)  # 10 midpoints between the two class-1 points: not memorised
    copies1 = np.tile(train[2], (10, 1))  # 10 memorised class-1 copies
    rep = memorization_report(np.concatenate([copies0, novel1, copies1]), train, labels, 3, n_boot=500)
    assert rep.count.tolist() == [30, 20, 0]
    assert rep.fraction[0] == 1.0 and rep.fraction[1] == pytest.approx(0.5)
    assert np.isnan(rep.fraction[2]) and np.isnan(rep.ci_low[2])  # no sample assigned to class 2
    assert rep.ci_low[0] == rep.ci_high[0] == 1.0  # every resample is all-memorised
    assert 0.0 <= rep.ci_low[1] < 0.5 < rep.ci_high[1] <= 1.0
    # binomial standard error for p = 1/2, m = 20 is 0.112: the 95 % interval spans about ±0.22
    assert rep.ci_high[1] - rep.ci_low[1] == pytest.approx(2 * 1.96 * 0.1118, abs=0.08)
    assert rep.overall == pytest.approx(40 / 50)


def test_errors():
    train, labels = _train()
    with pytest.raises(ValueError, match="ratio"):
        memorization_report(train, train, labels, 2, ratio=1.5)
    with pytest.raises(ValueError, match="at least two"):
        nearest_two(train, train[:1])
    with pytest.raises(ValueError, match="dimension"):
        nearest_two(np.zeros((2, 3)), train)
