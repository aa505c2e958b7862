"""Closed-form learning curves vs brute force: iterated GD, matrix exponentials, ridge solves, Monte Carlo."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

from rfdiff import GaussianMixture, RFModel
from rfdiff.model.diffusion import delta, forward_sample, mixture_score
from rfdiff.finite.closed_form import closed_form, finite_curves, iterate_gd, quadratic_loss
from rfdiff.finite.features import loss_from_moments, population_moments, realise, train_moments

T_DIFF = 0.05


@pytest.fixture(scope="module")
def setup():
    mix = GaussianMixture.create([0.3, 0.7], [4.0, 1.0]).with_strong_centroids([0.5, 0.5])
    model = RFModel(3.0, 1.5, T_DIFF, "tanh")
    prob = realise(jax.random.key(1), mix, model, d=24)
    mom = train_moments(prob)
    pop = population_moments(prob)
    return prob, mom, pop


@pytest.mark.slow
def test_closed_form_equals_iterated_gd(setup):
    """Acceptance: closed-form per-class train/test curves = iterated full-batch GD, rel. error < 1e-6."""
    prob, mom, pop = setup
    fc = finite_curves(prob, mom, pop)
    eta = 0.9 / float(jnp.max(fc.cf.lam))
    steps = np.array([1, 7, 60, 500, 3000])
    A = iterate_gd(mom.U, mom.V, eta, steps, delta=delta(T_DIFF), p=prob.p)
    cur = fc(steps * eta, kind="gd", step=eta)
    for i in range(len(steps)):
        for c in range(2):
            tr = loss_from_moments(A[i], mom.U_class[c], mom.V_class[c], T_DIFF, prob.p, prob.d)
            te = loss_from_moments(A[i], pop[0][c], pop[1][c], T_DIFF, prob.p, prob.d)
            assert abs(float(cur["loss_train"][c, i] / tr) - 1) < 1e-6
            assert abs(float(cur["loss_test"][c, i] / te) - 1) < 1e-6
    # the curves actually move (train loss falls by more than the tolerance by orders of magnitude)
    assert float(cur["eps_train"][0, -1]) < 0.0


def test_gradient_flow_equals_matrix_exponential(setup):
    prob, mom, pop = setup
    fc = finite_curves(prob, mom, pop)
    U, V = np.asarray(mom.U), np.asarray(mom.V)
    dl = float(delta(T_DIFF))
    for tau in (0.03, 2.0, 150.0):
        # A(τ) = −√(p/Δ) Vᵀ U⁻¹ (I − e^{−τU}) by scipy's expm, independent of the eigendecomposition
        A = -np.sqrt(prob.p / dl) * V.T @ np.linalg.solve(U, np.eye(prob.p) - scipy.linalg.expm(-tau * U))
        cur = fc(np.array([tau]))
        for c in range(2):
            want = quadratic_loss(A, pop[0][c], pop[1][c], delta=dl, p=prob.p, d=prob.d)
            assert abs(float(cur["loss_test"][c, 0] / want) - 1) < 1e-9


def test_flow_is_small_step_limit_of_gd(setup):
    prob, mom, pop = setup
    fc = finite_curves(prob, mom, pop)
    lmax = float(jnp.max(fc.cf.lam))
    taus = np.array([0.5, 5.0, 50.0])
    flow = np.asarray(fc(taus)["eps_train"])
    errs = []
    for eta in (0.4 / lmax, 0.1 / lmax, 0.025 / lmax):
        tt = np.round(taus / eta) * eta
        gd = np.asarray(fc(tt, kind="gd", step=eta)["eps_train"])
        ref = np.asarray(fc(tt)["eps_train"])
        errs.append(np.max(np.abs(gd - ref)))
    # first-order method: error ∝ η (ratio ≈ 4 for a 4× smaller step)
    assert 3.0 < errs[0] / errs[1] < 5.0 and 3.0 < errs[1] / errs[2] < 5.0
    assert flow.shape == (2, 3)


def test_normalisation_and_asymptote(setup):
    prob, mom, pop = setup
    fc = finite_curves(prob, mom, pop)
    at0 = fc(np.array([0.0]))
    np.testing.assert_allclose(np.asarray(at0["eps_train"]), 1.0, atol=1e-12)
    np.testing.assert_allclose(np.asarray(at0["eps_test"]), 1.0, atol=1e-12)
    # τ → ∞: minimiser A* = −√(p/Δ) Vᵀ U⁻¹, losses by direct solve
    dl = float(delta(T_DIFF))
    A = -np.sqrt(prob.p / dl) * np.linalg.solve(np.asarray(mom.U), np.asarray(mom.V)).T
    asy = fc.asymptote()
    for c in range(2):
        want = quadratic_loss(A, mom.U_class[c], mom.V_class[c], delta=dl, p=prob.p, d=prob.d)
        assert abs(float(asy["loss_train"][c, 0] / want) - 1) < 1e-8
    # the total train loss is the f_c-weighted class average (U = Σ f_c U_c) and never goes up along the flow
    taus = np.logspace(-3, 5, 60)
    f = prob.class_fractions
    tot = f @ np.asarray(fc(taus)["loss_train"])
    assert np.all(np.diff(tot) <= 1e-12)


def test_ridge_proxy_equals_ridge_solve(setup):
    prob, mom, pop = setup
    fc = finite_curves(prob, mom, pop)
    dl = float(delta(T_DIFF))
    tau = 3.0
    A = -np.sqrt(prob.p / dl) * np.linalg.solve(np.asarray(mom.U) + np.eye(prob.p) / tau, np.asarray(mom.V)).T
    cur = fc(np.array([tau]), kind="ridge")
    for c in range(2):
        want = quadratic_loss(A, mom.U_class[c], mom.V_class[c], delta=dl, p=prob.p, d=prob.d)
        assert abs(float(cur["loss_train"][c, 0] / want) - 1) < 1e-9


def test_mixture_score_error_against_independent_monte_carlo(setup):
    """eps_mixture = Γ_c² E_{x∼c}||s_A(x_t) − ∇log p_t(x_t)||²/d; checked by direct sampling with another seed."""
    prob, mom, pop = setup
    fc = finite_curves(prob, mom, pop, mixture_mc=4000, seed=3)
    dl = float(delta(T_DIFF))
    tau = 1.0
    U, V = np.asarray(mom.U), np.asarray(mom.V)
    A = -np.sqrt(prob.p / dl) * V.T @ np.linalg.solve(U, np.eye(prob.p) - scipy.linalg.expm(-tau * U))
    got = np.asarray(fc(np.array([tau]))["eps_mixture"])[:, 0]
    mix, d = prob.mixture, prob.d
    gam2 = np.asarray(jnp.exp(-2 * T_DIFF) * mix.variances + dl)
    Wt = prob.W / np.sqrt(d)
    key = jax.random.key(77)
    for c in range(2):
        k1, k2, key = jax.random.split(key, 3)
        n = 20000
        x0, _ = mix.sample(k1, n, d, centroids=prob.centroids, labels=jnp.full((n,), c))
        xt, _ = forward_sample(k2, x0, T_DIFF)
        sA = jnp.tanh(xt @ Wt.T) @ A.T / np.sqrt(prob.p)
        smix = mixture_score(xt, T_DIFF, mix, prob.centroids)
        err = gam2[c] * np.asarray(jnp.sum((sA - smix) ** 2, -1)) / d
        se = err.std() / np.sqrt(n)
        # both estimates are Monte Carlo: allow 5 standard errors of the direct one plus the cross-term noise
        assert abs(got[c] - err.mean()) < 5 * se + 0.02 * abs(err.mean()), (c, got[c], err.mean(), se)


def test_bad_input(setup):
    prob, mom, pop = setup
    fc = finite_curves(prob, mom, pop)
    with pytest.raises(ValueError, match="kind"):
        fc(np.array([1.0]), kind="euler")
    with pytest.raises(ValueError, match="step"):
        fc(np.array([1.0]), kind="gd", step=10.0)
    with pytest.raises(ValueError, match="taus"):
        fc(np.array([-1.0]))
    with pytest.raises(ValueError, match="U_X"):
        closed_form(mom.U, mom.V, mom.U, mom.V_class, delta=0.1, d=prob.d)
    with pytest.raises(ValueError, match="steps"):
        iterate_gd(mom.U, mom.V, 0.01, [5, 2], delta=0.1, p=prob.p)
