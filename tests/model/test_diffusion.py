import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

from rfdiff import GaussianMixture, class_log_posterior, delta, mixture_score


def _log_density(x, t, mix, mu, d):
    # direct log p_t(x) of the noised mixture with diagonal class covariances
    cdiag = jnp.exp(-2 * t) * mix.covariance_diagonal(d) + delta(t)
    diff = x[None, :] - jnp.exp(-t) * mu
    logn = -0.5 * jnp.sum(diff**2 / cdiag + jnp.log(2 * jnp.pi * cdiag), axis=1)
    return logsumexp(jnp.log(mix.proportions) + logn)


def test_mixture_score_is_gradient_of_log_density(key):
    d = 12
    mix = GaussianMixture.create([0.2, 0.5, 0.3], [1.0, 4.0, 0.5], levels=[[1.0, 3.0]] * 3,
                                 level_weights=[0.5, 0.5]).with_strong_centroids([1.0, 2.0, 0.5])
    mu = mix.centroids(jax.random.key(3), d)
    for t in [0.01, 0.3, 2.0]:
        x = jax.random.normal(jax.random.fold_in(key, int(100 * t)), (d,)) * 2.0
        want = jax.grad(_log_density)(x, t, mix, mu, d)
        np.testing.assert_allclose(mixture_score(x, t, mix, mu), want, rtol=1e-10, atol=1e-12)


def test_posterior_normalised_and_stable_far_away():
    mix = GaussianMixture.create([0.5, 0.5], [1.0, 1.0]).with_strong_centroids([1.0, 1.0])
    d = 400
    mu = mix.centroids(jax.random.key(0), d)
    x = 50.0 * mu[0]  # log-likelihoods of order 1e6: softmax must not overflow
    logp = class_log_posterior(x, 0.1, mix, mu)
    assert np.all(np.isfinite(np.asarray(logp)))
    np.testing.assert_allclose(jnp.sum(jnp.exp(logp)), 1.0, rtol=1e-12)
    assert float(jnp.exp(logp[0])) > 0.999


def test_delta_small_t():
    np.testing.assert_allclose(delta(1e-10), 2e-10, rtol=1e-9)
    np.testing.assert_allclose(delta(1.0), 1 - np.exp(-2.0), rtol=1e-14)


def test_batched_inputs_match_rowwise(key):
    d = 8
    mix = GaussianMixture.create([0.3, 0.7], [1.0, 2.0]).with_strong_centroids([1.0, 0.5])
    mu = mix.centroids(jax.random.key(1), d)
    x = jax.random.normal(key, (3, 5, d))
    got = mixture_score(x, 0.2, mix, mu)
    want = jnp.stack([jnp.stack([mixture_score(x[i, j], 0.2, mix, mu) for j in range(5)]) for i in range(3)])
    np.testing.assert_allclose(got, want, rtol=1e-13)
    assert class_log_posterior(x, 0.2, mix, mu).shape == (3, 5, 2)
