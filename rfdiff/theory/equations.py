"""Core self-consistent equations for the resolvent of the feature covariance U (jit/vmap-able).

Derivation: ``theory_notes/03_spectrum.md`` §2–§4. With ``E_i`` the average over the neuron population
(:class:`NeuronPopulation`: quadrature nodes over the shift ``m_i`` or an explicit finite-d set), ``E_l`` the
average over covariance levels, ``c2_c = e^{-2t} σ_c²``, ``λ_c(l)`` the levels, ``f = π`` and the weights
``(ω, e)`` of ``U(ω, e) = Σ_c ω_c U_c^tr + Σ_c e_c U_c^pop`` (physical: ``ω = π``, ``e = 0``)::

    r_c    = ω_c / f_c,                       b_c = 1/(1 + r_c δ_c)
    κ_c(l) = ω_c (Δ + c2_c λ_c(l) b_c) + e_c (Δ + c2_c λ_c(l))
    Λ_i    = Σ_c [ω_c s²_ic + e_c (s²_ic + v²_ic) + ω_c v²_ic b_c] − z
    Θ(l)   = (I + K(l) Ξ)⁻¹ K(l),   K(l) = diag κ(l)
    D_i    = Λ_i + E_l[a_iᵀ Θ(l) a_i]
    Ξ      = ψ_p E_i[a_i a_iᵀ / D_i]
    R(l)   = Ξ (I + K(l) Ξ)⁻¹,       R = E_l R(l)
    δ_c    = (1/ψ_n) [c2_c E_l[λ_c(l) R(l)_cc] + ψ_p E_i[v²_ic / D_i]]
    g(z)   = (1/p) Tr (U − z)⁻¹ = E_i[1/D_i]

The unknowns ``x = (δ, Ξ)`` (K + K² complex numbers) solve ``x = T(x)``; ``T`` is holomorphic in ``x``, so
Newton's method uses the complex Jacobian. The physical branch (Im g > 0 for Im z > 0) is reached by
continuation in the imaginary part: start at ``z + iη₀`` with η₀ far above the spectrum (where ``T`` is a
contraction and the fixed point is ≈ the free one), then lower η geometrically to ``Im z``, one Newton step
per level from the previous level's solution (a FIXED schedule, ``N_LEVELS``/``N_FINAL``: every point of a
batch runs the same steps in lock step, no per-point while loop), checking Im g ≥ 0 at every level. Each
spectral point is solved independently (no warm start across λ, which is what jumps onto spurious real
branches), so a grid is one ``vmap`` (:func:`solve_grid`; points left above tolerance are re-solved on a
finer schedule). With fewer population nodes than classes (regime A: one node) the unknowns are
(δ, u_i = 1/D_i), K + Q numbers, and the K × K algebra becomes Q × Q by the push-through identity
(:func:`_node_map`); small Newton systems are solved in closed form / unrolled (:func:`_solve_small`).

On the real axis below the spectrum (z = −μ, μ > 0) everything is real: :func:`solve_real` runs a damped
fixed-point warm-up and Newton, and returns the implicit-function derivative dx/dθ of the solution in the
weights θ = (ω, e) (the learning curves, ``theory_notes/04_dynamics.md`` §3, need it).

This module also holds the ONE neuron-population builder (:func:`neuron_population`, scrambled-Sobol
quasi-Monte-Carlo over the shifts, or explicit shifts) and the ONE constants builder (:func:`constants`)
that the spectrum, the learning curves and the phase diagrams share.
"""

from __future__ import annotations

import functools
import warnings

# (XLA:CPU scheduler flag against a K ≥ 4 deadlock: set in rfdiff/__init__.py, before JAX can start)

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ..model.activations import ge_coefficients

__all__ = ["NeuronPopulation", "Constants", "ResolventState", "sobol_normal", "neuron_population", "constants",
           "fixed_point_map", "solve_point", "solve_near", "solve_grid", "solve_real"]


class NeuronPopulation(eqx.Module):
    """Per-neuron Gaussian-equivalence coefficients at quadrature nodes: arrays (Q, K), weights (Q,).

    Built by :func:`neuron_population`. ``weights`` sum to 1; a single node is regime A
    (neuron-independent coefficients).
    """

    weights: jax.Array  # (Q,)
    mu0: jax.Array  # (Q, K) mean feature E σ(h)
    a: jax.Array  # (Q, K) linear coefficient E σ'(h)
    v2: jax.Array  # (Q, K) non-linear variance surviving the noise average
    s2: jax.Array  # (Q, K) non-linear variance of the pure noise


class Constants(eqx.Module):
    """Everything the fixed-point map needs besides z (all leaves, float64)."""

    psi_p: jax.Array
    psi_n: jax.Array
    delta_t: jax.Array  # Δ_t
    c2: jax.Array  # (K,) e^{-2t} σ_c²
    levels: jax.Array  # (K, L)
    level_weights: jax.Array  # (L,)
    omega: jax.Array  # (K,)
    e: jax.Array  # (K,)
    ratio: jax.Array  # (K,) ω_c / f_c (0 where f_c = 0)
    pop: NeuronPopulation


