"""Per-class generalisation, memorisation and onset times from learning curves (one implementation).

Every curve set — asymptotic theory, finite-d closed form, or a simulation log — is reduced to times by the
same functions, on normalised per-class errors ε_c(τ) (``theory_notes/04_dynamics.md`` §4)::

    ε = 1 untrained,   ε = 0 exact class score,   ε^tr < 0  fits the training points better than the true score.

Definitions (first crossing of a level, log-linear interpolation in τ between grid points)::

    τ_gen,c   : first τ with ε_c^te(τ) ≤ (1 + min_τ ε_c^te)/2        half the achievable test-error descent
    τ_mem,c   : first τ with ε_c^tr(τ) ≤ ε_c^tr(∞)/2                 half the asymptotic memorisation
                (defined only when ε_c^tr(∞) < 0; NaN otherwise)
    τ_onset,c : first τ with ε_c^tr(τ) ≤ −1                           one class-score unit below Bayes (no asymptote)

A level never reached on the grid gives ``+inf``; a level already met at the first grid point gives ``NaN``
(the grid starts too late to resolve the time). All functions are written in ``jax.numpy`` over trailing
time axes ``(..., T)``, so they run inside ``jit``/``vmap`` (phase diagrams) as well as on NumPy logs.

Example::

    >>> import numpy as np
    >>> taus = np.logspace(-2, 3, 200)
    >>> eps_te = 0.2 + 0.8 * np.exp(-taus)              # descends to 0.2 on the time 1
    >>> eps_tr = 0.2 + 0.8 * np.exp(-taus) - 3 * (1 - np.exp(-taus / 100))
    >>> ts = curve_timescales(taus, eps_te, eps_tr)
    >>> round(float(ts.tau_gen), 2)                    # e^{-τ} = 1/2
    0.69
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

if TYPE_CHECKING:  # annotations only (jaxtyping shapes); no runtime import
    from jaxtyping import Array, ArrayLike, Float

__all__ = [
    "Timescales",
    "first_crossing",
    "generalization_time",
    "memorization_time",
    "onset_time",
    "curve_timescales",
    "reversal_boundary",
    "scaling_exponents",
]


def _check_taus(taus):
    if isinstance(taus, jax.core.Tracer):
        return
    t = np.asarray(taus, dtype=float)
    if t.ndim != 1 or t.size < 2:
        raise ValueError(f"taus must be a 1-d grid of at least 2 times, got shape {t.shape}")
    if not np.all(np.isfinite(t)) or np.any(t <= 0) or np.any(np.diff(t) <= 0):
        raise ValueError("taus must be finite, positive and strictly increasing")


def first_crossing(taus: Float[ArrayLike, "T"], y: Float[ArrayLike, "*b T"],
                   level: float | Float[ArrayLike, "*b"]) -> Float[Array, "*b"]:
    """First τ at which ``y`` (shape (..., T)) falls to ``level`` (shape (...)), log-linear interpolation.

    Between the last grid point above the level and the first at or below it, log τ is interpolated
    linearly in y. Returns ``+inf`` if never reached, ``NaN`` if ``y[..., 0] ≤ level`` or ``level`` is NaN.
    """
    _check_taus(taus)
    y = jnp.asarray(y)
    logt = jnp.log(jnp.asarray(taus, dtype=y.dtype))
    level = jnp.asarray(level, dtype=y.dtype)[..., None]
    below = y <= level
    idx = jnp.argmax(below, axis=-1)  # first index at or below the level (0 if none)
    hit = jnp.any(below, axis=-1)
    i1 = jnp.maximum(idx, 1)
    y0 = jnp.take_along_axis(y, (i1 - 1)[..., None], axis=-1)[..., 0]
    y1 = jnp.take_along_axis(y, i1[..., None], axis=-1)[..., 0]
    lvl = level[..., 0]
    denom = y0 - y1
    frac = jnp.where(denom > 0, (y0 - lvl) / jnp.where(denom > 0, denom, 1.0), 1.0)
    frac = jnp.clip(frac, 0.0, 1.0)
    out = jnp.exp(logt[i1 - 1] + frac * (logt[i1] - logt[i1 - 1]))
    out = jnp.where(hit, out, jnp.inf)
    return jnp.where((hit & (idx == 0)) | jnp.isnan(lvl), jnp.nan, out)


def generalization_time(taus: Float[ArrayLike, "T"], eps_test: Float[ArrayLike, "*b T"]) -> Float[Array, "*b"]:
    """τ_gen: first τ with ε^te ≤ (1 + min ε^te)/2. Shape (..., T) → (...)."""
    eps_test = jnp.asarray(eps_test)
    return first_crossing(taus, eps_test, 0.5 * (1.0 + jnp.min(eps_test, axis=-1)))


def memorization_time(taus: Float[ArrayLike, "T"], eps_train: Float[ArrayLike, "*b T"],
                      eps_train_inf: Float[ArrayLike, "*b"] | None = None) -> Float[Array, "*b"]:
    """τ_mem: first τ with ε^tr ≤ ε^tr(∞)/2; NaN where ε^tr(∞) ≥ 0 (no memorisation).

    ``eps_train_inf`` (shape (...)) is the asymptote (closed form: f = 1/λ; theory: μ → 0). If omitted, the last
    point of the curve is used — only meaningful when the grid reaches the plateau.
    """
    eps_train = jnp.asarray(eps_train)
    inf = eps_train[..., -1] if eps_train_inf is None else jnp.asarray(eps_train_inf, eps_train.dtype)
    level = jnp.where(inf < 0, 0.5 * inf, jnp.nan)
    return first_crossing(taus, eps_train, level)


def onset_time(taus: Float[ArrayLike, "T"], eps_train: Float[ArrayLike, "*b T"], level: float = -1.0
               ) -> Float[Array, "*b"]:
    """τ_onset: first τ with ε^tr ≤ ``level`` (default −1: one class-score unit below the Bayes loss)."""
    eps_train = jnp.asarray(eps_train)
    return first_crossing(taus, eps_train, jnp.full(eps_train.shape[:-1], level, eps_train.dtype))


class Timescales(NamedTuple):
    """Per-class times (each shape (...), typically (..., K))."""

    tau_gen: jax.Array
    tau_mem: jax.Array
    tau_onset: jax.Array
    eps_test_min: jax.Array  # best generalisation reached on the grid
    tau_test_min: jax.Array  # grid time at which it is reached
    eps_train_inf: jax.Array  # memorisation asymptote used for τ_mem


def curve_timescales(taus: Float[ArrayLike, "T"], eps_test: Float[ArrayLike, "*b T"], eps_train: Float[ArrayLike, "*b T"],
                     eps_train_inf: Float[ArrayLike, "*b"] | None = None, onset_level: float = -1.0) -> Timescales:
    """All times from curves ε^te, ε^tr of shape (..., T) on the grid ``taus`` (T,). See module docstring."""
    eps_test = jnp.asarray(eps_test)
    eps_train = jnp.asarray(eps_train)
    if eps_test.shape != eps_train.shape:
        raise ValueError(f"eps_test {eps_test.shape} and eps_train {eps_train.shape} must have the same shape")
    if not isinstance(taus, jax.core.Tracer) and eps_test.shape[-1] != np.shape(taus)[-1]:
        raise ValueError(f"curves have {eps_test.shape[-1]} times but taus has {np.shape(taus)[-1]}")
    inf = eps_train[..., -1] if eps_train_inf is None else jnp.asarray(eps_train_inf, eps_train.dtype)
    imin = jnp.argmin(eps_test, axis=-1)
    return Timescales(
        tau_gen=generalization_time(taus, eps_test),
        tau_mem=memorization_time(taus, eps_train, inf),
        tau_onset=onset_time(taus, eps_train, onset_level),
        eps_test_min=jnp.min(eps_test, axis=-1),
        tau_test_min=jnp.asarray(taus, eps_test.dtype)[imin],
        eps_train_inf=inf,
    )


def reversal_boundary(log_ratio: Callable[[float, float], float], fixed_values: Sequence[float],
                      bracket: tuple[float, float], *, num_scan: int = 17, xtol: float = 1e-10
                      ) -> Float[np.ndarray, "V"]:
    """Root-found reversal line: for each ``v`` in ``fixed_values`` the ``x`` in ``bracket`` with
    ``log_ratio(v, x) = 0`` (e.g. x = imbalance π_1, v = variance ratio, log_ratio = log τ_1/τ_2).

    The bracket is first scanned on ``num_scan`` points for a sign change, then refined by
    :func:`scipy.optimize.brentq`. Returns an array like ``fixed_values``: the first root, or NaN where the order
    does not flip inside the bracket (that *is* the result "imbalance cannot reverse the order" there).
    """
    from scipy.optimize import brentq

    lo, hi = map(float, bracket)
    if not lo < hi:
        raise ValueError(f"bracket must satisfy lo < hi, got {bracket}")
    xs = np.linspace(lo, hi, num_scan)
    out = []
    for v in np.asarray(fixed_values, dtype=float).ravel():
        g = np.array([float(log_ratio(v, x)) for x in xs])
        root = np.nan
        for j in range(num_scan - 1):
            if np.isfinite(g[j]) and np.isfinite(g[j + 1]) and g[j] * g[j + 1] <= 0:
                root = xs[j] if g[j] == 0 else brentq(lambda x: float(log_ratio(v, x)), xs[j], xs[j + 1],
                                                      xtol=xtol)
                break
        out.append(root)
    return np.asarray(out).reshape(np.shape(fixed_values))


def scaling_exponents(n: Float[ArrayLike, "N"], tau: Float[ArrayLike, "N"]) -> tuple[Float[np.ndarray, "N"], float]:
    """Local exponents d log τ / d log n (centred differences, shape like ``n``) and a global log-log fit.

    Returns ``(local, slope)``; non-finite times are ignored in the fit. Used for the τ_mem ∝ n^α check.
    """
    n = np.asarray(n, dtype=float)
    tau = np.asarray(tau, dtype=float)
    if n.shape != tau.shape or n.ndim != 1 or n.size < 2:
        raise ValueError("n and tau must be 1-d arrays of equal length ≥ 2")
    ln, lt = np.log(n), np.log(tau)
    local = np.gradient(lt, ln)
    ok = np.isfinite(lt)
    slope = np.polyfit(ln[ok], lt[ok], 1)[0] if ok.sum() >= 2 else np.nan
    return local, float(slope)
