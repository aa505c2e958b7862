"""Samplers with score *modules* (rfdiff.simulate.sampling, .generation): no recompilation for new arrays.

A score given as an equinox module is split by ``eqx.filter_jit`` into traced arrays and a static rest, so a
second score of the same structure and shapes must reuse the compiled sampler (counted here by a Python side
effect, which runs only while JAX traces) and must give exactly what the plain-closure path (arrays captured
as constants, one compilation per closure) gives. Measured: bit-identical on these grids (max difference 0, float64);
the tolerance, 1e-12 relative, leaves room for XLA to fuse a constant differently from an argument (an ulp per
step over 30-40 steps) without hiding a real difference, which would be O(1) (different readouts differ by O(1)).
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rfdiff
from rfdiff.simulate.generation import RFScore, RFScoreGrid, rf_score_fn
from rfdiff.simulate.sampling import (MixtureScore, backward_sde, geometric_grid, mixture_score_fn,
                                      posterior_observer, probability_flow_ode)

TRACES: list = []


class Counting(eqx.Module):
    """Wraps a score module; appends to TRACES each time JAX traces it (never on a cached call)."""

    inner: eqx.Module

    def __call__(self, x, t):
        TRACES.append(type(self.inner).__name__)
        return self.inner(x, t)


def _rf_grid(seed, d=8, p=12, J=3):
    rng = np.random.default_rng(seed)
    return RFScoreGrid(np.array([0.02, 0.2, 2.0])[:J], rng.standard_normal((J, d, p)),
                       rng.standard_normal((p, d)), "tanh")


def _closure(module):
    """The old path: a plain function capturing the module's arrays (static, hashed by identity)."""
    return lambda x, t: module(x, t)


def test_rf_score_module_equals_its_formula():
    grid = _rf_grid(0)
    score = rf_score_fn(grid, dtype=jnp.float64)
    assert isinstance(score, RFScore)
    x = np.random.default_rng(1).standard_normal((5, 8))
    phi = np.tanh(x @ grid.W.T / np.sqrt(8))
    np.testing.assert_allclose(np.asarray(score(jnp.asarray(x), jnp.asarray(0.25))), phi @ grid.A[1].T / np.sqrt(12),
                               rtol=1e-12)


@pytest.mark.parametrize("sampler", ["sde", "ode"])
def test_new_rf_readout_reuses_the_compiled_sampler_and_matches_the_closure_path(sampler):
    ts = geometric_grid(3.0, 0.02, 40)

    def run(score, key, n=16):
        if sampler == "sde":
            return backward_sde(score, key, ts, n=n, d=8, method="exponential", dtype=jnp.float64).x
        return probability_flow_ode(score, ts, key=key, n=n, d=8, dtype=jnp.float64).x

    TRACES.clear()
    scores = [rf_score_fn(_rf_grid(s), dtype=jnp.float64) for s in (0, 1, 2)]
    outs = [run(Counting(s), jax.random.key(4)) for s in scores]
    assert len(TRACES) == 1, TRACES  # one trace for three different readouts of the same shapes
    assert not np.allclose(outs[0], outs[1])  # the arrays really were arguments, not a stale constant
    for s, o in zip(scores, outs):
        np.testing.assert_allclose(o, run(_closure(s), jax.random.key(4)), rtol=1e-12, atol=1e-12)
    # a different shape (more trajectories) is a new program: the counter sees it, so it can fail
    run(Counting(scores[0]), jax.random.key(4), n=17)
    assert len(TRACES) == 2


def test_new_mixture_reuses_the_compiled_sampler_with_observer():
    d = 10
    ts = geometric_grid(4.0, 0.01, 30)
    TRACES.clear()
    res = []
    for i, p_min in enumerate((0.3, 0.1)):
        mix = rfdiff.GaussianMixture.create([1 - p_min, p_min], [1.0, 2.0]).with_strong_centroids([1.0, 0.5])
        mu = mix.centroids(jax.random.key(i), d)
        score, obs = mixture_score_fn(mix, mu), posterior_observer(mix, mu)
        assert isinstance(score, MixtureScore)
        new = backward_sde(Counting(score), jax.random.key(7), ts, n=20, d=d, observe=obs, dtype=jnp.float64)
        old = backward_sde(_closure(score), jax.random.key(7), ts, n=20, d=d, observe=_closure(obs),
                           dtype=jnp.float64)
        np.testing.assert_allclose(new.x, old.x, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(new.observed, old.observed, rtol=1e-12, atol=1e-12)
        res.append(new.observed)
    assert TRACES == ["MixtureScore"]
    assert not np.allclose(res[0], res[1])


def test_module_arrays_are_arguments_not_constants():
    # the jaxpr of one step closes over no constants when the score is a module (it does for a closure)
    score = rf_score_fn(_rf_grid(0), dtype=jnp.float64)
    x, t = jnp.ones((3, 8)), jnp.asarray(0.5)
    assert eqx.filter_make_jaxpr(lambda s, x, t: s(x, t))(score, x, t)[0].consts == []
    assert len(jax.make_jaxpr(_closure(score))(x, t).consts) > 0