@functools.lru_cache(maxsize=32)
def _sobol_normal_cached(n: int, k: int) -> np.ndarray:
    from scipy.stats import norm, qmc

    with warnings.catch_warnings():  # non-power-of-2 n loses the balance property; still a fine QMC set
        warnings.simplefilter("ignore", UserWarning)
        u = qmc.Sobol(k, scramble=True, seed=12345).random(n)
    grid = norm.ppf(np.clip(u, 1e-12, 1 - 1e-12))
    grid = grid - grid.mean(0)  # exact zero mean: the shift distribution is symmetric
    grid.setflags(write=False)
    return grid


def sobol_normal(n: int, k: int) -> np.ndarray:
    """``n`` quasi-random N(0, I_k) points (n, k): scrambled Sobol (fixed seed 12345) through the normal
    inverse CDF, recentred to exact zero mean. Deterministic; integration error ~ 1/n for smooth integrands.

    >>> sobol_normal(256, 2).shape
    (256, 2)
    """
    if not (isinstance(n, (int, np.integer)) and n >= 1):
        raise ValueError(f"n_quad must be a positive integer, got {n!r}")
    if n == 1:
        return np.zeros((1, k))
    return _sobol_normal_cached(int(n), int(k))


def neuron_population(activation, variances, gram, t, *, n_quad: int = 256, coef_nodes: int | None = None,
                      shifts=None) -> NeuronPopulation:
    """The neuron population of the deterministic equivalent: GE coefficients at shift nodes, equal weights.

    Neuron shifts ``m_ic = e^{−t} w̃_i·μ_c`` are ``N(0, e^{−2t} M)`` (``gram`` = M, (K, K), the centroid Gram
    per d). With strong centroids the coefficients vary on the scale Γ_c ≈ 1 while the shifts spread over
    √M, which a tensor Gauss–Hermite rule under-resolves (E a² 2.5 % low at ||μ||²/d = 4, ~50 % low at 16,
    ``theory_notes/03_spectrum.md`` §4); we use ``n_quad`` scrambled-Sobol nodes (:func:`sobol_normal`)
    mapped by a square root of M. ``n_quad = 1`` is one node at m = 0 (regime A). ``shifts`` (N, K): an
    explicit set (e.g. the realised shifts of a finite W; ``n_quad`` is then ignored).

    ``variances`` (K,) are the per-class data variances Tr Cov_c/d (``mixture.class_variance``); ``t`` the
    diffusion time; ``coef_nodes`` the trapezoid order of each coefficient integral (default 128 up to 64
    nodes, else 96: ~1e-10 relative up to Γ ≈ 3, see :mod:`rfdiff.model.activations`). Jittable
    (``n_quad``, ``coef_nodes`` static); the caller runs it under float64.

    >>> pop = neuron_population("tanh", jnp.array([1.0, 4.0]), 4.0 * jnp.eye(2), 0.01, n_quad=64)  # doctest: +SKIP
    >>> pop.a.shape                                                                                 # doctest: +SKIP
    (64, 2)
    """
    variances, t = _f64(variances), _f64(t)
    nodes = sobol_normal(n_quad, variances.shape[0]) if shifts is None else _f64(shifts)  # validates n_quad
    if coef_nodes is None:
        coef_nodes = 128 if nodes.shape[0] <= 64 else 96
    if shifts is None:
        return _population_from_grid(activation, nodes, variances, _f64(gram), t, coef_nodes)
    return _population_from_shifts(activation, nodes, variances, t, coef_nodes)


def _f64(x):
    """float64 array: NumPy for concrete input (the jitted callee converts it in its own dispatch; an eager
    ``jnp.asarray`` costs ~30 µs a call), the tracer itself inside a trace."""
    return x.astype(jnp.float64) if isinstance(x, jax.core.Tracer) else np.asarray(x, np.float64)


# One compiled call per (activation, shapes, coef_nodes) for the whole population (square root of M, shifts,
# coefficients, weights): eagerly, its dozen small ops around the coefficient integrals cost ~1 ms per call,
# a quarter of a warm 400-point spectral_density (measured); the coefficients alone were compiled before
# because eagerly their ~100 ops took 8–12 s on first use for K = 10. Inside other jitted code both inline.
@functools.partial(jax.jit, static_argnames=("activation", "coef_nodes"))
def _population_from_shifts(activation, shifts, variances, t, coef_nodes):
    n = shifts.shape[0]
    co = ge_coefficients(activation, shifts, (jnp.exp(-2.0 * t) * variances)[None, :], -jnp.expm1(-2.0 * t),
                         n_nodes=coef_nodes)
    return NeuronPopulation(weights=jnp.full((n,), 1.0 / n), mu0=co.mu0, a=co.a, v2=co.v2, s2=co.s2)


@functools.partial(jax.jit, static_argnames=("activation", "coef_nodes"))
def _population_from_grid(activation, grid, variances, gram, t, coef_nodes):
    ev, evec = jnp.linalg.eigh(0.5 * (gram + gram.T))
    root = evec * jnp.sqrt(jnp.clip(ev, 0.0, None))[None, :]  # M = root rootᵀ
    return _population_from_shifts(activation, jnp.exp(-t) * grid @ root.T, variances, t, coef_nodes)  # (N, K)


