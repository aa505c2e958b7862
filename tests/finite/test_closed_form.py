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


# ------------------------------------------------------------------ asymptotic (ridge-time) theory
from rfdiff.theory.curves import theory_curves  # noqa: E402
from rfdiff.theory.timescales import curve_timescales  # noqa: E402

TH_MODEL = RFModel(2.0, 1.0, 0.01, "tanh")


def test_theory_total_train_loss_identity():
    """Σ_c π_c L_c^tr = 1 − Q1 + μ dQ1/dμ (Tr VᵀRURV = Tr VᵀRV − μ Tr VᵀR²V): checks the implicit-function
    ε-derivatives against a finite difference in μ of the equal-point signal Q1 = Δ πᵀRπ."""
    mix = GaussianMixture.create([0.3, 0.7], [4.0, 1.0]).with_strong_centroids([1.0, 0.5])
    pi = np.asarray(mix.proportions)
    for tau in (0.3, 30.0):
        h = 1e-4
        taus = np.array([tau / (1 + h), tau, tau / (1 - h)])  # μ = (1 ± h)/τ around μ0 = 1/τ
        out = theory_curves(mix, TH_MODEL, np.sort(taus), n_quad=64)
        q1 = pi @ out["signal"]  # increasing τ ⇒ decreasing μ: columns μ0(1+h), μ0, μ0(1−h)
        mu0 = 1 / tau
        dq1 = (q1[0] - q1[2]) / (2 * h * mu0)
        lhs = pi @ out["loss_train"][:, 1]
        rhs = 1 - q1[1] + mu0 * dq1
        assert abs(lhs - rhs) < 1e-7 * max(1.0, abs(lhs)), (lhs, rhs)


@pytest.mark.slow
def test_theory_identical_classes_equal_single_class():
    one = theory_curves(GaussianMixture.create([1.0], [2.0]), TH_MODEL, np.logspace(-2, 4, 7))
    two = theory_curves(GaussianMixture.create([0.3, 0.7], [2.0, 2.0]), TH_MODEL, np.logspace(-2, 4, 7))
    for k in ("eps_train", "eps_test"):
        np.testing.assert_allclose(two[k], np.repeat(one[k], 2, axis=0), rtol=1e-8, atol=1e-10)


@pytest.mark.slow
def test_theory_matches_finite_d_ridge_closed_form():
    """d = 120 (regime A): theory vs the exact finite-d ridge-clock closed form; gaps shrink ~ d^{-1/2}
    (validation report), here bounded by 5% (τ_gen, τ_onset) and 15% (τ_mem, ε^tr(∞))."""
    mix = GaussianMixture.create([0.5, 0.5], [4.0, 1.0])
    taus = np.logspace(-3, 6, 120)
    th = theory_curves(mix, TH_MODEL, taus)
    prob = realise(jax.random.key(0), mix, TH_MODEL, d=120)
    mom = train_moments(prob)
    pop = population_moments(prob)
    fc = finite_curves(prob, mom, pop)
    inf = np.asarray(fc.asymptote()["eps_train"][:, 0])
    cur = fc(taus, kind="ridge")
    tf = curve_timescales(taus, cur["eps_test"], cur["eps_train"], inf)
    tt = curve_timescales(taus, th["eps_test"], th["eps_train"], th["eps_train_inf"])
    np.testing.assert_allclose(np.asarray(tt.tau_gen), np.asarray(tf.tau_gen), rtol=0.05)
    np.testing.assert_allclose(np.asarray(tt.tau_onset), np.asarray(tf.tau_onset), rtol=0.05)
    np.testing.assert_allclose(np.asarray(tt.tau_mem), np.asarray(tf.tau_mem), rtol=0.15)
    np.testing.assert_allclose(th["eps_train_inf"], inf, rtol=0.15)
    # the hierarchy: the high-variance class 0 generalises and memorises first, in both
    assert tt.tau_gen[0] < tt.tau_gen[1] and tf.tau_gen[0] < tf.tau_gen[1]
    assert tt.tau_mem[0] < tt.tau_mem[1] and tf.tau_mem[0] < tf.tau_mem[1]


def test_theory_bad_input():
    mix = GaussianMixture.create([0.5, 0.5], [4.0, 1.0])
    with pytest.raises(ValueError, match="taus"):
        theory_curves(mix, TH_MODEL, [1.0, 0.5])
    with pytest.raises(ValueError, match="proportion"):
        theory_curves(GaussianMixture.create([1.0, 0.0], [4.0, 1.0]), TH_MODEL, [1.0, 2.0])


