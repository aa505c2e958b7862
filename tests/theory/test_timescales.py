"""Tests of rfdiff.theory.timescales: crossings against closed forms, edge cases, root-found boundaries, exponents."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rfdiff.theory.timescales import (
    first_crossing,
    generalization_time,
    memorization_time,
    onset_time,
    reversal_boundary,
    scaling_exponents,
    curve_timescales,
)


def test_first_crossing_exact_on_loglinear_curve():
    # y linear in log τ: the log-linear interpolation is exact, whatever the grid
    taus = np.logspace(-3, 3, 37)
    y = 1.0 - 0.25 * np.log(taus)  # crosses 0 at τ = e^4
    got = float(first_crossing(taus, y, 0.0))
    assert abs(got - np.exp(4.0)) / np.exp(4.0) < 1e-12


def test_exponential_relaxation_times_converge_with_grid():
    # ε^te = m + (1−m) e^{−τ/τ0}: τ_gen = τ0 ln 2 exactly; grid error shrinks with resolution
    tau0, m = 0.37, 0.3
    errs = []
    for T in (50, 400, 3200):
        taus = np.logspace(-4, 3, T)
        eps = m + (1 - m) * np.exp(-taus / tau0)
        errs.append(abs(float(generalization_time(taus, eps)) / (tau0 * np.log(2)) - 1))
    assert errs[1] < 2e-3 and errs[2] < 3e-5 and errs[2] < errs[1] < errs[0]


def test_memorization_and_onset_closed_form():
    # ε^tr = a (1 − e^{−τ/τm}) + 1 e^{-τ/τm} style: ε = 1 − b(1 − e^{−τ/τm}), asymptote 1 − b < 0
    taus = np.logspace(-3, 5, 4000)
    b, tm = 5.0, 20.0
    eps = 1 - b * (1 - np.exp(-taus / tm))
    inf = 1 - b
    # ε = inf/2  ⇔ 1 − e^{−τ/τm} = (1 − inf/2)/b
    want_mem = -tm * np.log(1 - (1 - inf / 2) / b)
    want_on = -tm * np.log(1 - 2.0 / b)
    assert abs(float(memorization_time(taus, eps, inf)) / want_mem - 1) < 1e-4
    assert abs(float(onset_time(taus, eps)) / want_on - 1) < 1e-4
    # default asymptote = last point (plateau reached on this grid)
    assert abs(float(memorization_time(taus, eps)) / want_mem - 1) < 1e-4


def test_undefined_and_unreached_levels():
    taus = np.logspace(-2, 2, 50)
    eps_tr = 1 - 0.5 * (1 - np.exp(-taus))  # never below 0: no memorisation, no onset
    assert np.isnan(float(memorization_time(taus, eps_tr)))
    assert np.isinf(float(onset_time(taus, eps_tr)))
    # already below the level at the first grid point → NaN (grid starts too late)
    assert np.isnan(float(first_crossing(taus, np.full(50, -2.0), -1.0)))


def test_batched_and_jitted_equal_loop():
    taus = np.logspace(-3, 4, 300)
    rates = np.array([[0.5, 2.0], [10.0, 0.01]])
    eps_te = 0.2 + 0.8 * np.exp(-taus * rates[..., None])
    eps_tr = eps_te - 4 * (1 - np.exp(-taus * rates[..., None] / 50))
    ts = jax.jit(curve_timescales)(jnp.asarray(taus), eps_te, eps_tr)
    assert ts.tau_gen.shape == (2, 2)
    for i in range(2):
        for j in range(2):
            one = curve_timescales(taus, eps_te[i, j], eps_tr[i, j])
            for a, b in zip(one, ts):
                np.testing.assert_allclose(np.asarray(a), np.asarray(b)[i, j], rtol=1e-12)
    # τ_gen ∝ 1/rate: rate ratio 4 → time ratio 4 (same curve shape)
    assert abs(float(ts.tau_gen[0, 0] / ts.tau_gen[0, 1]) - 4) < 1e-2


def test_bad_input_raises():
    with pytest.raises(ValueError, match="taus"):
        first_crossing(np.array([1.0, 0.5, 2.0]), np.zeros(3), 0.0)
    with pytest.raises(ValueError, match="same shape"):
        curve_timescales(np.logspace(0, 1, 4), np.zeros(4), np.zeros(5))
    with pytest.raises(ValueError, match="bracket"):
        reversal_boundary(lambda v, x: x, [1.0], (1.0, 0.0))


def test_reversal_boundary_matches_analytic_root():
    # log ratio = log v − 2 (x − 0.5): root at x = 0.5 + log(v)/2, outside [0.05, 0.95] for large v
    f = lambda v, x: np.log(v) - 2 * (x - 0.5)
    vs = np.array([0.7, 1.0, 1.5, 10.0])
    got = reversal_boundary(f, vs, (0.05, 0.95))
    want = 0.5 + np.log(vs) / 2
    np.testing.assert_allclose(got[:3], want[:3], atol=1e-9)
    assert np.isnan(got[3])


def test_scaling_exponents_power_law():
    n = np.logspace(0, 3, 10)
    local, slope = scaling_exponents(n, 3.0 * n**1.3)
    np.testing.assert_allclose(local, 1.3, atol=1e-10)
    assert abs(slope - 1.3) < 1e-10