def constants(pop: NeuronPopulation, proportions, variances, psi_p, psi_n, t, *, levels=None,
              level_weights=None, omega=None, e=None) -> Constants:
    """The :class:`Constants` of the map for ``U(ω, e) = Σ_c ω_c U_c^tr + Σ_c e_c U_c^pop``.

    ``proportions`` f (K,), ``variances`` σ_c² (K,) (the level-free scale; ``levels`` (K, L) and
    ``level_weights`` (L,) default to one level 1, isotropic classes), ``ω`` defaults to f and ``e`` to 0
    (the physical U). ``r_c = ω_c/f_c`` is 0 for an empty class. Jittable.
    """
    f = jnp.asarray(proportions, jnp.float64)
    k = f.shape[0]
    omega = f if omega is None else jnp.asarray(omega, jnp.float64)
    e = jnp.zeros_like(f) if e is None else jnp.asarray(e, jnp.float64)
    levels = jnp.ones((k, 1)) if levels is None else jnp.asarray(levels, jnp.float64)
    level_weights = jnp.ones(1) if level_weights is None else jnp.asarray(level_weights, jnp.float64)
    t = jnp.asarray(t, jnp.float64)
    ratio = jnp.where(f > 0, omega / jnp.where(f > 0, f, 1.0), 0.0)
    return Constants(psi_p=jnp.asarray(psi_p, jnp.float64), psi_n=jnp.asarray(psi_n, jnp.float64),
                     delta_t=-jnp.expm1(-2.0 * t), c2=jnp.exp(-2.0 * t) * jnp.asarray(variances, jnp.float64),
                     levels=levels, level_weights=level_weights, omega=omega, e=e, ratio=ratio, pop=pop)


# one compiled call: eagerly its ~20 small ops took 1–2.4 ms, a quarter of a warm 400-point spectrum (measured);
# compiling it takes 0.06 s once, less than the eager ops' own first dispatch (0.1 s). Inside other jitted code it
# is inlined as before.
constants = jax.jit(constants)


class ResolventState(eqx.Module):
    """Solution of the equations at one complex z (see :func:`rfdiff.spectrum.resolvent`)."""

    z: jax.Array
    g: jax.Array  # (1/p) Tr (U − z)⁻¹
    delta: jax.Array  # (K,) δ_c = (1/n) Tr C_c Q
    xi: jax.Array  # (K, K) Ξ
    R: jax.Array  # (K, K) class-signal matrix ≈ (1/(dΔ)) Tr V_cᵀ (U − z)⁻¹ V_c'
    sample_measure: jax.Array  # (K,) δ_c / (1 + r_c δ_c): (1/n) g_νᵀ (U−z)⁻¹ g_ν for ν ∈ c
    class_trace: jax.Array  # (K,) (1/p) Tr(W_c U_c (U − z)⁻¹), sums to 1 + z g (per-class density)
    residual: jax.Array  # ||x − T(x)|| / (1 + ||x||) at the final z
    iterations: jax.Array  # Newton steps taken while the residual was above 1e-13
    branch: jax.Array  # Im g ≥ 0 at the end of every continuation level (the physical branch)


def _cx(dtype):
    # explicit casts: the package runs under jax_numpy_dtype_promotion="strict"
    return lambda arr: jnp.asarray(arr).astype(dtype)


_SMALL = 3  # largest system solved in closed form (m ≤ 2) or by the unrolled elimination; larger m: LAPACK


def _solve_small(a, b):
    """``a⁻¹ b`` for small systems: a (..., m, m), b (..., m, r). m = 1, 2: closed form (Cramer); m = 3:
    Gauss–Jordan with partial pivoting unrolled over m; so under vmap every step is a few elementwise ops
    over the whole batch, where the library solve pays a LAPACK call per matrix (≈ 1–3 µs at m = 2). Larger
    m: :func:`jax.numpy.linalg.solve` (the unrolled elimination compiled for 23 s at m = 11 and ran only
    1.4× faster, measured).

    >>> np.asarray(_solve_small(jnp.array([[0.0, 2.0], [1.0, 1.0]]), jnp.array([[2.0], [2.0]])))[:, 0].tolist()
    [1.0, 1.0]
    """
    m = a.shape[-1]
    if m > _SMALL:
        return jnp.linalg.solve(a, b)
    if m == 1:
        return b / a
    if m == 2:  # Cramer's rule: a handful of elementwise ops (the K = 1 systems of the anchor's case)
        det = a[..., 0, 0] * a[..., 1, 1] - a[..., 0, 1] * a[..., 1, 0]
        x0 = (a[..., 1, 1, None] * b[..., 0, :] - a[..., 0, 1, None] * b[..., 1, :]) / det[..., None]
        x1 = (a[..., 0, 0, None] * b[..., 1, :] - a[..., 1, 0, None] * b[..., 0, :]) / det[..., None]
        return jnp.stack([x0, x1], axis=-2)
    aug = jnp.concatenate([a, b], axis=-1)  # (..., m, m + r)
    rows = jnp.arange(m)
    for k in range(m):
        if k < m - 1:  # swap row k with the row of the largest |entry| of column k at or below it
            p = k + jnp.argmax(jnp.abs(aug[..., k:, k]), axis=-1)  # (...)
            hot = (rows.reshape((1,) * p.ndim + (m,)) == p[..., None])[..., :, None]  # (..., m, 1)
            row_p = jnp.sum(jnp.where(hot, aug, jnp.zeros((), aug.dtype)), axis=-2)
            row_k = aug[..., k, :]
            aug = jnp.where(hot, row_k[..., None, :], aug)
            aug = aug.at[..., k, :].set(row_p)
        piv = aug[..., k, :] / aug[..., k, k:k + 1]
        aug = aug - aug[..., :, k:k + 1] * piv[..., None, :]
        aug = aug.at[..., k, :].set(piv)
    return aug[..., m:]


