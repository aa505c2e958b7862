"""Finite-d feature moments: the exact noise average against brute-force Monte Carlo."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rfdiff import GaussianMixture, RFModel, delta, loss_from_moments, population_moments, realise, train_moments
from rfdiff.model.activations import get_activation


def _rel(a, b):
    return float(jnp.linalg.norm(a - b) / jnp.linalg.norm(b))


@pytest.fixture(scope="module", params=["tanh", "relu"])
def problem(request):
    mix = GaussianMixture.create([0.6, 0.4], [1.0, 4.0]).with_strong_centroids([1.0, 0.5])
    return realise(jax.random.key(1), mix, RFModel(1.5, 1.0, 0.3, request.param), d=60)


@pytest.fixture(scope="module")
def exact(problem):
    return train_moments(problem, "exact")


def test_exact_noise_average_matches_monte_carlo(problem, exact):
    ex = exact
    mc1 = train_moments(problem, "monte_carlo", key=jax.random.key(2), n_noise=1500)
    mc2 = train_moments(problem, "monte_carlo", key=jax.random.key(3), n_noise=1500)
    # unbiased: E|mc - exact|² = noise², E|mc1 - mc2|² = 2 noise², so the ratio is ~0.71; a bias comparable
    # to the MC noise would push it above 1
    for a, b1, b2 in [(ex.U, mc1.U, mc2.U), (ex.V, mc1.V, mc2.V), (ex.U_class[1], mc1.U_class[1], mc2.U_class[1])]:
        assert _rel(a, b1) < 1.0 * _rel(b2, b1)


def test_mehler_series_is_converged(problem, exact):
    # the automatic order (estimated residual < 1e-9) against order 30 of the series
    ex = exact.U_class[0]
    ref = train_moments(problem, "exact", k_max=30).U_class[0]
    assert _rel(ex, ref) < 1e-8


def test_class_decomposition(problem, exact):
    ex = exact
    # the automatic Mehler order differs between the pooled and per-class sums (both converged to ~1e-9)
    np.testing.assert_allclose(ex.U, train_moments(problem, "exact", per_class=False).U, rtol=1e-8, atol=1e-10)
    f = problem.class_fractions
    np.testing.assert_allclose(ex.U, f[0] * ex.U_class[0] + f[1] * ex.U_class[1], rtol=1e-12, atol=1e-14)


def test_population_moments_match_sampling(problem):
    Up, Vp = population_moments(problem)
    act = get_activation(problem.model.activation)
    t, d, m = problem.model.t, problem.d, 40000
    est = []
    for seed in (5, 6):
        x, _ = problem.mixture.sample(jax.random.key(seed), m, d, centroids=problem.centroids,
                                      labels=jnp.ones(m, dtype=int))
        xi = jax.random.normal(jax.random.key(seed + 10), x.shape, dtype=jnp.float64)
        phi = act.fn((jnp.exp(-t) * x + jnp.sqrt(delta(t)) * xi) @ problem.W.T / jnp.sqrt(d))
        est.append((phi.T @ phi / m, phi.T @ xi / m))
    assert _rel(Up[1], est[0][0]) < 1.0 * _rel(est[1][0], est[0][0])
    assert _rel(Vp[1], est[0][1]) < 1.0 * _rel(est[1][1], est[0][1])


def test_loss_identity_against_direct_dsm_loss(problem):
    """L(A) from (U, V) equals the brute-force DSM loss (1/(nd)) Σ E_ξ ||√Δ s_A(x_t) + ξ||² within MC error."""
    ex = train_moments(problem, "exact", per_class=False)
    d, p, t = problem.d, problem.p, problem.model.t
    A = jax.random.normal(jax.random.key(7), (d, p)) * 3.0
    act = get_activation(problem.model.activation)
    losses = []
    for r in range(400):
        xi = jax.random.normal(jax.random.fold_in(jax.random.key(8), r), problem.x0.shape, dtype=jnp.float64)
        xt = jnp.exp(-t) * problem.x0 + jnp.sqrt(delta(t)) * xi
        s = act.fn(xt @ problem.W.T / jnp.sqrt(d)) @ A.T / jnp.sqrt(p)
        losses.append(jnp.mean(jnp.sum((jnp.sqrt(delta(t)) * s + xi) ** 2, axis=1)) / d)
    losses = np.asarray(losses)
    want, se = losses.mean(), losses.std(ddof=1) / np.sqrt(len(losses))
    got = float(loss_from_moments(A, ex.U, ex.V, t, p, d))
    assert abs(got - want) < 5 * se


def test_gaussian_equivalent_spectrum_close_to_true(problem, exact):
    ex = np.linalg.eigvalsh(np.asarray(exact.U))
    ge = np.linalg.eigvalsh(np.asarray(train_moments(problem, "gaussian_equivalent", per_class=False,
                                                     key=jax.random.key(4)).U))
    # spectra agree in distribution (not entrywise): Wasserstein-1 on log-eigenvalues, d = 30 (loose at this d)
    w1 = np.mean(np.abs(np.log(np.sort(ex)) - np.log(np.sort(ge))))
    assert w1 < 0.25


def test_realise_shapes_and_errors():
    mix = GaussianMixture.create([0.5, 0.5], [1.0, 2.0])
    prob = realise(jax.random.key(0), mix, RFModel(1.5, 0.5, 0.1, "erf"), d=20)
    assert prob.W.shape == (30, 20) and prob.x0.shape == (10, 20) and prob.centroids.shape == (2, 20)
    np.testing.assert_array_equal(np.bincount(np.asarray(prob.labels)), [5, 5])
    with pytest.raises(ValueError, match="d must be"):
        realise(jax.random.key(0), mix, RFModel(1.5, 0.5, 0.1), d=0)
    with pytest.raises(ValueError, match="method"):
        train_moments(prob, "bogus")
    with pytest.raises(ValueError, match="psi_n"):
        RFModel(1.0, -2.0, 0.1)
    with pytest.raises(ValueError, match="unknown activation"):
        RFModel(1.0, 2.0, 0.1, "swish2")


@pytest.mark.slow
def test_population_moments_small_d_fallback_matches_series():
    """At small d the Mehler series is refused; the pairwise 2-D quadrature replaces it. Cross-check the two
    routes where both work (d = 60) and check the fallback against sampling where only it works (d = 12)."""
    from rfdiff.finite.features import _bivariate_second_moment

    mix = GaussianMixture.create([0.5, 0.5], [1.0, 1.5])
    prob = realise(jax.random.key(2), mix, RFModel(1.0, 1.0, 0.1, "tanh"), d=60)
    Up, _ = population_moments(prob)
    Wt = prob.W / jnp.sqrt(prob.d)
    t = prob.model.t
    cov = (jnp.exp(-2 * t) * 1.0 + delta(t)) * (Wt @ Wt.T)
    bi = _bivariate_second_moment(get_activation("tanh"), jnp.zeros(prob.p), cov)
    assert _rel(bi, Up[0]) < 1e-6  # 48-node 2-D rule vs converged series: measured 1.5e-7
    small = realise(jax.random.key(3), mix, RFModel(2.0, 1.0, 0.01, "tanh"), d=12)
    Us, _ = population_moments(small)  # must not raise
    x, _ = mix.sample(jax.random.key(4), 60000, 12, centroids=small.centroids, labels=jnp.zeros(60000, dtype=int))
    xi = jax.random.normal(jax.random.key(5), x.shape, dtype=jnp.float64)
    phi = jnp.tanh((jnp.exp(-0.01) * x + jnp.sqrt(delta(0.01)) * xi) @ small.W.T / jnp.sqrt(12))
    assert _rel(Us[0], phi.T @ phi / 60000) < 0.02  # sampling error ~ 1/sqrt(60000) per entry
