"""Exact asymptotic gradient-flow / GD curves (rfdiff.theory.flow): the lifted (two-point) map against the
one-point map, the fast two-point path against the lifted map, z = w against the implicit-function derivative,
the contour route with the ridge f against the ridge curves, and the flow theory against the finite-d
gradient-flow closed form (theory_notes/09_gradient_flow.md)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rfdiff import GaussianMixture, RFModel
from rfdiff.finite.closed_form import finite_curves
from rfdiff.finite.features import population_moments, realise, train_moments
from rfdiff.precision import x64
from rfdiff.theory import flow as fl
from rfdiff.theory.curves import theory_curves
from rfdiff.theory.equations import constants, fixed_point_map, neuron_population, outputs, solve_grid, solve_real

MODEL = RFModel(2.0, 1.0, 0.01, "tanh")
THREE = GaussianMixture.create([0.2, 0.3, 0.5], [4.0, 2.0, 1.0])
STRONG3 = GaussianMixture.create([0.2, 0.3, 0.5], [4.0, 2.0, 1.0]).with_strong_centroids([4.0, 2.0, 1.0])


def _consts(mix, n_quad):
    props = jnp.asarray(mix.proportions, jnp.float64)
    var = jnp.asarray(mix.class_variance, jnp.float64)
    pop = neuron_population("tanh", var, jnp.asarray(mix.centroid_gram, jnp.float64), MODEL.t, n_quad=n_quad)
    return constants(pop, props, var, MODEL.psi_p, MODEL.psi_n, MODEL.t), props


def _solved(c, zs):
    st = solve_grid(jnp.asarray(zs), c)
    return jnp.concatenate([st.delta, st.xi.reshape(len(zs), -1)], 1)


def test_lifted_map_diagonal_is_one_point_map_and_offdiagonal_its_jvp():
    with x64():
        c, _ = _consts(STRONG3, 64)
        k = 3
        rng = np.random.default_rng(0)
        xz, xw, y = (jnp.asarray(0.3 * (rng.normal(size=k + k * k) + 1j * rng.normal(size=k + k * k)))
                     for _ in range(3))
        z, w = jnp.complex128(0.3 + 0.2j), jnp.complex128(-0.1 + 0.5j)
        d2, x2 = fl._pack(xz, xw, y, k)
        dn, xn, _ = fl.lifted_map(d2, x2, (z, w), c, jnp.zeros(k), jnp.zeros(k))
        tz, tw = fixed_point_map(xz, z, c), fixed_point_map(xw, w, c)
        assert float(jnp.max(jnp.abs(jnp.concatenate([dn[:, 0, 0], xn[:, 0, :, 0].reshape(-1)]) - tz))) < 1e-13
        assert float(jnp.max(jnp.abs(jnp.concatenate([dn[:, 1, 1], xn[:, 1, :, 1].reshape(-1)]) - tw))) < 1e-13
        # z = w: the off-diagonal is the directional derivative of the one-point map
        d2, x2 = fl._pack(xz, xz, y, k)
        dn, xn, _ = fl.lifted_map(d2, x2, (z, z), c, jnp.zeros(k), jnp.zeros(k))
        _, jv = jax.jvp(lambda u: fixed_point_map(u, z, c), (xz,), (y,))
        assert float(jnp.max(jnp.abs(fl._off(dn, xn) - jv))) < 1e-13


def test_two_point_fast_equals_lifted_map_solution():
    """Closed-form off-diagonal equations (neuron sums as matrix products) == the generic lifted-map solve
    (measured 1.5e-15 relative)."""
    with x64():
        c, _ = _consts(STRONG3, 64)
        zs = np.array([0.3 + 0.2j, -0.1 + 0.5j, -0.5 + 0j, 0.01 + 0.02j])
        x = _solved(c, zs)
        dirs = jnp.eye(6)
        fast = fl.two_point_fast(x, jnp.asarray(zs), jnp.conj(x), jnp.conj(jnp.asarray(zs)), c, dirs)
        for j in range(4):
            for k in range(4):
                ref = fl.two_point(x[j], jnp.conj(x[k]), jnp.complex128(zs[j]), jnp.complex128(np.conj(zs[k])),
                                   c, dirs)
                assert float(jnp.max(jnp.abs(fast[:, j, k] - ref)) / jnp.max(jnp.abs(ref))) < 1e-12


def test_feature_layout_gathers_the_distinct_columns_back_exactly():
    """The neuron sums run over the distinct feature columns only (symmetric products): gathered back, every one
    of the K⁴ + 2K³ + 2K² columns equals the full feature matrix's (to rounding), and the count is the symmetric
    one."""
    with x64():
        for k, n_unique in ((1, 5), (2, 24), (3, 66), (4, 141)):  # C(K+3,4) + 2K·C(K+1,2) + C(K+1,2) + K²
            c, _ = _consts(GaussianMixture.create([1.0 / k] * k, list(range(1, k + 1))).with_strong_centroids(
                [1.0] * k), 8)
            unique, index = fl._feature_layout(k)
            feats = np.asarray(fl._features(c))
            assert unique.size == n_unique and index.size == feats.shape[1]
            # equal up to the rounding of the product order ((a₀a₁)(a₀a₁) vs (a₀a₀)(a₁a₁))
            np.testing.assert_allclose(feats[:, unique][:, index], feats, rtol=4e-16, atol=0)


def test_flow_nodes_symmetric_pairs_equal_all_pairs():
    """flow_nodes solves the node pairs j ≤ k only, using G_uu(j, k) = G_uu(k, j) and G_ul(j, k) = conj G_ul(k, j);
    against all N² pairs of two_point_fast at the one-point solutions of solve_grid (measured 1e-13 relative)."""
    with x64():
        c, props = _consts(STRONG3, 16)
        a, b = (float(v) for v in fl.contour_bounds(c, props))
        nodes = fl.flow_nodes(c, props, a, b, n_panels=fl.n_panels_for(a, b), order=4)
        assert bool(nodes["branch"])
        z = nodes["z"]
        x = _solved(c, np.asarray(z))
        pc, dl = props.astype(jnp.complex128), c.delta_t.astype(jnp.complex128)
        for key, (xw, zw) in (("guu", (x, z)), ("gul", (jnp.conj(x), jnp.conj(z)))):
            rp = fl.two_point_fast(x, z, xw, zw, c, jnp.eye(6))
            ref = -dl * jnp.einsum("c,jabcd,d->jab", pc, rp, pc)
            assert float(jnp.max(jnp.abs(nodes[key] - ref)) / jnp.max(jnp.abs(ref))) < 1e-12, key


def test_contour_route_off_the_physical_branch_is_caught_and_the_grid_route_stays_on_it():
    """With a coarse contour (2 panels over 4 decades) Newton from the neighbouring node lands on a root with
    Im g < 0 (residual 1e-16): ``branch`` says so; continuation at every node (``one_point="grid"``) stays on the
    physical branch, where g agrees with the spectrum solver's."""
    with x64():
        c, props = _consts(STRONG3, 16)
        a, b = (float(v) for v in fl.contour_bounds(c, props))
        coarse = fl.flow_nodes(c, props, a, b, n_panels=2, order=4)
        grid = fl.flow_nodes(c, props, a, b, n_panels=2, order=4, one_point="grid")
        assert not bool(coarse["branch"]) and bool(grid["branch"]) and float(grid["residual"]) < 1e-12
        g_ref = solve_grid(grid["z"], c).g
        dl = c.delta_t.astype(jnp.complex128)
        r_ref = jax.vmap(lambda xx, zz: outputs(xx, zz, c)[3])(_solved(c, np.asarray(grid["z"])), grid["z"])
        np.testing.assert_allclose(np.asarray(grid["g1"]), np.asarray(dl * r_ref @ props.astype(jnp.complex128)),
                                   rtol=1e-10)
        assert bool(jnp.all(g_ref.imag > 0))