def _pieces(x, z, c: Constants):
    """Shared intermediate quantities of the map at unknowns x = (δ, Ξ)."""
    k = c.c2.shape[0]
    cx = _cx(z.dtype)
    delta = x[:k]
    xi = x[k:].reshape(k, k)
    b = 1.0 / (1.0 + cx(c.ratio) * delta)  # (K,)
    lev = cx(c.levels.T)  # (L, K)
    c2 = c.c2[None, :]  # (1, K): explicit ranks (jax_numpy_rank_promotion="raise")
    kap = (cx(c.omega)[None, :] * (cx(c.delta_t) + cx(c2) * lev * b[None, :])
           + cx(c.e[None, :] * (c.delta_t + c2 * c.levels.T)))  # (L, K)
    pop = c.pop
    lam0 = cx(pop.s2 @ (c.omega + c.e) + pop.v2 @ c.e) - z  # (Q,) the part of Λ_i that does not depend on x
    eye = jnp.eye(k, dtype=z.dtype)
    # M(l) = I + K(l) Ξ ; Θ(l) = M(l)⁻¹ K(l) ; R(l) = Ξ M(l)⁻¹ (one inverse serves both)
    m = eye[None] + kap[:, :, None] * xi[None]  # (L, K, K)
    m_inv = _solve_small(m, jnp.broadcast_to(eye[None], m.shape))
    theta = m_inv * kap[:, None, :]
    r_l = jnp.einsum("cd,lde->lce", xi, m_inv)
    theta_bar = jnp.einsum("l,lcd->cd", cx(c.level_weights), theta)
    # D_i = Λ_i + a_iᵀ Θ̄ a_i = lam0_i + F_i · (vec Θ̄, ω∘b): one matvec with the node features F
    d_i = lam0 + _node_features(pop, z.dtype) @ jnp.concatenate([theta_bar.reshape(k * k), cx(c.omega) * b])
    w = cx(pop.weights) / d_i  # (Q,) quadrature weight / D_i
    lam_i = lam0 + cx(pop.v2) @ (cx(c.omega) * b)  # Λ_i (Q,)
    return delta, xi, b, kap, lam_i, d_i, w, r_l


def _outer_rows(a, dtype):
    """(Q, K²) rows vec(a_i a_iᵀ): the node quadratic forms a_iᵀ X a_i and sums Σ_i w_i a_i a_iᵀ become plain
    matrix–vector products (under jacfwd: one GEMM over the tangents, where the three-operand einsum paid a
    batched 2 × 2 product per node)."""
    q, k = a.shape
    return (a[:, :, None] * a[:, None, :]).reshape(q, k * k).astype(dtype)


def _node_features(pop: NeuronPopulation, dtype):
    """(Q, K² + K) node features F_i = (vec(a_i a_iᵀ), v²_i): everything the map needs of a node besides the
    x-independent part of Λ_i, so D_i and the node sums Σ_i w_i F_i are one matvec each (two GEMMs under
    jacfwd instead of four)."""
    return jnp.concatenate([_outer_rows(pop.a, dtype), pop.v2.astype(dtype)], axis=1)


def _map_parts(x, z, c: Constants):
    """(δ_new (K,), Ξ_new (K, K), D_i (Q,), g) of the map at flat unknowns x = (δ, Ξ); g = E_i[1/D_i]."""
    cx = _cx(z.dtype)
    _, _, _, _, _, d_i, w, r_l = _pieces(x, z, c)
    k = c.c2.shape[0]
    sums = w @ _node_features(c.pop, z.dtype)  # (Σ_i w_i vec(a_i a_iᵀ), Σ_i w_i v²_i)
    xi_new = cx(c.psi_p) * sums[:k * k].reshape(k, k)
    lam_r = jnp.einsum("l,cl,lcc->c", cx(c.level_weights), cx(c.levels), r_l)
    delta_new = (cx(c.c2) * lam_r + cx(c.psi_p) * sums[k * k:]) / cx(c.psi_n)
    return delta_new, xi_new, d_i, jnp.sum(w)


def fixed_point_map(x, z, c: Constants):
    """T(x) for the flat unknown vector x = (δ (K,), Ξ (K²,)), complex."""
    k = c.c2.shape[0]
    delta_new, xi_new, _, _ = _map_parts(x, z, c)
    return jnp.concatenate([delta_new, xi_new.reshape(k * k)])


