"""Asymptotic (ridge-time) learning curves: identities of the equations, reductions, the spectrum solver at
real z, finite-d closed forms, explicit shift populations, the convergence error.

Moved from tests/finite/test_closed_form.py (the theory tests), plus the shared population builder's
accuracy against realised shifts (tests/theory/test_spectrum.py holds the spectrum side).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rfdiff import GaussianMixture, RFModel
from rfdiff.errors import ConvergenceError
from rfdiff.finite.closed_form import closed_form, finite_curves
from rfdiff.finite.features import population_moments, realise, train_moments
from rfdiff.theory.curves import theory_curves
from rfdiff.theory.timescales import curve_timescales

TH_MODEL = RFModel(2.0, 1.0, 0.01, "tanh")


def test_theory_total_train_loss_identity():
    """Σ_c π_c L_c^tr = 1 − Q1 + μ dQ1/dμ (Tr VᵀRURV = Tr VᵀRV − μ Tr VᵀR²V): checks the implicit-function
    ε-derivatives against a finite difference in μ of the equal-point signal Q1 = Δ πᵀRπ."""
    mix = GaussianMixture.create([0.3, 0.7], [4.0, 1.0]).with_strong_centroids([1.0, 0.5])
    pi = np.asarray(mix.proportions)
    for tau in (0.3, 30.0):
        h = 1e-4
        taus = np.array([tau / (1 + h), tau, tau / (1 - h)])  # μ = (1 ± h)/τ around μ0 = 1/τ
        out = theory_curves(mix, TH_MODEL, np.sort(taus), n_quad=64, clock="ridge")
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
    th = theory_curves(mix, TH_MODEL, taus, clock="ridge")
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
    from rfdiff.theory.equations import neuron_population as theory_population
    from rfdiff.theory.spectrum import resolvent

    mix = GaussianMixture.create([0.3, 0.7], [4.0, 1.0]).with_strong_centroids([1.0, 0.5])
    taus = np.array([0.5, 5.0, 50.0])
    out = theory_curves(mix, TH_MODEL, taus, n_quad=64, clock="ridge")
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
    ref = theory_curves(mix, TH_MODEL, taus, n_quad=128, clock="ridge")
    from rfdiff.theory.equations import sobol_normal

    grid = sobol_normal(128, 2)
    ev, vec = np.linalg.eigh(np.asarray(mix.centroid_gram))
    shifts = np.exp(-TH_MODEL.t) * grid @ (vec * np.sqrt(np.clip(ev, 0, None))).T
    got = theory_curves(mix, TH_MODEL, taus, shifts=shifts, clock="ridge")
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


def test_theory_nonconvergence_raises_convergence_error():
    """Non-convergence is a ConvergenceError (a RuntimeError) carrying the residual and the τ range; bad
    input stays a ValueError."""
    mix = GaussianMixture.create([0.5, 0.5], [4.0, 1.0])
    with pytest.raises(ConvergenceError, match="residual") as err:
        theory_curves(mix, TH_MODEL, [1.0, 10.0], tol=1e-300, clock="ridge")
    assert isinstance(err.value, RuntimeError) and not isinstance(err.value, ValueError)
    assert 0 < err.value.residual < 1e-6  # converged to rounding, but not to 1e-300
    assert err.value.point["tau_min"] == 1.0 and err.value.point["tau_max"] == 10.0


def _reference_core(props, var, gram, psi_p, psi_n, t, taus, *, activation, n_quad, coef_nodes):
    """The previous core (commit bd92f6e), kept here only as a reference: the population rebuilt inside,
    25 damped fixed-point steps (x ← (x + T(x))/2) then exactly 8 Newton steps per μ, derivatives by the
    implicit-function theorem. Returns (eps_train, eps_test) (K, T) and the μ = 0 ones (K,)."""
    from rfdiff.theory.equations import constants, fixed_point_map, neuron_population, outputs

    K = var.shape[0]
    pop = neuron_population(activation, var, gram, t, n_quad=n_quad, coef_nodes=coef_nodes)
    dlt = -jnp.expm1(-2.0 * t)
    theta0 = jnp.concatenate([props, jnp.zeros(K)])
    consts_of = lambda th: constants(pop, props, var, psi_p, psi_n, t, omega=th[:K], e=th[K:])  # noqa: E731

    def solve(x, mu):
        F = lambda y, th=theta0: fixed_point_map(y, -mu, consts_of(th))  # noqa: E731
        x = jax.lax.fori_loop(0, 25, lambda _, y: 0.5 * y + 0.5 * F(y), x)
        x = jax.lax.fori_loop(0, 8, lambda _, y: y - jnp.linalg.solve(jax.jacfwd(F)(y) - jnp.eye(y.size),
                                                                        F(y) - y), x)
        dx = jnp.linalg.solve(jnp.eye(x.size) - jax.jacfwd(F)(x), jax.jacfwd(lambda th: F(x, th))(theta0))
        r_of = lambda y, th: outputs(y, -mu, consts_of(th))[3]  # noqa: E731
        q1 = dlt * r_of(x, theta0) @ props
        dR = jax.vmap(lambda v, tg: jax.jvp(r_of, (x, theta0), (v, tg))[1], in_axes=(1, 0))(dx, jnp.eye(2 * K))
        q2 = -dlt * jnp.einsum("c,jcd,d->j", props, dR, props)
        return x, 1.0 + q2 - 2.0 * jnp.concatenate([q1, q1])

    mus = jnp.concatenate([1.0 / taus, jnp.zeros(1)])
    _, loss = jax.lax.scan(solve, jnp.zeros(K + K * K), mus)
    S = dlt / (jnp.exp(-2.0 * t) * var + dlt)
    eps = (loss.T - (1.0 - jnp.concatenate([S, S]))[:, None]) / jnp.concatenate([S, S])[:, None]
    return eps[:K, :-1], eps[K:, :-1], eps[:K, -1]


@pytest.mark.parametrize("sep, nq, r, pi1, psi_n, fine", [(0.0, 1, 2.0, 0.3, 1.0, True), (0.0, 1, 0.7, 0.8, 3.0, False),
                                                           (16.0, 32, 1.3, 0.2, 1.0, True),
                                                           (16.0, 32, 0.8, 0.6, 2.0, False)])
def test_core_equals_previous_core(sep, nq, r, pi1, psi_n, fine):
    """Newton only (no damped warm-up, early stop at the rounding floor) and a prebuilt population give the
    previous core's curves to 1e-12 in both regimes (A: no centroids; B: ||μ||²/d = 16), on the phase
    diagrams' default grid (64 τ over 9 decades: Newton alone between neighbouring μ) and a coarse one
    (damped steps kept where μ jumps by more than 1.5)."""
    from rfdiff.theory.curves import theory_curves_core
    from rfdiff.theory.equations import neuron_population

    taus = np.logspace(-3, 6, 64) if fine else np.logspace(-1, 6, 8)
    with jax.enable_x64(True):
        args = (jnp.array([pi1, 1 - pi1]), jnp.array([r**2, 1.0]), sep * jnp.eye(2), jnp.float64(TH_MODEL.psi_p),
                jnp.float64(psi_n), jnp.float64(TH_MODEL.t), jnp.asarray(taus))
        ref = jax.jit(lambda *a: _reference_core(*a, activation="tanh", n_quad=nq, coef_nodes=64))(*args)
        pop = neuron_population("tanh", args[1], args[2], args[5], n_quad=nq, coef_nodes=64)
        new = jax.jit(lambda *a: theory_curves_core(*a, activation="tanh", pop=pop))(*args)
    assert float(new["residual"]) < 1e-12
    for got, want, name in zip((new["eps_train"], new["eps_test"], new["eps_train_inf"]), ref,
                               ("eps_train", "eps_test", "eps_train_inf")):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-12, atol=1e-14, err_msg=name)


def test_newton_start_prediction_orders():
    """The scan's Newton start (curves._predict): exact for a cubic in log μ from two (x, dx/du) pairs, the
    tangent line from one, the previous solution itself from none; on the scan's real solutions the cubic
    start is closer than the tangent line, which is closer than the previous solution (errors ~Δu⁴, Δu², Δu)."""
    from rfdiff.theory.curves import _predict
    from rfdiff.theory.equations import constants, fixed_point_map, neuron_population, solve_real

    with jax.enable_x64(True):
        f = lambda u: jnp.array([1.0 - 2.0 * u + 0.5 * u**2 - 0.3 * u**3, 2.0 + u**3])  # noqa: E731
        df = jax.jacfwd(f)
        u2, u1, u = 0.0, 0.4, 0.9
        both = ((jnp.float64(u2), f(u2), df(u2), jnp.array(True)), (jnp.float64(u1), f(u1), df(u1), jnp.array(True)))
        np.testing.assert_allclose(np.asarray(_predict(both, jnp.float64(u), f(u1))), np.asarray(f(u)), rtol=1e-13)
        one = ((jnp.float64(u2), f(u2), df(u2), jnp.array(False)), both[1])
        np.testing.assert_allclose(np.asarray(_predict(one, jnp.float64(u), f(u1))),
                                   np.asarray(f(u1) + (u - u1) * df(u1)), rtol=1e-13)
        none = (one[0], (jnp.float64(u1), f(u1), df(u1), jnp.array(False)))
        np.testing.assert_array_equal(np.asarray(_predict(none, jnp.float64(u), f(u2))), np.asarray(f(u2)))

        var, props = jnp.array([4.0, 1.0]), jnp.array([0.3, 0.7])
        pop = neuron_population("tanh", var, 16.0 * jnp.eye(2), jnp.float64(0.01), n_quad=32, coef_nodes=64)
        theta = jnp.concatenate([props, jnp.zeros(2)])
        consts_of = lambda th: constants(pop, props, var, 4.0, 2.0, 0.01, omega=th[:2], e=th[2:])  # noqa: E731
        mus = np.array([2.0, 2.0 / 1.39, 2.0 / 1.39**2])  # three neighbouring μ of the phase diagrams' τ grid
        fmap = lambda y, mu: fixed_point_map(y, -mu, consts_of(theta))  # noqa: E731
        x = jax.lax.fori_loop(0, 200, lambda _, y: 0.5 * y + 0.5 * fmap(y, mus[0]), jnp.zeros(6))
        sols = []
        for mu in mus:
            x, res, _, dmu = solve_real(x, jnp.float64(mu), consts_of, theta)
            assert float(res) < 1e-13
            sols.append((jnp.log(mu), x, mu * dmu, jnp.array(True)))
        (ua, xa, da, _), (_, xb, _, _), (uc, xc, _, _) = sols
        err = lambda y: float(jnp.max(jnp.abs(y - xc)))  # noqa: E731
        e_prev = err(xb)
        e_line = err(_predict(((ua, xa, da, jnp.array(False)), sols[1]), uc, xb))
        e_cubic = err(_predict((sols[0], sols[1]), uc, xb))
        # measured 0.099, 0.012, 2.1e-4 (Δu = log 1.39): each order gains a factor ≥ 4 here
        assert e_cubic < 0.1 * e_line and e_line < 0.25 * e_prev, (e_prev, e_line, e_cubic)


def test_spurious_root_off_the_physical_branch_is_refused():
    """Linear features with ψ_p = 2 > ψ_n: U is singular, Ξ grows like 1/μ and no solution exists at μ = 0 (the
    τ → ∞ asymptote). Newton there once reached a root with δ < 0 and a 1e-13 residual, giving ε^tr(∞) = −203.5
    against −30.4 at finite d = 200. δ_c ≥ 0 and D_i > 0 hold wherever (U + μ)⁻¹ ≻ 0, so such a root is refused."""
    mix = GaussianMixture.create([0.2, 0.8], [4.0, 1.0])
    with pytest.raises(ConvergenceError, match="did not converge"):
        theory_curves(mix, RFModel(2.0, 1.0, 0.01, "linear"), np.logspace(-3, 3, 8), clock="ridge")
