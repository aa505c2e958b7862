"""Generation with per-time RF scores (rfdiff.simulate.generation): score selection, sampler plumbing, memorisation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rfdiff import GaussianMixture, RFModel
from rfdiff.finite.features import realise
from rfdiff.simulate.generation import RFScoreGrid, generate, memorization, rf_score_fn, train_time_grid
from rfdiff.simulate.train import TrainConfig


@pytest.fixture(scope="module")
def prob():
    return realise(jax.random.key(0), GaussianMixture.create([0.5, 0.5], [4.0, 1.0]),
                   RFModel(2.0, 1.0, 0.01, "tanh"), 12)


def test_score_fn_uses_the_model_nearest_in_log_time(prob):
    rng = np.random.default_rng(0)
    times = np.array([0.01, 0.1, 1.0])
    A = rng.standard_normal((3, prob.d, prob.p))
    grid = RFScoreGrid(times, A, np.asarray(prob.W), "tanh")
    score = rf_score_fn(grid, dtype=jnp.float64)
    x = rng.standard_normal((5, prob.d))
    phi = np.tanh(x @ np.asarray(prob.W).T / np.sqrt(prob.d))
    for t, j in [(0.012, 0), (0.05, 1), (0.2, 1), (0.5, 2), (3.0, 2)]:  # log-midpoints: 0.0316, 0.316
        np.testing.assert_allclose(np.asarray(score(jnp.asarray(x), jnp.asarray(t))), phi @ A[j].T / np.sqrt(prob.p),
                                   rtol=1e-12)


@pytest.mark.slow
def test_trained_grid_and_generation(prob):
    """Per-time training runs (exact noise) give one readout per time; generation is deterministic in its key and
    lands near the data scale; memorisation of training points themselves is 1, of far-away points 0."""
    grid = train_time_grid(prob, [0.05, 0.5], lambda t, lam: TrainConfig(lr=0.5 / lam, steps=20, noise="exact",
                                                                        dtype="float64", num_logs=2, n_test=5),
                           moments_kwargs={"k_max": 12})  # explicit Mehler order: d = 12 is below the auto check
    assert grid.A.shape == (2, prob.d, prob.p) and np.all(np.isfinite(grid.A))
    assert not np.allclose(grid.A[0], grid.A[1])
    x1 = generate(grid, jax.random.key(3), 64, t_max=3.0, num_steps=60)
    x2 = generate(grid, jax.random.key(3), 64, t_max=3.0, num_steps=60)
    np.testing.assert_array_equal(x1, x2)
    assert x1.shape == (64, prob.d) and np.all(np.isfinite(x1))
    train = np.asarray(prob.x0)
    rep = memorization(train[:10] + 1e-6, prob)
    assert rep.overall == 1.0
    rep = memorization(100.0 + np.zeros((4, prob.d)), prob)
    assert rep.overall == 0.0


def test_bad_inputs(prob):
    with pytest.raises(ValueError, match="times"):
        train_time_grid(prob, [0.1, 0.05], lambda t, lam: None)
    grid = RFScoreGrid(np.array([0.5]), np.zeros((1, prob.d, prob.p)), np.asarray(prob.W), "tanh")
    with pytest.raises(ValueError, match="t_max"):
        generate(grid, jax.random.key(0), 4, t_max=0.1)