def outputs(x, z, c: Constants):
    """Observables at a solution x."""
    cx = _cx(z.dtype)
    delta, xi, b, kap, lam_i, d_i, w, r_l = _pieces(x, z, c)
    g = jnp.sum(w)
    r = jnp.einsum("l,lcd->cd", cx(c.level_weights), r_l)
    sample = delta * b
    # Per-class trace (1/p) Tr(ω_c U_c^tr Q) + (1/p) Tr(e_c U_c^pop Q), theory_notes/03_spectrum.md §5:
    #   ω_c-part = (ψ_n/ψ_p) ω_c δ_c b_c + ω_c Δ E_l[R(l)_cc]/ψ_p + ω_c E_i[s²_ic/D_i]
    #   e_c-part = E_l[κ_c^pop(l) R(l)_cc]/ψ_p + e_c E_i[(s²_ic + v²_ic)/D_i]
    # Summed over c this equals 1 + z g exactly (an identity of the equations, checked in the tests).
    diag_r = jnp.einsum("lcc->lc", r_l)
    tr_class = cx(c.psi_n / c.psi_p * c.omega) * sample
    # the data part of ω_c U_c^tr is inside the sample term; only its noise part ω_c Δ multiplies R here
    kap_noise = cx((c.omega * c.delta_t)[None, :] + c.e[None, :] * (c.delta_t + c.c2[None, :] * c.levels.T))
    tr_class = tr_class + jnp.einsum("l,lc->c", cx(c.level_weights), kap_noise * diag_r) / cx(c.psi_p)
    tr_class = tr_class + cx(c.omega) * (w @ cx(c.pop.s2)) + cx(c.e) * (w @ cx(c.pop.s2 + c.pop.v2))
    return g, delta, xi, r, sample, tr_class


# ------------------------------------------------------------------ reduced unknowns for the complex solve
def _node_form(c: Constants) -> bool:
    """Static choice of unknowns for the complex solve: (δ, u) with u_i = 1/D_i (K + Q numbers) when the
    population has fewer nodes than classes (Q < K), else (δ, Ξ) (K + K²). Ξ = ψ_p Σ_i w_i u_i a_i a_iᵀ has
    rank ≤ Q, so regime A (Q = 1) leaves K + 1 unknowns and scalar algebra whatever K (:func:`_node_map`)."""
    return c.pop.weights.shape[0] < c.c2.shape[0]


def _lift(y, z, c: Constants):
    """Flat x = (δ, Ξ) from the reduced unknowns y."""
    k = c.c2.shape[0]
    if not _node_form(c):
        return y
    cx = _cx(z.dtype)
    xi = cx(c.psi_p) * ((cx(c.pop.weights) * y[k:]) @ _outer_rows(c.pop.a, z.dtype))  # (K²,)
    return jnp.concatenate([y[:k], xi])


def _node_map(y, z, c: Constants):
    """The map in the node unknowns y = (δ, u), u_i = 1/D_i, with Q × Q algebra instead of K × K.

    Ξ = Aᵀ S A (A = the (Q, K) node coefficients a_i, S = ψ_p diag(w_i u_i)); with G(l) = A K(l) Aᵀ (Q, Q)
    and J(l) = (I + G(l) S)⁻¹ the push-through identity A (I + K Aᵀ S A)⁻¹ = J A gives
    A Θ(l) Aᵀ = J(l) G(l)  (so D_i = Λ_i + E_l[J G]_ii)  and  R(l) = Ξ M(l)⁻¹ = Aᵀ S J(l) A.
    Returns (δ_new, 1/D_i) and g = E_i[1/D_i].
    """
    k = c.c2.shape[0]
    q = c.pop.weights.shape[0]
    cx = _cx(z.dtype)
    delta, u = y[:k], y[k:]
    b = 1.0 / (1.0 + cx(c.ratio) * delta)
    c2 = c.c2[None, :]
    kap = (cx(c.omega)[None, :] * (cx(c.delta_t) + cx(c2) * cx(c.levels.T) * b[None, :])
           + cx(c.e[None, :] * (c.delta_t + c2 * c.levels.T)))  # (L, K)
    pop = c.pop
    lam_i = cx(pop.s2 @ (c.omega + c.e) + pop.v2 @ c.e) + cx(pop.v2) @ (cx(c.omega) * b) - z  # (Q,)
    a = cx(pop.a)
    sdiag = cx(c.psi_p) * cx(pop.weights) * u  # (Q,)
    gmat = jnp.einsum("qc,lc,pc->lqp", a, kap, a)  # (L, Q, Q)
    eye = jnp.eye(q, dtype=z.dtype)
    jm = _solve_small(eye[None] + gmat * sdiag[None, None, :], jnp.broadcast_to(eye[None], gmat.shape))
    d_i = lam_i + jnp.einsum("l,lqp,lpq->q", cx(c.level_weights), jm, gmat)
    w = cx(pop.weights) / d_i
    # diag R(l)_cc = Σ_qp a_qc S_q J(l)_qp a_pc
    r_diag = jnp.einsum("qc,q,lqp,pc->lc", a, sdiag, jm, a)
    lam_r = jnp.einsum("l,cl,lc->c", cx(c.level_weights), cx(c.levels), r_diag)
    delta_new = (cx(c.c2) * lam_r + cx(c.psi_p) * (w @ cx(pop.v2))) / cx(c.psi_n)
    return jnp.concatenate([delta_new, 1.0 / d_i]), jnp.sum(w)


def _reduced_map(y, z, c: Constants):
    """The fixed-point map in the reduced unknowns (same fixed points as :func:`fixed_point_map`) and g(y)."""
    k = c.c2.shape[0]
    if _node_form(c):
        return _node_map(y, z, c)
    delta_new, xi_new, _, g = _map_parts(y, z, c)
    return jnp.concatenate([delta_new, xi_new.reshape(k * k)]), g