@pytest.mark.slow
def test_theory_agrees_with_spectrum_solver_at_real_z():
    """The dynamics theory (real damped fixed point + Newton, warm-started along μ) and the spectrum solver
    (complex Newton with imaginary-part continuation, each point independent) share the map but not the
    solver. At z = −1/τ: the signal Q1 = Δ Σ π R and the test-loss derivative Q2 = −∂_e [Δ πᵀR(U + e U_c^pop)π]
    (implicit function theorem vs a central finite difference in the weights) agree."""
    from rfdiff.theory.curves import neuron_population as theory_population
    from rfdiff.theory.spectrum import resolvent

    mix = GaussianMixture.create([0.3, 0.7], [4.0, 1.0]).with_strong_centroids([1.0, 0.5])
    taus = np.array([0.5, 5.0, 50.0])
    out = theory_curves(mix, TH_MODEL, taus, n_quad=64)
    with jax.enable_x64(True):
        pop = theory_population("tanh", jnp.asarray(mix.class_variance), jnp.asarray(mix.centroid_gram),
                                jnp.float64(TH_MODEL.t), n_quad=64)
    pi = np.asarray(mix.proportions)
    dlt = -np.expm1(-2 * TH_MODEL.t)
    st = resolvent(-1.0 / taus, mix, TH_MODEL, quad=pop)
    assert float(np.max(np.asarray(st.residual))) < 1e-10
    signal = dlt * np.einsum("tcd,d->ct", np.real(np.asarray(st.R)), pi)
    np.testing.assert_allclose(out["signal"], signal, rtol=1e-9)
    h = 1e-5
    for c in range(2):
        e = np.zeros(2)
        e[c] = h
        rp = np.real(np.asarray(resolvent(-1.0 / taus, mix, TH_MODEL, quad=pop, weights=(pi, e)).R))
        rm = np.real(np.asarray(resolvent(-1.0 / taus, mix, TH_MODEL, quad=pop, weights=(pi, -e)).R))
        q2 = -dlt * np.einsum("c,tcd,d->t", pi, rp - rm, pi) / (2 * h)
        loss_test = 1 + q2 - 2 * signal[c]
        np.testing.assert_allclose(out["loss_test"][c], loss_test, rtol=1e-7)


@pytest.mark.slow
def test_theory_with_explicit_shifts():
    """An explicit shift population equal to the Sobol nodes reproduces the default; bad shifts are refused."""
    mix = GaussianMixture.create([0.5, 0.5], [1.21, 1.0]).with_strong_centroids([4.0, 4.0])
    taus = np.logspace(-1, 3, 5)
    ref = theory_curves(mix, TH_MODEL, taus, n_quad=128)
    from scipy.stats import norm, qmc

    grid = norm.ppf(np.clip(qmc.Sobol(2, scramble=True, seed=12345).random(128), 1e-12, 1 - 1e-12))
    grid = grid - grid.mean(0)
    ev, vec = np.linalg.eigh(np.asarray(mix.centroid_gram))
    shifts = np.exp(-TH_MODEL.t) * grid @ (vec * np.sqrt(np.clip(ev, 0, None))).T
    got = theory_curves(mix, TH_MODEL, taus, shifts=shifts)
    np.testing.assert_allclose(got["eps_train"], ref["eps_train"], rtol=1e-10)
    with pytest.raises(ValueError, match="shifts"):
        theory_curves(mix, TH_MODEL, taus, shifts=np.zeros((4, 3)))
    with pytest.raises(ValueError, match="isotropic"):
        theory_curves(GaussianMixture.create([1.0], [1.0], levels=[[1.0, 2.0]], level_weights=[0.5, 0.5]),
                      TH_MODEL, taus)


def test_asymptote_keeps_small_but_genuine_eigenvalues():
    """Strong centroids give eigenvalues of U down to ~1e-13 λ_max that still carry weight of V (notes 04 §6).
    The τ → ∞ limit must keep them: it equals the flow curve at a τ with τ λ_min ≫ 1 (and a cut-off at
    1e-10 λ_max, the old default, visibly does not)."""
    rng = np.random.default_rng(3)
    p, d = 40, 30
    Q, _ = np.linalg.qr(rng.normal(size=(p, p)))
    lam = np.logspace(3, -9, p)  # λ_min / λ_max = 1e-12
    U = (Q * lam) @ Q.T
    U = 0.5 * (U + U.T)
    V = rng.normal(size=(p, d)) * 0.1
    cf = closed_form(U, V, U[None], V[None], delta=0.3, d=d)
    far = np.asarray(cf(np.array([1e14])))[0, 0]
    np.testing.assert_allclose(float(np.asarray(cf.asymptote())[0]), far, rtol=1e-6)
    assert abs(float(np.asarray(cf.asymptote(1e-10))[0]) - far) > 1e-3 * abs(far)
