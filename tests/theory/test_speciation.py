"""Tests of rfdiff.simulate.sampling, rfdiff.theory.speciation and rfdiff.simulate.speciation.

Tolerances: deterministic identities at 1e-8–1e-10 (float64); Monte Carlo comparisons at 3.5–4 standard
errors measured in the same run (bootstrap or binomial), plus a stated discretisation allowance for the SDE.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special

import rfdiff
from rfdiff.theory import speciation as sp
from rfdiff.simulate.sampling import (backward_sde, geometric_grid, mixture_score_fn, posterior_observer,
                             probability_flow_ode)
from rfdiff.simulate.speciation import (cloning, crossing_time, posterior_speciation_times,
                                   simulate_posteriors)


def two_class(p_min, variances=(1.0, 1.0), sq_norm=1.0):
    """±μ with ||μ||²/d = sq_norm (||Δμ||² = 4 d sq_norm), majority first."""
    mix = rfdiff.GaussianMixture.create([1.0 - p_min, p_min], list(variances))
    return mix.with_strong_centroids([sq_norm, sq_norm], [[1.0, -1.0], [-1.0, 1.0]])


# ------------------------------------------------------------------------------------------ samplers
def test_mixture_score_matches_reference_implementation(key):
    mix = rfdiff.GaussianMixture.create([0.5, 0.3, 0.2], [1.0, 2.0, 0.5]).with_strong_centroids([1.0, 0.5, 2.0])
    d = 40
    mu = mix.centroids(jax.random.key(3), d)
    x = 2.0 * jax.random.normal(key, (7, d), dtype=jnp.float64)
    t = jnp.asarray(0.3)
    s = mixture_score_fn(mix, mu)(x, t)
    lp = posterior_observer(mix, mu)(x, t)
    ref_s, ref_lp = rfdiff.mixture_score(x, t, mix, mu), rfdiff.class_log_posterior(x, t, mix, mu)
    np.testing.assert_allclose(s, ref_s, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(lp, ref_lp, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("method", ["euler", "exponential"])
def test_sde_and_ode_sample_a_gaussian(method):
    # single class N(0, σ²I): exact score −x/Γ²; the samplers must return variance σ² (SE ≈ 0.3 % here,
    # Euler bias on 300 geometric steps measured < 1 %): tolerance 2.5 %.
    s2, d, n = 2.0, 32, 4000
    mix = rfdiff.GaussianMixture.create([1.0], [s2])
    score = mixture_score_fn(mix, jnp.zeros((1, d)))
    ts = geometric_grid(8.0, 1e-3, 300)
    x = backward_sde(score, jax.random.key(1), ts, n=n, d=d, method=method, dtype=jnp.float64).x
    assert abs(float(jnp.var(x)) / s2 - 1.0) < 0.025
    y = probability_flow_ode(score, ts, key=jax.random.key(2), n=n, d=d, method=method, dtype=jnp.float64).x
    assert abs(float(jnp.var(y)) / s2 - 1.0) < 0.025
    # a caller-supplied score_fn(x, t) plugs in the same way (here the closed-form Gaussian score)
    user = lambda x, t: -x / (jnp.exp(-2.0 * t) * s2 - jnp.expm1(-2.0 * t))  # noqa: E731
    y2 = probability_flow_ode(user, ts, key=jax.random.key(2), n=n, d=d, method=method, dtype=jnp.float64).x
    np.testing.assert_allclose(y2, y, rtol=1e-9, atol=1e-9)


def test_samplers_seeded_and_reproducible():
    mix = two_class(0.3)
    mu = mix.centroids(jax.random.key(0), 16)
    ts = geometric_grid(5.0, 1e-2, 20)
    f = mixture_score_fn(mix, mu)
    a = backward_sde(f, jax.random.key(5), ts, n=10, d=16).x
    b = backward_sde(f, jax.random.key(5), ts, n=10, d=16).x
    c = backward_sde(f, jax.random.key(6), ts, n=10, d=16).x
    assert np.array_equal(np.asarray(a), np.asarray(b)) and not np.allclose(a, c)


def test_sampler_bad_inputs():
    f = lambda x, t: -x  # noqa: E731
    with pytest.raises(ValueError, match="t_max"):
        geometric_grid(-1.0, 1e-3, 10)
    with pytest.raises(ValueError, match="t_min"):
        geometric_grid(1.0, 0.0, 10)
    with pytest.raises(ValueError, match="num_steps"):
        geometric_grid(1.0, 1e-3, 0)
    with pytest.raises(ValueError, match="decreasing"):
        backward_sde(f, jax.random.key(0), [0.1, 1.0], n=2, d=2)
    with pytest.raises(ValueError, match="positive"):
        backward_sde(f, jax.random.key(0), [1.0, -0.5], n=2, d=2)
    with pytest.raises(ValueError, match="method"):
        backward_sde(f, jax.random.key(0), [1.0, 0.5], n=2, d=2, method="rk4")
    with pytest.raises(ValueError, match="n and d"):
        backward_sde(f, jax.random.key(0), [1.0, 0.5], n=0, d=2)
    with pytest.raises(ValueError, match="proportions"):
        rfdiff.GaussianMixture.create([1.2, -0.2], [1.0, 1.0])


# ------------------------------------------------------------------------------------------ theory
def test_gaussian_method_equals_closed_form_and_minority_delay():
    d, theta = 300, 0.9
    for p_min in (0.5, 0.2, 0.01):
        for s2 in (1.0, 0.5):
            mix = two_class(p_min, (s2, s2))
            got = sp.speciation_times(mix, d, theta)
            lr = np.log((1 - p_min) / p_min)
            ref = sp.speciation_time_closed_form(4 * d, np.array([lr, -lr]), theta, variance=s2)
            np.testing.assert_allclose(got, ref, rtol=1e-8)
    # σ = 1: minority delay −½ log(1 + L/logit θ), independent of d
    lr = np.log(999.0)
    t_bal = sp.speciation_times(two_class(0.5), d, theta)[1]
    t_min = sp.speciation_times(two_class(0.001), d, theta)[1]
    assert abs((t_min - t_bal) + 0.5 * np.log1p(lr / special.logit(theta))) < 1e-8


def test_exact_law_matches_brute_force_forward_sampling():
    # unequal variances + centroids: the reduced-coordinate law vs full-d forward samples with the
    # reference posterior (rfdiff.model.diffusion). 4000 samples → median SE ≲ 0.01: tolerance 0.03.
    d, t = 200, 0.8
    mix = rfdiff.GaussianMixture.create([0.7, 0.3], [2.0, 1.0]).with_strong_centroids([0.02, 0.02],
                                                                                    [[1, -1], [-1, 1]])
    mu = mix.centroids(jax.random.key(0), d)
    x0, lab = mix.sample(jax.random.key(1), 4000, d, centroids=mu)
    xt, _ = rfdiff.forward_sample(jax.random.key(2), x0, t)
    post = np.exp(np.asarray(rfdiff.class_log_posterior(xt, jnp.asarray(t), mix, mu)))
    lab = np.asarray(lab)
    exact = sp.posterior_statistic(mix, t, d, "median", "exact", n_mc=40000)
    for c in range(2):
        assert abs(np.median(post[lab == c, c]) - exact[c]) < 0.03
    clone = sp.posterior_statistic(mix, t, d, "clone", "exact", n_mc=40000)
    for c in range(2):
        pc = post[lab == c, c]
        assert abs(pc.mean() - clone[c]) < 4 * pc.std() / np.sqrt(pc.size) + 2e-3
    # the Gaussian approximation of ℓ is close but not exact here (skewness of the χ² part)
    gauss = sp.posterior_statistic(mix, t, d, "median", "gaussian")
    assert np.all(np.abs(gauss - exact) < 0.05)


def test_exact_and_gaussian_times_agree_for_equal_variances():
    mix = two_class(0.05)
    g = sp.speciation_times(mix, 500)
    e = sp.speciation_times(mix, 500, method="exact", n_mc=20000)
    assert g[0] == np.inf and e[0] == np.inf
    assert abs(g[1] - e[1]) < 5e-3  # ℓ is exactly Gaussian here; MC error of the median


def test_biroli_relations():
    d = 400
    mix = two_class(0.5)
    lam = sp.top_covariance_eigenvalue(mix, d)
    np.testing.assert_allclose(lam, 1.0 + d, rtol=1e-12)  # covariance I + μμᵀ, ||μ||² = d
    # spinodal at h = 0 is the Hessian instability e^{-2t}||μ||² = 1, i.e. ½ log(Λ − 1)
    np.testing.assert_allclose(sp.spinodal_time(mix, d), 0.5 * np.log(lam - 1.0), rtol=1e-10)
    # φ_c from the Gaussian law equals the universal curve φ(t − ½ log ||μ||²) (Nishimori identity)
    ts = np.array([2.0, 2.8, 3.2, 4.0])
    phi = sp.posterior_statistic(mix, ts, d, "clone", "gaussian")[:, 0]
    np.testing.assert_allclose(phi, sp.phi_symmetric(ts - 0.5 * np.log(d)), atol=1e-10)
    # the clone-agreement threshold θ_B gives exactly Biroli's time; the median threshold θ an offset
    th_b = sp.biroli_phi_threshold()
    t_clone = sp.speciation_times(mix, d, th_b, statistic="clone")
    np.testing.assert_allclose(t_clone, 0.5 * np.log(d), atol=1e-8)
    for theta in (0.6, 0.9, 0.99):
        off = sp.speciation_times(mix, d, theta)[0] - 0.5 * np.log(d)
        np.testing.assert_allclose(off, 0.5 * np.log(2.0 / special.logit(theta)), atol=1e-8)


def test_spinodal_beta():
    assert sp.spinodal_beta(0.0) == 1.0
    for h in (0.3, 2.0, 20.0):
        b = sp.spinodal_beta(h)
        m = np.sqrt(1 - 1 / b)
        np.testing.assert_allclose(b * m - np.arctanh(m), h, rtol=1e-10)
    rel = [abs(sp.spinodal_beta(h) / (h + 0.5 + 0.5 * np.log(4 * h)) - 1) for h in (10.0, 100.0)]
    assert rel[1] < rel[0] < 0.01


def test_variance_only_quarter_log_d_law():
    mix = rfdiff.GaussianMixture.create([0.5, 0.5], [2.25, 1.0])
    t = np.array([sp.speciation_times(mix, d)[0] for d in (10**4, 10**6)])
    asym = np.array([sp.variance_only_time(d, [2.25, 1.0]) for d in (10**4, 10**6)])
    assert np.all(np.abs(t - asym) < [0.06, 0.01])  # correction decays as e^{-2t} ∝ d^{-1/2}
    np.testing.assert_allclose(t[1] - t[0], 0.25 * np.log(100), atol=0.06)
    # higher-variance class (0) speciates first even when balanced
    t300 = sp.speciation_times(mix, 300)
    assert t300[0] > t300[1]


def test_theory_bad_inputs():
    mix = two_class(0.2)
    with pytest.raises(ValueError, match="theta"):
        sp.speciation_times(mix, 100, theta=1.0)
    with pytest.raises(ValueError, match="d must"):
        sp.speciation_times(mix, 0)
    with pytest.raises(ValueError, match="t must"):
        sp.posterior_statistic(mix, [1.0, -1.0], 100)
    with pytest.raises(ValueError, match="statistic"):
        sp.posterior_statistic(mix, 1.0, 100, statistic="mean")
    with pytest.raises(ValueError, match="K = 2"):
        sp.posterior_statistic(rfdiff.GaussianMixture.create([0.5, 0.3, 0.2], [1.0, 1.0, 1.0]), 1.0, 100)
    with pytest.raises(ValueError, match="isotropic"):
        sp.speciation_times(rfdiff.GaussianMixture.create([0.5, 0.5], [1.0, 1.0], levels=[1.0, 2.0],
                                                          level_weights=[0.5, 0.5]), 100)


def test_crossing_time():
    t = np.array([4.0, 3.0, 2.0, 1.0])
    assert crossing_time(t, [0.1, 0.5, 0.95, 1.0], 0.9) == pytest.approx(2.0 + 0.05 / 0.45)
    assert crossing_time(t, [0.95, 0.96, 0.97, 1.0], 0.9) == np.inf
    assert np.isnan(crossing_time(t, [0.1, 0.2, 0.3, 0.4], 0.9))


# ------------------------------------------------------------------------------------------ simulation
@pytest.mark.slow
def test_simulated_speciation_times_match_theory(tmp_path):
    # d = 128, ratio 1 and 10; error bars from the bootstrap (≈ 0.02–0.05 here). Tolerance: 3.5 SE + 0.03
    # for the discretisation (exponential integrator, step ≈ 0.08 near t_S on the 160-step geometric grid).
    d, theta = 128, 0.9
    ts = geometric_grid(8.0, 2e-2, 160)
    for p_min, n in ((0.5, 1000), (1 / 11, 2000)):
        mix = two_class(p_min)
        mu = mix.centroids(jax.random.key(1), d)
        tr = simulate_posteriors(mixture_score_fn(mix, mu), mix, mu, jax.random.key(2), ts, n, chunk=2000)
        res = posterior_speciation_times(tr, theta, n_boot=100)
        th = sp.speciation_times(mix, d, theta)
        for c in range(2):
            if np.isinf(th[c]):
                assert np.isinf(res["times"][c])  # π_maj ≥ θ: committed from the start in both
            else:
                assert abs(res["times"][c] - th[c]) < 3.5 * res["se"][c] + 0.03, (p_min, c, res, th)
    # reproducible and resumable: a checkpointed run equals the plain one, also when resumed
    mix = two_class(0.3)
    mu = mix.centroids(jax.random.key(1), 16)
    f = mixture_score_fn(mix, mu)
    ts = geometric_grid(6.0, 1e-2, 30)
    a = simulate_posteriors(f, mix, mu, jax.random.key(4), ts, 50, chunk=20)
    b = simulate_posteriors(None, mix, mu, jax.random.key(4), ts, 50, chunk=20, checkpoint_dir=tmp_path,
                            keep_checkpoint=True)
    (tmp_path / "chunk_00001.npz").unlink()  # simulate a run killed before its second chunk was kept
    c = simulate_posteriors(None, mix, mu, jax.random.key(4), ts, 50, chunk=20, checkpoint_dir=tmp_path)
    assert np.array_equal(a.log_post, b.log_post) and np.array_equal(a.log_post, c.log_post)


def test_cloning_matches_theory():
    d = 128
    mix = two_class(0.2)
    mu = mix.centroids(jax.random.key(1), d)
    ts = geometric_grid(8.0, 2e-2, 150)
    out = cloning(mixture_score_fn(mix, mu), mix, mu, jax.random.key(3), ts, [3.0, 2.4], n=500,
                  t_end=1.0, n_boot=100)
    th = sp.posterior_statistic(mix, out["t"], d, "clone", "gaussian")
    assert np.all(np.abs(out["phi"] - th) < 4 * out["se"] + 0.01), (out, th)
    assert np.all(out["phi"][:, 1] < out["phi"][:, 0])  # the minority's copies disagree more
    with pytest.raises(ValueError, match="clone_times"):
        cloning(mixture_score_fn(mix, mu), mix, mu, jax.random.key(3), ts, [9.0], n=10)
    with pytest.raises(ValueError, match="n_clones"):
        cloning(mixture_score_fn(mix, mu), mix, mu, jax.random.key(3), ts, [2.0], n=10, n_clones=1)
