"""Backward (generative) samplers for the OU diffusion with any score: SDE, probability-flow ODE, cloning.

Forward process (see :mod:`rfdiff.model.diffusion`): ``dx = −x dt + √2 dW``, so ``x_t = e^{-t}x_0 + √Δ_t ξ``.
Its time reversal, run from ``t = T`` down to ``t_min`` (Anderson 1982; Song et al. 2021), is::

    backward SDE:          −dx = [x + 2 s(x, t)] dt + √2 dW̄
    probability-flow ODE:  −dx = [x +   s(x, t)] dt

with ``s = ∇ log p_t``. One step from ``t_k`` to ``t_{k+1} = t_k − h`` (``h > 0``):

* ``"euler"`` (Euler–Maruyama): ``x ← x + h(x + 2s) + √(2h) ξ``  (ODE: ``x ← x + h(x + s)``);
* ``"exponential"`` (linear part integrated exactly, score frozen over the step):
  ``x ← e^h x + 2(e^h − 1)s + √(e^{2h} − 1) ξ``  (ODE: ``x ← e^h x + (e^h − 1)s``).

**Score-function signature** (the plug-in point for learned scores — RF models, U-Nets)::

    score_fn(x, t) -> s        x: (n, d) array of states, t: scalar array (traced), s: (n, d)

It must be JAX-traceable: it is called inside ``lax.scan`` under ``jit``. :func:`mixture_score_fn` builds
the exact score of a Gaussian mixture (stable log-sum-exp / softmax form from :mod:`rfdiff.model.diffusion`).

**Fast path: score modules.** The samplers are compiled by :func:`equinox.filter_jit`, which splits the
score (and the observer) into its arrays, passed as traced arguments, and the rest, hashed as static. A score
given as an :class:`equinox.Module` with array fields — :func:`mixture_score_fn`, :func:`posterior_observer`
and :func:`rfdiff.simulate.generation.rf_score_fn` return such modules — is therefore compiled once per
*structure and shapes*: a new readout ``A`` or new centroids of the same shapes reuse the compiled program,
and the arrays are not baked into it as constants. A plain Python callable (a closure) still works, but is
hashed by identity: every new closure recompiles and the arrays it captures become program constants (the
slow path: 1.5–3.6 s per new score at d = 64 (n = 500, 200 steps) on a shared 2-core CPU against 0.1–0.2 s
for a module, see ``benchmarks/results/sampling.md``). Write your own score as a module to get the fast path::

    class LinearScore(eqx.Module):
        M: jax.Array                     # (d, d)
        def __call__(self, x, t):
            return -x @ self.M.T

Time grids are geometric from ``T`` to ``t_min`` (:func:`geometric_grid`), dense where the score changes
fast (small t). Example::

    >>> import jax, rfdiff
    >>> from rfdiff.simulate.sampling import geometric_grid, backward_sde, mixture_score_fn
    >>> mix = rfdiff.GaussianMixture.create([0.9, 0.1], [1.0, 1.0]).with_strong_centroids([1.0, 1.0])
    >>> mu = mix.centroids(jax.random.key(1), 64)
    >>> ts = geometric_grid(8.0, 1e-3, 200)
    >>> out = backward_sde(mixture_score_fn(mix, mu), jax.random.key(0), ts, n=100, d=64)
    >>> out.x.shape
    (100, 64)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..model.mixture import GaussianMixture

if TYPE_CHECKING:  # annotations only (jaxtyping shapes); no runtime import
    from jaxtyping import Array, ArrayLike, DTypeLike, Float, Key

__all__ = [
    "ScoreFn",
    "SampleResult",
    "MixtureScore",
    "MixturePosterior",
    "geometric_grid",
    "mixture_score_fn",
    "posterior_observer",
    "backward_sde",
    "probability_flow_ode",
]

ScoreFn = Callable[[jax.Array, jax.Array], jax.Array]
_METHODS = ("euler", "exponential")


class SampleResult(NamedTuple):
    """Output of a sampler: final states ``x`` (n, d) and ``observed``, the stacked ``observe(x_t, t)``
    values at ``t_grid[1:]`` (leading axis ``len(t_grid) − 1``), or ``None`` without an observer."""

    x: jax.Array
    observed: Any


def geometric_grid(t_max: float, t_min: float, num_steps: int) -> Float[np.ndarray, "N+1"]:
    """Decreasing geometric grid ``t_k = T (t_min/T)^{k/N}``, k = 0..N (float64, shape (N+1,))."""
    if not (np.isfinite(t_max) and t_max > 0):
        raise ValueError(f"t_max must be a positive finite time, got {t_max}")
    if not (np.isfinite(t_min) and 0 < t_min < t_max):
        raise ValueError(f"t_min must satisfy 0 < t_min < t_max={t_max}, got {t_min}")
    if int(num_steps) != num_steps or num_steps < 1:
        raise ValueError(f"num_steps must be a positive integer, got {num_steps}")
    return t_max * (t_min / t_max) ** (np.arange(num_steps + 1) / num_steps)


def _check_grid(t_grid) -> np.ndarray:
    ts = np.asarray(t_grid, dtype=np.float64)
    if ts.ndim != 1 or ts.size < 2:
        raise ValueError(f"t_grid must be a 1-d array of at least 2 times, got shape {ts.shape}")
    if not np.all(np.isfinite(ts)) or np.any(ts <= 0):
        raise ValueError(f"t_grid times must be positive and finite, got min {ts.min()}")
    if np.any(np.diff(ts) >= 0):
        raise ValueError("t_grid must be strictly decreasing (backward time, from T to t_min)")
    return ts


class _MixtureArrays(NamedTuple):
    log_prop: jax.Array  # (K,)
    cov0: jax.Array      # (K, d) class covariance diagonals at t = 0
    mu: jax.Array        # (K, d) centroids


def _mixture_arrays(mixture: GaussianMixture, centroids) -> _MixtureArrays:
    # Concrete arrays held by the score/observer modules (cast to the state dtype inside the trace).
    mu = np.asarray(centroids, dtype=np.float64)
    if mu.ndim != 2 or mu.shape[0] != mixture.num_classes:
        raise ValueError(f"centroids must have shape (K={mixture.num_classes}, d), got {mu.shape}")
    with np.errstate(divide="ignore"):
        log_prop = np.log(np.asarray(mixture.proportions, dtype=np.float64))
    cov0 = np.asarray(mixture.covariance_diagonal(mu.shape[1]), np.float64)
    # Copy into JAX-owned buffers: XLA then never reads from (unpadded) NumPy memory.
    # (A NumPy-backed closure constant coincided with sporadic Eigen segfaults in long CPU runs.)
    ftype = jax.dtypes.canonicalize_dtype(jnp.float64)  # float32 when x64 is off
    return _MixtureArrays(*(jnp.array(a, dtype=ftype) for a in (log_prop, cov0, mu)))


def _logits_and_precisions(arr: _MixtureArrays, x, t):
    """Unnormalised log P(c|x_t) (n, K) and the precisions 1/C_c(t) (K, d), by matmuls.

    ||x − m_c||²_{C⁻¹} is expanded as (x²)·C⁻¹ − 2 x·(m_c C⁻¹) + m_c·(m_c C⁻¹), one fused reduction per class:
    no (n, K, d) temporary, so many trajectories fit in memory at d ~ 10⁴.
    """
    dt = x.dtype
    e2t = jnp.exp(-2.0 * t)
    cdiag = e2t * jnp.asarray(arr.cov0, dt) - jnp.expm1(-2.0 * t)  # (K, d)
    prec = 1.0 / cdiag
    m = jnp.exp(-t) * jnp.asarray(arr.mu, dt)  # (K, d)
    mp = m * prec
    const = jnp.asarray(arr.log_prop, dt) - 0.5 * jnp.sum(m * mp, axis=-1) + 0.5 * jnp.sum(jnp.log(prec), axis=-1)
    # one fused multiply-reduce per class instead of thin (n, d) @ (d, K) dots: XLA's CPU dot for N = K = 2
    # crashed sporadically (Eigen segfault) in long runs; K is small and static, so this loop is cheap.
    x2 = x * x
    quad = jnp.stack([jnp.sum(x2 * prec[c][None, :] - 2.0 * x * mp[c][None, :], axis=-1)
                      for c in range(prec.shape[0])], axis=-1)  # (n, K)
    return const[None, :] - 0.5 * quad, prec, mp


def _mix_rows(post, rows):
    """Σ_c post[:, c] rows[c] for post (n, K), rows (K, d), without a dot (see above)."""
    return sum(post[:, c][:, None] * rows[c][None, :] for c in range(rows.shape[0]))


class MixtureScore(eqx.Module):
    """Exact score ``∇ log p_t(x) = Σ_c P(c|x)(−C_c⁻¹(x − m_c))`` of the noised mixture, ``score(x, t)``.

    ``x`` (n, d), ``t`` scalar → (n, d). An equinox module: its arrays (log π (K,), class covariance
    diagonals at t = 0 (K, d), centroids (K, d)) are traced arguments of the samplers, not constants.
    Build it with :func:`mixture_score_fn`.
    """

    arrays: _MixtureArrays

    def __call__(self, x: jax.Array, t: jax.Array) -> jax.Array:
        logits, prec, mp = _logits_and_precisions(self.arrays, x, jnp.asarray(t).astype(x.dtype))
        post = jax.nn.softmax(logits, axis=-1)  # (n, K)
        return -x * _mix_rows(post, prec) + _mix_rows(post, mp)


class MixturePosterior(eqx.Module):
    """``observe(x, t) -> log P(c | x_t)`` (n, K) under the mixture; an equinox module like
    :class:`MixtureScore`. Build it with :func:`posterior_observer`."""

    arrays: _MixtureArrays

    def __call__(self, x: jax.Array, t: jax.Array) -> jax.Array:
        return jax.nn.log_softmax(_logits_and_precisions(self.arrays, x, jnp.asarray(t).astype(x.dtype))[0],
                                  axis=-1)


def mixture_score_fn(mixture: GaussianMixture, centroids: Float[ArrayLike, "K d"]) -> MixtureScore:
    """Exact score ``∇ log p_t(x) = Σ_c P(c|x)(−C_c⁻¹(x − m_c))`` of the noised mixture, as ``score_fn(x, t)``.

    The posterior is a softmax of logits (log-sum-exp stable); equals :func:`rfdiff.mixture_score`. Returns a
    :class:`MixtureScore` module: a new mixture or new centroids with the same (K, d) reuse the compiled sampler.
    """
    return MixtureScore(_mixture_arrays(mixture, centroids))


def posterior_observer(mixture: GaussianMixture, centroids: Float[ArrayLike, "K d"]) -> MixturePosterior:
    """``observe(x, t) -> log P(c | x_t)`` of shape (n, K) under the *true* mixture (used to classify
    trajectories of any sampler, learned scores included); a :class:`MixturePosterior` module."""
    return MixturePosterior(_mixture_arrays(mixture, centroids))


def _check_method(method):
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")


def _init(key, x_T, n, d, dtype):
    """x_T given, or n draws of the stationary law N(0, I_d) (the forward process at T = ∞)."""
    if x_T is not None:
        x_T = jnp.asarray(x_T)
        if x_T.ndim != 2:
            raise ValueError(f"x_T must have shape (n, d), got {x_T.shape}")
        return x_T, key
    if n is None or d is None or int(n) < 1 or int(d) < 1:
        raise ValueError(f"without x_T, give positive integers n and d, got n={n}, d={d}")
    k0, key = jax.random.split(key)
    return jax.random.normal(k0, (int(n), int(d)), dtype=dtype), key


@eqx.filter_jit
def _integrate(score_fn, key, x, t_now, h, t_next, *, stochastic: bool, method: str, observe):
    """Core loop: lax.scan over the steps. Times are traced arguments, so one compilation serves every grid
    with the same number of steps. ``filter_jit`` traces the array leaves of ``score_fn`` and ``observe``
    (equinox modules: new arrays of the same shapes reuse the program) and hashes the rest (a plain
    callable by identity; ``stochastic`` and ``method`` by value)."""
    keys = jax.random.split(key, h.shape[0])
    drift_mult = 2.0 if stochastic else 1.0

    def step(x, inp):
        t, hk, tn, k = inp
        s = score_fn(x, t)
        if method == "euler":
            x = x + hk * (x + drift_mult * s)
            if stochastic:
                x = x + jnp.sqrt(2.0 * hk) * jax.random.normal(k, x.shape, dtype=x.dtype)
        else:  # exponential integrator: OU part exact, score frozen on the step
            x = jnp.exp(hk) * x + drift_mult * jnp.expm1(hk) * s
            if stochastic:
                x = x + jnp.sqrt(jnp.expm1(2.0 * hk)) * jax.random.normal(k, x.shape, dtype=x.dtype)
        return x, (None if observe is None else observe(x, tn))

    x, obs = jax.lax.scan(step, x, (t_now, h, t_next, keys))
    return SampleResult(x, obs)


def _run(score_fn, key, x, ts, stochastic, method, observe):
    # step sizes are differences of the float64 grid, cast afterwards (no float32 cancellation at small t)
    dt = x.dtype
    return _integrate(score_fn, key, x, jnp.asarray(ts[:-1], dt), jnp.asarray(ts[:-1] - ts[1:], dt),
                      jnp.asarray(ts[1:], dt), stochastic=stochastic, method=method, observe=observe)


def backward_sde(score_fn: ScoreFn, key: Key[Array, ""], t_grid: Float[ArrayLike, "N+1"], *,
                 x_T: Float[ArrayLike, "n d"] | None = None, n: int | None = None, d: int | None = None,
                 method: str = "euler", observe: Callable | None = None,
                 dtype: DTypeLike = jnp.float32) -> SampleResult:
    """Integrate the backward SDE ``−dx = [x + 2 s(x,t)]dt + √2 dW̄`` along the decreasing ``t_grid``.

    Args:
      score_fn: ``score_fn(x (n,d), t scalar) -> (n,d)``, jax-traceable; an :class:`equinox.Module` (fast:
        new arrays of the same shapes reuse the compiled program) or a plain callable (recompiled per
        new callable).
      key: PRNG key (noise, and the initial state when ``x_T`` is not given).
      t_grid: strictly decreasing positive times ``T = t_0 > … > t_N`` (e.g. :func:`geometric_grid`).
      x_T: initial states (n, d); default n draws of N(0, I_d) in ``dtype``.
      method: ``"euler"`` (Euler–Maruyama) or ``"exponential"`` (see module docstring).
      observe: optional ``observe(x, t) -> pytree`` recorded after every step (at ``t_grid[1:]``); a module
        or a callable, as ``score_fn``.

    Returns :class:`SampleResult` with the states at ``t_grid[-1]``. The same key gives the same result.
    """
    ts = _check_grid(t_grid)
    _check_method(method)
    x, key = _init(key, x_T, n, d, dtype)
    return _run(score_fn, key, x, ts, True, method, observe)


def probability_flow_ode(score_fn: ScoreFn, t_grid: Float[ArrayLike, "N+1"], *,
                         x_T: Float[ArrayLike, "n d"] | None = None, key: Key[Array, ""] | None = None,
                         n: int | None = None, d: int | None = None, method: str = "euler",
                         observe: Callable | None = None, dtype: DTypeLike = jnp.float32) -> SampleResult:
    """Integrate the probability-flow ODE ``−dx = [x + s(x,t)]dt`` (deterministic given ``x_T``).

    Same arguments as :func:`backward_sde`; ``key`` is needed only to draw ``x_T`` when it is not given.
    """
    ts = _check_grid(t_grid)
    _check_method(method)
    if x_T is None and key is None:
        raise ValueError("probability_flow_ode needs x_T or a key to draw it")
    x, key = _init(jax.random.key(0) if key is None else key, x_T, n, d, dtype)
    return _run(score_fn, key, x, ts, False, method, observe)
