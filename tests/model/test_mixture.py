import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rfdiff import GaussianMixture, class_counts, noised_variances, proportions_long_tail, proportions_step


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(proportions=[0.5, 0.6], variances=[1.0, 1.0]), "sum to 1"),
        (dict(proportions=[0.5, 0.5], variances=[1.0, -1.0]), "variances must be positive"),
        (dict(proportions=[1.2, -0.2], variances=[1.0, 1.0]), "non-negative"),
        (dict(proportions=[0.5, 0.5], variances=[1.0, np.nan]), "variances must be finite"),
        (dict(proportions=[0.5, 0.5], variances=[1.0]), r"variances must have shape \(2,\)"),
        (dict(proportions=[0.5, 0.5], variances=[1.0, 1.0], centroid_gram=[[1.0, 2.0], [2.0, 1.0]]),
         "positive semi-definite"),
        (dict(proportions=[0.5, 0.5], variances=[1.0, 1.0], centroid_gram=[[1.0, 0.0], [0.5, 1.0]]), "symmetric"),
        (dict(proportions=[1.0], variances=[1.0], levels=[[1.0, 2.0]], level_weights=[0.5, 0.6]), "level_weights"),
    ],
)
def test_bad_specs_name_the_parameter(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GaussianMixture.create(**kwargs)


def test_centroid_gram_is_realised_exactly(key):
    mix = GaussianMixture.create([0.2, 0.3, 0.5], [1.0, 2.0, 0.5]).with_strong_centroids(
        [4.0, 1.0, 9.0], cosines=[[1, 0.5, 0], [0.5, 1, -0.2], [0, -0.2, 1]])
    d = 37
    mu = mix.centroids(key, d)
    np.testing.assert_allclose(mu @ mu.T / d, mix.centroid_gram, atol=1e-12)
    weak = GaussianMixture.create([0.5, 0.5], [1.0, 1.0]).with_weak_centroids([40.0, 10.0], d=300)
    mu = weak.centroids(key, 300)
    np.testing.assert_allclose(jnp.sum(mu**2, axis=1), [40.0, 10.0], rtol=1e-12)


def test_sampling_counts_and_moments(key):
    mix = GaussianMixture.create([0.7, 0.3], [1.0, 4.0]).with_strong_centroids([1.0, 0.25])
    n, d = 4000, 20
    mu = mix.centroids(jax.random.key(1), d)
    x, y = mix.sample(key, n, d, centroids=mu)
    counts = np.bincount(np.asarray(y))
    np.testing.assert_array_equal(counts, class_counts(mix.proportions, n))
    for c in range(2):
        xc = np.asarray(x[y == c])
        nc = len(xc)
        # class mean within 5 standard errors, per-coordinate variance average within 5 relative std errors
        se = np.sqrt(float(mix.variances[c]) / nc)
        assert np.max(np.abs(xc.mean(0) - np.asarray(mu[c]))) < 5 * se
        var = xc.var(0, ddof=1).mean()
        assert abs(var / float(mix.variances[c]) - 1) < 5 * np.sqrt(2 / (nc * d))


def test_two_level_covariance(key):
    mix = GaussianMixture.single(2.0, levels=[1.0, 5.0], level_weights=[0.75, 0.25])
    cov = np.asarray(mix.covariance_diagonal(100))
    assert cov.shape == (1, 100)
    assert np.sum(cov == 10.0) == 25 and np.sum(cov == 2.0) == 75
    np.testing.assert_allclose(mix.class_variance, [2.0 * (0.75 + 0.25 * 5.0)])


def test_imbalance_profiles():
    lt = proportions_long_tail(5, 100.0)
    np.testing.assert_allclose(lt.sum(), 1.0)
    np.testing.assert_allclose(lt[0] / lt[-1], 100.0)
    np.testing.assert_allclose(lt[1:] / lt[:-1], 100.0 ** (-1 / 4))
    st = proportions_step(4, 0.1, num_minority=2)
    np.testing.assert_allclose(st, [0.45, 0.45, 0.05, 0.05])
    with pytest.raises(ValueError, match="imbalance_ratio"):
        proportions_long_tail(3, 0.5)
    with pytest.raises(ValueError, match="minority_fraction"):
        proportions_step(3, 1.5)


def test_class_counts_rounding():
    for n in [1, 7, 100, 1001]:
        c = class_counts([0.333, 0.333, 0.334], n)
        assert c.sum() == n
        assert np.all(np.abs(c - np.array([0.333, 0.333, 0.334]) * n) < 1)


def test_permute_relabels_every_field():
    mix = GaussianMixture.create([0.2, 0.8], [1.0, 3.0], centroid_gram=[[2.0, 0.5], [0.5, 1.0]])
    perm = mix.permute([1, 0])
    np.testing.assert_allclose(perm.proportions, [0.8, 0.2])
    np.testing.assert_allclose(perm.variances, [3.0, 1.0])
    np.testing.assert_allclose(perm.centroid_gram, [[1.0, 0.5], [0.5, 2.0]])
    with pytest.raises(ValueError, match="permutation"):
        mix.permute([0, 0])


def test_mixture_is_a_pytree_that_vmaps():
    # a batch of mixtures (stacked leaves) evaluated in one vmap: floats are leaves, K is static
    mixes = [GaussianMixture.create([p, 1 - p], [1.0, v]) for p, v in [(0.1, 2.0), (0.5, 3.0), (0.9, 4.0)]]
    batch = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *mixes)
    got = jax.vmap(lambda m: noised_variances(m, 0.5))(batch)
    want = jnp.stack([noised_variances(m, 0.5) for m in mixes])
    np.testing.assert_allclose(got, want, rtol=1e-14)


@pytest.mark.parametrize("cosines, match", [
    ([[1.0, 0.9, -0.9], [0.9, 1.0, 0.9], [-0.9, 0.9, 1.0]], "positive semi-definite"),  # not a Gram matrix
    ([[1.0, 0.5, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], "symmetric"),
    ([[1.0, 1.5, 0.0], [1.5, 1.0, 0.0], [0.0, 0.0, 1.0]], r"\[-1, 1\]"),
    ([[0.5, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], "unit diagonal"),
])
def test_centroid_constructors_validate_the_gram(cosines, match):
    mix = GaussianMixture.create([0.3, 0.3, 0.4], [1.0, 1.0, 1.0])
    for build in (lambda: mix.with_strong_centroids([1.0, 2.0, 3.0], cosines),
                  lambda: mix.with_weak_centroids([1.0, 2.0, 3.0], 100, cosines)):
        with pytest.raises(ValueError, match=match):
            build()
