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
(the grid starts too late to resolve the time).

**Spectral times** (:func:`spectral_times`, ``theory_notes/11_spectral_times.md``) read the same three levels off a
per-class spectral measure instead of a curve. With U = Σ_k λ_k q_k q_kᵀ and the class-c loss mass
m_c,k = (q_kᵀ V_c Vᵀ q_k)/(d λ_k S_c) (ε units), every clock's train curve of the class-weighted loss is
1 − Σ_k m_k h(λ_kτ) with h(x) = 1 − e^{−2x} (flow) or 1 − (1 + x)^{−2} (ridge); the clock-free *sharp filter*
ĥ(x) = min(2x, 1) keeps both of h's asymptotes (2x learning, then saturation) and gives, per class,
C_c(τ) = Σ_k m_c,k min(2λ_kτ, 1) (the mass above 1/(2τ) plus 2τ × the first moment below)::

    τ^spec_gen,c   : C_c = 1/2                      half the Bayes gap
    τ^spec_mem,c   : C_c = (1 + M_c)/2,  M_c = Σ_k m_c,k      half the spectral plateau 1 − M_c (NaN if M_c ≤ 1)
    τ^spec_onset,c : C_c = 2                        ε̂ = −1

Since h ≤ ĥ on both clocks, a curve that *is* 1 − Σ m h (one class, or the class-weighted total) crosses each
level no earlier than its spectral time; for one atom of mass M at λ and a level u·M the ratio is
−ln(1 − u)/u (flow) or 2[(1 − u)^{−1/2} − 1]/u (ridge), → 1 as u → 0.

All functions are written in ``jax.numpy`` over trailing time axes ``(..., T)`` (or ``(..., N)`` atoms), so they
run inside ``jit``/``vmap`` (phase diagrams) as well as on NumPy logs.

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

from ..precision import float64

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
    "SpectralTimes",
    "spectral_times",
]


def _check_taus(taus):
    if isinstance(taus, jax.core.Tracer):
        return
    t = np.asarray(taus, dtype=float)
    if t.ndim != 1 or t.size < 2:
        raise ValueError(f"taus must be a 1-d grid of at least 2 times, got shape {t.shape}")
    if not np.all(np.isfinite(t)) or np.any(t <= 0) or np.any(np.diff(t) <= 0):
        raise ValueError("taus must be finite, positive and strictly increasing")


@float64
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


@float64
def generalization_time(taus: Float[ArrayLike, "T"], eps_test: Float[ArrayLike, "*b T"]) -> Float[Array, "*b"]:
    """τ_gen: first τ with ε^te ≤ (1 + min ε^te)/2. Shape (..., T) → (...)."""
    eps_test = jnp.asarray(eps_test)
    return first_crossing(taus, eps_test, 0.5 * (1.0 + jnp.min(eps_test, axis=-1)))


@float64
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


@float64
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


@float64
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


class SpectralTimes(NamedTuple):
    """Per-class spectral times (each shape (...)); see :func:`spectral_times`."""

    tau_gen_spec: jax.Array
    tau_mem_spec: jax.Array
    tau_onset_spec: jax.Array
    mass_spec: jax.Array  # M_c = total loss mass (ε units): 1 − M_c is the sharp-cutoff plateau ε̂_c(∞)


def _check_spectrum(lam, mass):
    if isinstance(lam, jax.core.Tracer) or isinstance(mass, jax.core.Tracer):
        return
    lam_np, mass_np = np.asarray(lam, dtype=float), np.asarray(mass, dtype=float)
    if lam_np.ndim < 1 or lam_np.shape[-1] < 1 or mass_np.ndim < 1 or mass_np.shape[-1] != lam_np.shape[-1]:
        raise ValueError(f"lam (..., N) and mass (..., N) must share their last axis, got {lam_np.shape} and "
                         f"{mass_np.shape}")
    if not np.all(np.isfinite(lam_np)):
        raise ValueError("lam must be finite")
    if not np.all(np.isfinite(mass_np)):
        raise ValueError("mass must be finite (zero the weight of null directions instead of dividing by λ = 0)")


