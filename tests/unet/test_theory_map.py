"""Class statistics → the theory's mixture and prediction (rfdiff.unet.theory_map)."""

from __future__ import annotations

import numpy as np
import pytest

from rfdiff.model.rf import RFModel
from rfdiff.theory.window import disparity_window
from rfdiff.unet.fmnist import ClassStatistics, class_statistics
from rfdiff.unet.theory_map import mixture_from_statistics, theory_prediction


def _stats(var, gram, counts=(10, 10), classes=(8, 7)):
    counts = np.asarray(counts)
    return ClassStatistics(np.asarray(classes), counts, counts / counts.sum(), np.asarray(var, float),
                           np.asarray(gram, float), np.zeros((2, 2)), np.zeros(2))


def test_mixture_is_the_moment_match_of_images():
    rng = np.random.default_rng(0)
    d = 16
    mu = np.stack([np.full(d, 0.3), np.linspace(-0.5, 0.5, d)])
    x = np.concatenate([mu[0] + 0.5 * rng.normal(size=(400, d)), mu[1] + 0.2 * rng.normal(size=(100, d))])
    y = np.repeat([3, 5], [400, 100])
    st = class_statistics(x, y, [3, 5])
    mix = mixture_from_statistics(st)
    np.testing.assert_allclose(np.asarray(mix.proportions), [0.8, 0.2], rtol=1e-12)
    # σ_c² = Tr Cov_c / d (unbiased) and M = μ_c·μ_c'/d of the sample means: the same numbers, by definition
    for c, (lo, hi) in enumerate(((0, 400), (400, 500))):
        xc = x[lo:hi]
        assert float(mix.variances[c]) == pytest.approx(np.trace(np.cov(xc, rowvar=False)) / d, rel=1e-12)
    m = np.stack([x[:400].mean(0), x[400:].mean(0)])
    np.testing.assert_allclose(np.asarray(mix.centroid_gram), m @ m.T / d, rtol=1e-12)
    with pytest.raises(ValueError, match="proportions"):
        mixture_from_statistics(st, proportions=[1.0])


def test_prediction_equals_the_window_of_the_mapped_mixture_and_orders_by_variance():
    # zero centroids, balanced: the theory's weak-centroid result (higher variance first, both times)
    st = _stats([0.3, 0.1], np.zeros((2, 2)))
    p = theory_prediction(st, d=196, n=20, psi_p=8.0, t=0.02, activation="tanh")
    w = disparity_window(mixture_from_statistics(st), RFModel(8.0, 20 / 196, 0.02, "tanh"), n_quad=1)
    np.testing.assert_array_equal(p.tau_gen, np.asarray(w.tau_gen))
    np.testing.assert_array_equal(p.tau_mem, np.asarray(w.tau_end))
    assert p.order_gen.tolist() == [8, 7] and p.order_mem.tolist() == [8, 7]
    # relabelling the classes permutes the prediction (nothing depends on the dataset label)
    q = theory_prediction(_stats([0.1, 0.3], np.zeros((2, 2)), classes=(7, 8)), d=196, n=20, psi_p=8.0, t=0.02,
                          activation="tanh")
    np.testing.assert_allclose(q.tau_gen[::-1], p.tau_gen, rtol=1e-10)
    assert q.order_gen.tolist() == [8, 7]
    with pytest.raises(ValueError, match="d and n"):
        theory_prediction(st, d=0, n=20)


def test_reversal_fraction_tells_no_flip_from_unresolved(monkeypatch):
    """A flip is root-found; no flip over a fully resolved scan is NaN; a sign change hidden behind scan points
    without a finite prediction raises instead of reading as "no flip"."""
    from types import SimpleNamespace

    from rfdiff.errors import ConvergenceError
    from rfdiff.unet import theory_map

    st = _stats([1.0, 1.0], np.zeros((2, 2)))

    def fake(flip_at, hole=None):
        def pred(stats, proportions, **kw):
            p0 = proportions[0]
            if hole is not None and hole[0] <= p0 <= hole[1]:
                return SimpleNamespace(tau_mem=np.array([np.inf, 1.0]))
            return SimpleNamespace(tau_mem=np.array([np.exp(p0 - flip_at), 1.0]))
        return pred

    monkeypatch.setattr(theory_map, "theory_prediction", fake(0.37))
    assert theory_map.reversal_fraction(st, num_scan=9) == pytest.approx(0.37, abs=2e-3)
    monkeypatch.setattr(theory_map, "theory_prediction", fake(5.0))  # log ratio < 0 everywhere: no flip
    assert np.isnan(theory_map.reversal_fraction(st, num_scan=9))
    monkeypatch.setattr(theory_map, "theory_prediction", fake(0.5, hole=(0.3, 0.7)))  # the flip sits in the hole
    with pytest.raises(ConvergenceError, match="unresolved"):
        theory_map.reversal_fraction(st, num_scan=9)