def test_two_point_at_equal_points_is_the_implicit_function_derivative():
    """z = w = −μ: R'(z, z) = dR/dθ, the derivative the ridge curves take (equations.solve_real)."""
    with x64():
        c, props = _consts(STRONG3, 64)
        k = 3
        mu = 0.05
        theta0 = jnp.concatenate([props, jnp.zeros(k)])

        def consts_of(th):
            return constants(c.pop, props, jnp.asarray(STRONG3.class_variance, jnp.float64), MODEL.psi_p,
                             MODEL.psi_n, MODEL.t, omega=th[:k], e=th[k:])

        x0 = jnp.real(_solved(c, np.array([-mu + 0j]))[0])
        x, res, dx, _ = solve_real(x0, mu, consts_of, theta0)
        assert float(res) < 1e-12
        dR = jax.vmap(lambda j: jax.jvp(lambda y, th: outputs(y, jnp.float64(-mu), consts_of(th))[3], (x, theta0),
                                        (dx[:, j], jax.nn.one_hot(j, 2 * k, dtype=x.dtype)))[1])(jnp.arange(2 * k))
        xc = x.astype(jnp.complex128)
        zc = jnp.complex128(-mu)
        rp = fl.two_point_fast(xc[None], zc[None], xc[None], zc[None], c, jnp.eye(2 * k))[:, 0, 0]
        dR = dR.astype(jnp.complex128)
        assert float(jnp.max(jnp.abs(rp - dR)) / jnp.max(jnp.abs(dR))) < 1e-10