def _residual(x, z, c: Constants):
    """||x − T(x)|| / (1 + ||x||) in the full unknowns x = (δ, Ξ) (whatever unknowns were solved)."""
    return jnp.linalg.norm(x - fixed_point_map(x, z, c)) / (1.0 + jnp.linalg.norm(x))


def _newton_step(y, z, c: Constants):
    """One Newton step on y − T(y) = 0 (complex Jacobian, T holomorphic; :func:`_solve_small`).

    Returns (new y, g at the old y, relative step size, relative residual ||T(y) − y|| / (1 + ||y||) at the old y)."""
    def fun(u):
        ty, g = _reduced_map(u, z, c)
        return ty, (ty, g)

    jac, (ty, g) = jax.jacfwd(fun, has_aux=True, holomorphic=True)(y)
    eye = jnp.eye(y.shape[0], dtype=y.dtype)
    step = _solve_small(eye - jac, (ty - y)[:, None])[:, 0]
    scale_y = 1.0 + jnp.linalg.norm(y)
    return y + step, g, jnp.linalg.norm(step) / scale_y, jnp.linalg.norm(ty - y) / scale_y


def _reduce(x, z, c: Constants):
    """The reduced unknowns y of :func:`_reduced_map` from full ones x = (δ, Ξ) (δ and u_i = 1/D_i(x) in the node
    form; at a solution, the inverse of :func:`_lift`)."""
    if not _node_form(c):
        return x
    return jnp.concatenate([x[:c.c2.shape[0]], 1.0 / _pieces(x, z, c)[5]])


def solve_near(x0, z, c: Constants, *, tol: float = 1e-13, max_iter: int = 40):
    """Newton's method at one complex z from a start ``x0`` = (δ, Ξ) already inside the basin (e.g. the
    solution at a neighbouring z), until the relative residual of an iterate is below ``tol`` (the step taken
    from it is kept) or ``max_iter`` steps. The steps are :func:`solve_point`'s (reduced unknowns, small
    systems in closed form); :func:`solve_point`'s fixed continuation schedule is for starts far from the
    solution. Jittable. Returns ``(x, residual, iterations)`` with the residual of :func:`_residual` at x.
    """
    z = jnp.asarray(z, jnp.complex128)

    def cond(state):
        _, res, it = state
        return (res > tol) & (it < max_iter)

    def body(state):
        y, _, it = state
        y, _, _, res = _newton_step(y, z, c)
        return y, res, it + 1

    state = (_reduce(x0, z, c), jnp.asarray(jnp.inf), jnp.zeros((), jnp.int32))
    y, _, its = lax.while_loop(cond, body, state)
    x = _lift(y, z, c)
    return x, _residual(x, z, c), its


# η schedule of the complex solve: ``N_LEVELS`` geometric levels η₀ … 1e-16 η₀ (a factor 0.43 apart) with one
# Newton step each, then ``N_FINAL`` steps at z itself. Fixed, so a batch runs in lock step with no per-point
# while loop. The level density, not the step count, keeps the path on the physical branch (two-level K = 1
# case, 400 points: 33 levels × 3 steps put 15 points on a wrong branch, 33 × 1 put 28). Measured on 400–800
# point grids of six mixtures (the two-level case, two classes, three strong-centroid classes, K = 8 and 10
# long tails, strong π = (0.1, 0.9)) × tanh/relu, against the 49-level schedule: 45 levels leave no point off
# the branch, 41 flag one (caught by the check below), 37 two, 33 up to 28 wrong; the final steps at z leave
# residuals ≤ 1e-14 from 2 on (3 kept). Points whose residual is above tol or that left the branch are
# re-solved with the ``FINE`` schedule.
N_LEVELS, N_NEWTON, N_FINAL = 45, 1, 3
FINE = (193, 1, 8)


def solve_point(z, c: Constants, *, eta0, n_levels: int = N_LEVELS, n_newton: int = N_NEWTON,
                n_final: int = N_FINAL):
    """Solve at one complex z by imaginary-part continuation from z + iη₀ down to z (see module doc).

    Fixed schedule (``n_levels`` geometric levels, ``n_newton`` Newton steps each, ``n_final`` at z), so
    that a vmapped batch has no data-dependent loop. ``iterations`` counts the steps larger than 1e-13
    (relative); ``branch`` is False if Im g < 0 at any level (a step off the physical branch).
    """
    k = c.c2.shape[0]
    z = jnp.asarray(z, jnp.complex128)
    nu = k + (c.pop.weights.shape[0] if _node_form(c) else k * k)
    eta0 = jnp.asarray(eta0).astype(jnp.complex128)
    z_start = z + 1j * eta0
    # a few plain fixed-point sweeps at huge η (a contraction there) give the Newton start
    y0 = lax.fori_loop(0, 8, lambda _, y: _reduced_map(y, z_start, c)[0], jnp.zeros(nu, jnp.complex128))
    # η_j = η₀·ratio_j geometric down to 1e-16 η₀ (each repeated n_newton times), then n_final steps at z:
    # one flat scan with one Newton step per entry
    ratios = jnp.concatenate([jnp.repeat(jnp.geomspace(1.0, 1e-16, n_levels), n_newton), jnp.zeros(n_final)])

    def step(carry, ratio):
        y, its, ok = carry
        y, g, size, _ = _newton_step(y, z + 1j * eta0 * ratio.astype(jnp.complex128), c)
        return (y, its + (size > 1e-13).astype(jnp.int32), ok & (g.imag >= -1e-12 * jnp.abs(g))), None

    (y, its, ok), _ = lax.scan(step, (y0, jnp.zeros((), jnp.int32), jnp.ones((), bool)), ratios)
    x = _lift(y, z, c)
    g, delta, xi, r, sample, tr_class = outputs(x, z, c)
    return ResolventState(z=z, g=g, delta=delta, xi=xi, R=r, sample_measure=sample, class_trace=tr_class,
                          residual=_residual(x, z, c), iterations=its, branch=ok & (g.imag >= -1e-12 * jnp.abs(g)))


