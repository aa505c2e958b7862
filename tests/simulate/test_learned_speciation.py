"""Speciation with learned scores: closed-form per-time RF readouts (rfdiff.simulate.generation.flow_time_grids),
cloning with a supplied posterior, and the learned-score speciation time of a tiny RF model."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rfdiff import GaussianMixture, RFModel
from rfdiff.finite.features import realise
from rfdiff.simulate.generation import flow_time_grids, train_time_grid
from rfdiff.simulate.sampling import geometric_grid, mixture_score_fn, posterior_observer
from rfdiff.simulate.speciation import cloning
from rfdiff.simulate.train import TrainConfig


def two_class(p_min=0.5):
    mix = GaussianMixture.create([1.0 - p_min, p_min], [1.0, 1.0])
    return mix.with_strong_centroids([1.0, 1.0], [[1.0, -1.0], [-1.0, 1.0]])


@pytest.fixture(scope="module")
def prob():
    return realise(jax.random.key(0), two_class(0.3), RFModel(2.0, 1.0, 0.01, "tanh"), 12)


def test_flow_time_grids_equal_gd_training(prob):
    # kind="gd" is exactly train_time_grid's GD with exact noise (brute force), for every τ from one eigh
    times, eta, steps = [0.05, 0.5], 0.2, (5, 40)
    grids = flow_time_grids(prob, times, [eta * s for s in steps], kind="gd", step=eta,
                            moments_kwargs={"k_max": 12})
    for s, g in zip(steps, grids):
        ref = train_time_grid(prob, times, lambda t, lam, s=s: TrainConfig(
            lr=eta, steps=s, noise="exact", dtype="float64", num_logs=2, n_test=5), moments_kwargs={"k_max": 12})
        np.testing.assert_allclose(g.A, ref.A, rtol=1e-8, atol=1e-10 * np.abs(ref.A).max())


def test_flow_time_grids_bad_inputs(prob):
    with pytest.raises(ValueError, match="taus"):
        flow_time_grids(prob, [0.1], [-1.0])
    with pytest.raises(ValueError, match="step"):
        flow_time_grids(prob, [0.1], [1.0], kind="gd")
    with pytest.raises(ValueError, match="times"):
        flow_time_grids(prob, [0.2, 0.1], [1.0])


def test_cloning_with_a_supplied_posterior_equals_the_mixture_one():
    mix = two_class(0.3)
    mu = mix.centroids(jax.random.key(1), 16)
    ts = geometric_grid(5.0, 0.05, 40)
    kw = dict(n_clones=3, n_boot=20, method="exponential")
    a = cloning(mixture_score_fn(mix, mu), mix, mu, jax.random.key(2), ts, [1.5, 0.5], 64, **kw)
    b = cloning(mixture_score_fn(mix, mu), None, None, jax.random.key(2), ts, [1.5, 0.5], 64,
                observe=posterior_observer(mix, mu), d=16, **kw)
    for k in ("t", "phi", "phi_total", "se"):
        np.testing.assert_array_equal(a[k], b[k])
    with pytest.raises(ValueError, match="d must"):
        cloning(mixture_score_fn(mix, mu), None, None, jax.random.key(2), ts, [1.0], 8,
                observe=posterior_observer(mix, mu))
    with pytest.raises(ValueError, match="mixture and centroids"):
        cloning(mixture_score_fn(mix, mu), None, None, jax.random.key(2), ts, [1.0], 8)


def test_rf_learned_score_speciation_is_near_the_exact_score_one():
    """The whole learned-score pipeline on a tiny RF (d = 12, p = 48, n = 96, 6 times, τ = 10³): per-class t_S from
    RF-score trajectories vs exact-score trajectories with the same key. Measured (problem/key seeds 0–3):
    t_S(RF) − t_S(exact) = +0.08 … +0.27 per class (bootstrap SE 0.02–0.11), exact t_S ≈ 1.2: the tiny RF commits
    to a class somewhat earlier. A wrong time map or sign of the readouts gives no crossing (NaN) or an offset of
    order t_S; the bound 0.4 is the largest measured offset plus ~1.3 SE."""
    from rfdiff.simulate.generation import rf_score_fn
    from rfdiff.simulate.speciation import posterior_speciation_times, simulate_posteriors

    mix = two_class(0.5)
    prob = realise(jax.random.key(0), mix, RFModel(4.0, 8.0, 0.05, "tanh"), 12)
    grid = flow_time_grids(prob, np.geomspace(0.05, 4.0, 6), [1e3], moments_kwargs={"k_max": 12})[0]
    ts = geometric_grid(5.0, 0.05, 60)
    ex = posterior_speciation_times(simulate_posteriors(None, mix, prob.centroids, jax.random.key(0), ts, 400),
                                    0.9, n_boot=20)["times"]
    rf = posterior_speciation_times(simulate_posteriors(rf_score_fn(grid), mix, prob.centroids, jax.random.key(0),
                                                        ts, 400), 0.9, n_boot=20)["times"]
    assert np.all(np.isfinite(rf)) and np.all(np.isfinite(ex)), (rf, ex)
    assert np.all(np.abs(rf - ex) < 0.4), (rf, ex)
    assert np.mean(rf - ex) > 0.0, (rf, ex)  # the measured direction (8 of 8 class measurements)