@float64
def spectral_times(lam: Float[ArrayLike, "*b N"], mass: Float[ArrayLike, "*b N"], *, onset_level: float = -1.0
                   ) -> SpectralTimes:
    """Spectral per-class times from atoms ``lam`` carrying loss mass ``mass`` (ε units), in closed form.

    ``lam`` (..., N) broadcasts against ``mass`` (..., N) (e.g. one eigenvalue set for K classes: (N,) and
    (K, N)); ``mass[..., k]`` is m_c,k of the module docstring (the caller divides by S_c and by λ_k; directions
    with λ_k ≤ 0 are never learned). The sharp-filter curve ε̂(τ) = 1 − C(τ), C(τ) = Σ_k m_k min(2λ_kτ, 1), is
    piecewise linear in τ with breakpoints 1/(2λ_k); each time is its exact first crossing of the level
    C = ½ (gen), (1 + M)/2 (mem, M = Σ m_k; NaN if M ≤ 1), 1 − ``onset_level`` (onset). ``+inf`` where a level is
    never reached. Pure ``jax.numpy``: jit/vmap-able. A density on a grid is passed as node masses (density ×
    quadrature weight); C is continuous in τ, so the times move by O(grid spacing) only.

    Example (one atom λ = 2 carrying M = 4: C = 4 min(4τ, 1))::

        >>> ts = spectral_times(np.array([2.0]), np.array([4.0]))
        >>> [round(float(x), 6) for x in ts]   # ½ = 16τ; 5/2 = 16τ; 2 = 16τ; M
        [0.03125, 0.15625, 0.125, 4.0]
    """
    _check_spectrum(lam, mass)
    mass = jnp.asarray(mass)
    lam = jnp.broadcast_to(jnp.asarray(lam, mass.dtype), mass.shape)
    lam = jnp.maximum(lam, 0.0)  # λ ≤ 0: min(2λτ, 1) = 0 at every τ
    order = jnp.argsort(-lam, axis=-1, stable=True)  # descending λ: the order in which directions saturate
    lam_s = jnp.take_along_axis(lam, order, axis=-1)
    m_s = jnp.take_along_axis(mass, order, axis=-1)
    a_in = jnp.cumsum(m_s, axis=-1)  # A_k: mass of the saturated atoms j ≤ k
    lm = jnp.cumsum(lam_s * m_s, axis=-1)
    b_out = lm[..., -1:] - lm  # B_k = Σ_{j>k} λ_j m_j: first moment of the atoms still in their linear regime
    safe = jnp.where(lam_s > 0, lam_s, 1.0)
    c_at = jnp.where(lam_s > 0, a_in + b_out / safe, -jnp.inf)  # C at the breakpoint τ_k = 1/(2λ_k)
    total = a_in[..., -1]
    zero = jnp.zeros(total.shape + (1,), mass.dtype)
    # on the segment before breakpoint k: C = A_{k−1} + 2τ B_{k−1}
    a_prev = jnp.concatenate([zero, a_in[..., :-1]], axis=-1)
    b_prev = jnp.concatenate([lm[..., -1:], b_out[..., :-1]], axis=-1)

    def at_level(level):
        reached = c_at >= level[..., None]
        hit = jnp.any(reached, axis=-1)
        k = jnp.argmax(reached, axis=-1)[..., None]
        a = jnp.take_along_axis(a_prev, k, axis=-1)[..., 0]
        b = jnp.take_along_axis(b_prev, k, axis=-1)[..., 0]
        tau = jnp.where(b > 0, (level - a) / (2.0 * jnp.where(b > 0, b, 1.0)), 0.0)
        tau = jnp.maximum(tau, 0.0)
        return jnp.where(jnp.isnan(level), jnp.nan, jnp.where(hit, tau, jnp.inf))

    full = lambda v: jnp.full(total.shape, v, mass.dtype)  # noqa: E731
    return SpectralTimes(
        tau_gen_spec=at_level(full(0.5)),
        tau_mem_spec=at_level(jnp.where(total > 1.0, 0.5 * (1.0 + total), jnp.nan)),
        tau_onset_spec=at_level(full(1.0 - onset_level)),
        mass_spec=total,
    )