def node_denominators(state: ResolventState, c: Constants):
    """D_i at every population node for a solved state (used by the outlier equations)."""
    x = jnp.concatenate([state.delta, state.xi.reshape(-1)])
    return _pieces(x, state.z, c)[5]


# --------------------------------------------------------------------------------------- grids of complex z
def scale(c: Constants):
    """A scale above the top of the bulk spectrum: (ψ_p + 1) E_i Σ_c (ω_c+e_c)(a²(Δ + c2) + v² + s²) + 1."""
    pop = c.pop
    tot = pop.a**2 * (c.delta_t + c.c2 * (c.levels @ c.level_weights))[None, :] + pop.v2 + pop.s2
    return (c.psi_p + 1.0) * (pop.weights @ (tot @ (c.omega + c.e))) + 1.0


_CHUNK_BYTES = 256 * 2**20  # working-set budget of one batch of the complex solve


def _chunk(n: int, c: Constants) -> int:
    """Batch size: the grid rounded up to a multiple of 1/16 of the next power of two (≥ 16; at most 6 %
    padding, where a power of two padded the anchor's 400 points by 28 %, and at most 16 compiled sizes per
    octave of grid sizes), capped by a power of two small enough that the Jacobian's tangents of the (Q, K)
    node arrays (≈ 64 bytes per unknown per node entry, measured from peak RSS) stay within ``_CHUNK_BYTES``.
    """
    k = c.c2.shape[0]
    q, levels = c.pop.weights.shape[0], c.levels.shape[1]
    nu = k + (q if _node_form(c) else k * k)
    per_point = 64 * nu * (q * k + levels * k * k + 8 * nu)
    cap = 1 << max(0, int(np.floor(np.log2(max(_CHUNK_BYTES // per_point, 1)))))
    gran = max(16, (1 << max(n - 1, 0).bit_length()) // 16)
    return min(cap, max(16, -(-n // gran) * gran))


def _run_batches(zf, c, schedule):
    """The compiled solve over batches of :func:`_chunk` points (the last padded with z = i); NumPy fields.

    Each batch is fetched to the host before the next is dispatched (one transfer per field; slicing and
    joining in NumPy, where eager JAX slices of each field cost ≈ 1.5 ms per call, a third of a 400-point
    solve)."""
    zf = np.asarray(zf, np.complex128)
    n = zf.shape[0]
    parts, i = [], 0
    while i < n:  # full batches of the capped size, then the rest padded to its own (≤ 6 %) batch size
        m = _chunk(n - i, c)
        zb = np.concatenate([zf[i:i + m], np.full((max(0, i + m - n),), 1j)])
        parts.append(jax.device_get(_solve_compiled(zb, c, schedule=schedule)))
        i += m
    return jax.tree_util.tree_map(lambda *a: np.concatenate(a, 0)[:n], *parts)


def solve_grid(zf, c: Constants, *, tol: float = 1e-12):
    """:func:`solve_point` at every z of the 1-d array ``zf`` (complex); a :class:`ResolventState` of arrays.

    All points of a batch run the same fixed continuation schedule (``N_LEVELS``, ``N_NEWTON``, ``N_FINAL``)
    in lock step; the few whose residual stays above ``tol`` (or that stepped off the physical branch) are
    solved again with the finer schedule ``FINE``, and the result reports what remains (the caller raises).
    Batches are powers of two (:func:`_chunk`); each is finished (``block_until_ready``) before the next
    is dispatched. K ≥ 4 grids used to wait forever at 0 % CPU: an XLA:CPU scheduler deadlock inside one
    execution, avoided by switching XLA's ``xla_cpu_enable_concurrency_optimized_scheduler`` off at import.
    """
    zf = np.asarray(zf, np.complex128).reshape(-1)
    out = _run_batches(zf, c, (N_LEVELS, N_NEWTON, N_FINAL))
    redo = np.nonzero(~(out.residual <= tol) | ~out.branch)[0]
    if redo.size:
        fine = _run_batches(zf[redo], c, FINE)

        def put(a, b):
            a = a.copy()
            a[redo] = b
            return a

        out = jax.tree_util.tree_map(put, out, fine)
    return out


def _solve_impl(zf, c, schedule):
    eta0 = 10.0 * (scale(c) + jnp.abs(zf.real))
    n_levels, n_newton, n_final = schedule
    fn = lambda z, e0: solve_point(z, c, eta0=e0, n_levels=n_levels, n_newton=n_newton, n_final=n_final)  # noqa: E731
    return jax.vmap(fn)(zf, eta0)


_solve_compiled = jax.jit(_solve_impl, static_argnames=("schedule",))


# --------------------------------------------------------------------------------------- real axis z = −μ
_CHORD = 3  # chord steps of solve_real before it falls back to Newton (2 suffice from a good start)


def solve_real(x0, mu, consts_of, theta, *, n_newton: int = 8, tol: float = 1e-14):
    """Real solution at z = −μ < 0 and its implicit-function derivative in the weights θ (jittable).

    ``consts_of(θ)`` builds the :class:`Constants` at weights θ (e.g. θ = (ω, e), 2K entries); ``x0`` the
    start, inside Newton's basin: a prediction from the previous, nearby μ's solutions when scanning down in μ
    (the caller adds damped fixed-point steps where the start is far, see
    :func:`rfdiff.theory.curves.theory_curves_core`).
    Up to ``_CHORD`` chord steps (Newton steps with the start's Jacobian), then up to ``n_newton`` Newton steps,
    stopping once the residual max|T(x) − x| / max|x| is below ``tol`` (the rounding floor is ~1e-15). From the
    caller's cubic prediction between neighbouring μ of a phase diagram's τ grid two chord steps suffice.
    The derivative dx/dθ = (I − ∂T/∂x)⁻¹ ∂T/∂θ, with the Jacobian at the returned x, is exact for the
    equations (``theory_notes/04_dynamics.md`` §3).

    Returns ``(x, residual, dx_dtheta, dx_dmu)``: residual = max|T(x) − x| / max|x|, or ``inf`` off the physical
    branch (some δ_c < 0 or D_i ≤ 0, impossible where (U + μ)⁻¹ ≻ 0), dx_dtheta (n_x, n_θ),
    and dx_dmu (n_x,) = −(I − ∂T/∂x)⁻¹ ∂T/∂z, the tangent a caller scanning in μ uses to predict the next
    start (one more right-hand side of the same solve).
    """
    z = -jnp.asarray(mu, jnp.float64)
    eye = jnp.eye(x0.shape[0], dtype=x0.dtype)

    def fmap(y, th):
        return fixed_point_map(y, z, consts_of(th))

    def val_jac(y):
        # T(y) and ∂T/∂y from one forward-mode pass (the primal rides along as aux)
        jac, ty = jax.jacfwd(lambda u: (fmap(u, theta), fmap(u, theta)), has_aux=True)(y)
        return ty, jac

    def rel(y, ty):
        return jnp.max(jnp.abs(ty - y)) / (jnp.max(jnp.abs(y)) + 1e-300)

    def cond(state, steps):
        y, ty, _, it = state
        return (it < steps) & (rel(y, ty) > tol)

    def newton(state):
        y, ty, jac, it = state
        y = y - jnp.linalg.solve(jac - eye, ty - y)
        ty, jac = val_jac(y)
        return y, ty, jac, it + 1

    def chord(state):  # the start's Jacobian kept: T(y) only, a seventh of a Jacobian's cost
        y, ty, jac, it = state
        y = y - jnp.linalg.solve(jac - eye, ty - y)
        return y, fmap(y, theta), jac, it + 1

    # From a good start (relative error e ~ 1e-6, the caller's prediction) the first step (Newton) leaves ~e²
    # and a second with the same Jacobian, now off by O(e), ~e³: below rounding. So chord steps with the
    # start's Jacobian while they are few (_CHORD), full Newton steps for what a poor start leaves, and the
    # Jacobian at the solution, which the derivatives need anyway, once at the end: 2 Jacobians and 2 maps
    # per μ of a phase diagram's τ grid where Newton from the same start took 3 (measured, 120-τ grid).
    ty0, jac0 = val_jac(x0)
    state = lax.while_loop(lambda s: cond(s, _CHORD), chord, (x0, ty0, jac0, jnp.zeros((), jnp.int32)))
    x, tx, _, _ = lax.while_loop(lambda s: cond(s, _CHORD + n_newton), newton, state)
    jx = jax.jacfwd(lambda u: fmap(u, theta))(x)
    jt = jax.jacfwd(lambda th: fmap(x, th))(theta)
    _, jz = jax.jvp(lambda zz: fixed_point_map(x, zz, consts_of(theta)), (z,), (jnp.ones_like(z),))
    dx = jnp.linalg.solve(eye - jx, jnp.concatenate([jt, -jz[:, None]], axis=1))
    # the physical branch: at z = −μ ≤ 0 the resolvent (U + μ)⁻¹ is positive definite, so δ_c = (1/n) Tr C_c Q ≥ 0
    # and every 1/D_i (a diagonal entry of its equivalent) > 0. A root violating either is spurious (linear
    # features at μ = 0, where U is singular and no solution exists, gave δ < 0 with a 1e-13 residual).
    c = consts_of(theta)
    physical = jnp.all(x[:c.c2.shape[0]] >= 0.0) & jnp.all(_pieces(x, z, c)[5] > 0.0)
    return x, jnp.where(physical, rel(x, tx), jnp.inf), dx[:, :-1], dx[:, -1]