@pytest.mark.parametrize("mix,n_quad", [(THREE, 1), (STRONG3, 16)])
def test_contour_with_ridge_f_reproduces_the_ridge_curves(mix, n_quad):
    """The new route with f = 1/(z + 1/τ) == the equal-point ridge curves (measured 2.5e-11 for THREE at 8
    Gauss–Legendre nodes per panel; 3e-13 at 10)."""
    taus = np.logspace(-3, 6, 30)
    ref = theory_curves(mix, MODEL, taus, n_quad=n_quad, clock="ridge")
    with x64():
        c, props = _consts(mix, n_quad)
        a, b = (float(v) for v in fl.contour_bounds(c, props))
        nodes = fl.flow_nodes(c, props, a, b, n_panels=fl.n_panels_for(a, b), order=8)
        assert abs(float(nodes["mass"]) - 1.0) < 1e-9
        loss, q1 = fl.flow_losses(nodes, jnp.asarray(taus), "ridge")
    np.testing.assert_allclose(np.asarray(loss), np.concatenate([ref["loss_train"], ref["loss_test"]]),
                               rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(np.asarray(q1), ref["signal"], rtol=1e-9, atol=1e-10)


def test_flow_clock_asymptote_and_early_times():
    """Same τ → ∞ plateau as the ridge clock; for τ λ_max ≪ 1 both clocks give L ≈ 1 − 2τ Q1(0) (f → τ)."""
    taus = np.logspace(-6, 6, 25)
    r = theory_curves(THREE, MODEL, taus, clock="ridge")
    f = theory_curves(THREE, MODEL, taus)  # the default clock
    np.testing.assert_allclose(f["eps_train_inf"], r["eps_train_inf"], rtol=1e-8)
    np.testing.assert_allclose(f["eps_test_inf"], r["eps_test_inf"], rtol=1e-7)
    # at τ = 1e-6 the two clocks differ by O(τ λ) ~ 1e-6 relative in 1 − L
    np.testing.assert_allclose(1 - f["loss_test"][:, 0], 1 - r["loss_test"][:, 0], rtol=1e-5)
    # flow is ahead of the ridge proxy: f_flow(λ) = (1 − e^{−x})/λ ≥ 1/(λ + 1/τ) (x = τλ), and πᵀQ1 = Δ πᵀ f(U) π
    # integrates f against a positive measure, so the total signal is larger on the flow clock at every τ > 0
    pi = np.asarray(THREE.proportions)
    assert np.all(pi @ f["signal"][:, 1:] > pi @ r["signal"][:, 1:])


def test_gd_clock_converges_to_flow_linearly_in_the_step():
    taus = np.array([0.2, 0.4, 1.0, 2.0, 4.0, 10.0, 100.0, 1000.0])  # whole numbers of steps at both lr
    f = theory_curves(THREE, MODEL, taus, clock="flow")
    e1 = np.max(np.abs(theory_curves(THREE, MODEL, taus, clock=("gd", 0.02))["eps_train"] - f["eps_train"]))
    e2 = np.max(np.abs(theory_curves(THREE, MODEL, taus, clock=("gd", 0.01))["eps_train"] - f["eps_train"]))
    assert 1.6 < e1 / e2 < 2.4, (e1, e2)


def test_bad_clock_is_refused():
    taus = np.logspace(-1, 1, 3)
    with pytest.raises(ValueError, match="clock"):
        theory_curves(THREE, MODEL, taus, clock="euler")
    with pytest.raises(ValueError, match="lr"):
        theory_curves(THREE, MODEL, taus, clock=("gd", -0.1))
    with pytest.raises(ValueError, match="lr"):
        theory_curves(THREE, MODEL, taus, clock=("gd", 1.0))


@pytest.mark.slow
def test_flow_theory_matches_finite_d_gradient_flow_closed_form():
    """Variance-ordered mixture, d = 100, seed 0: the exact-flow theory against the finite-d gradient-flow and GD
    (lr 0.05) closed forms on τ ∈ [1e-2, 1e4], error max_τ |ε_fd − ε_th| / max(|ε_th|, 1) (absolute below 1,
    relative above: the ratio is ill-posed where ε crosses 0). Measured for gradient flow, train/test: seed 0
    d = 100: 0.030/0.029, d = 200: 0.015/0.018, d = 400: 0.008/0.006 (about 1/d); seed 1: 0.11/0.10, 0.021/0.017,
    0.025/0.021 (seed scatter dominates beyond d = 200). At every (d, seed) it equals the ridge theory's error
    against the ridge closed form within 0.007 (seed 0: 0.029/0.023, 0.014/0.017, 0.008/0.005), so the exact
    clock adds no error. Tolerance: 2× the seed-0 d = 100 value."""
    mix = GaussianMixture.create([0.5, 0.5], [4.0, 1.0])
    taus = np.logspace(-2, 4, 25)
    prob = realise(jax.random.key(0), mix, MODEL, d=100)
    fc = finite_curves(prob, train_moments(prob), population_moments(prob))
    for clock, kind, step in [("flow", "flow", None), (("gd", 0.05), "gd", 0.05)]:
        th = theory_curves(mix, MODEL, taus, clock=clock)
        fd = fc(taus, kind=kind, step=step)
        for part in ("eps_train", "eps_test"):
            a, b = np.asarray(fd[part]), th[part]
            assert np.max(np.abs(a - b) / np.maximum(np.abs(b), 1.0)) < 0.06, (clock, part)
