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
contraction and the fixed point is ≈ the free one), then lower η geometrically to ``Im z``, Newton-solving
at every level from the previous level's solution. Each spectral point is solved independently (no warm
start across λ, which is what jumps onto spurious real branches), so a grid is one ``vmap``.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import lax

__all__ = ["NeuronPopulation", "ResolventState", "solve_point", "fixed_point_map"]


class NeuronPopulation(eqx.Module):
    """Per-neuron Gaussian-equivalence coefficients at quadrature nodes: arrays (Q, K), weights (Q,).

    Built by :func:`rfdiff.spectrum.neuron_population`. ``weights`` sum to 1; a single node is regime A
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
    iterations: jax.Array  # total Newton iterations over the continuation ladder


def _cx(dtype):
    # explicit casts: the package runs under jax_numpy_dtype_promotion="strict"
    return lambda arr: jnp.asarray(arr).astype(dtype)


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
    lam_i = cx(pop.s2 @ (c.omega + c.e) + pop.v2 @ c.e) + cx(pop.v2) @ (cx(c.omega) * b) - z  # (Q,)
    eye = jnp.eye(k, dtype=z.dtype)
    # M(l) = I + K(l) Ξ ; Θ(l) = M(l)⁻¹ K(l) ; R(l) = Ξ M(l)⁻¹
    m = eye[None] + kap[:, :, None] * xi[None]  # (L, K, K)
    theta = jnp.linalg.solve(m, eye[None] * kap[:, None, :])
    r_l = jnp.swapaxes(jnp.linalg.solve(jnp.swapaxes(m, 1, 2), jnp.broadcast_to(xi.T[None], m.shape)), 1, 2)
    theta_bar = jnp.einsum("l,lcd->cd", cx(c.level_weights), theta)
    a = cx(pop.a)
    d_i = lam_i + jnp.einsum("qc,cd,qd->q", a, theta_bar, a)  # (Q,)
    w = cx(pop.weights) / d_i  # (Q,) quadrature weight / D_i
    return delta, xi, b, kap, lam_i, d_i, w, r_l


def fixed_point_map(x, z, c: Constants):
    """T(x) for the flat unknown vector x = (δ (K,), Ξ (K²,)), complex."""
    k = c.c2.shape[0]
    cx = _cx(z.dtype)
    _, _, _, _, _, _, w, r_l = _pieces(x, z, c)
    a = cx(c.pop.a)
    xi_new = cx(c.psi_p) * jnp.einsum("q,qc,qd->cd", w, a, a)
    lam_r = jnp.einsum("l,cl,lcc->c", cx(c.level_weights), cx(c.levels), r_l)
    delta_new = (cx(c.c2) * lam_r + cx(c.psi_p) * (w @ cx(c.pop.v2))) / cx(c.psi_n)
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


def _newton(x, z, c: Constants, tol, max_iter):
    """Newton iterations on F(x) = x − T(x) at fixed z (complex Jacobian; T is holomorphic)."""
    def f(y):
        return y - fixed_point_map(y, z, c)

    def body(state):
        y, _, it = state
        fy, jac = f(y), jax.jacfwd(f, holomorphic=True)(y)
        step = jnp.linalg.solve(jac, -fy)
        y = y + step
        res = jnp.linalg.norm(f(y)) / (1.0 + jnp.linalg.norm(y))
        return y, res, it + 1

    def cond(state):
        _, res, it = state
        return (res > tol) & (it < max_iter)

    res0 = jnp.linalg.norm(f(x)) / (1.0 + jnp.linalg.norm(x))
    y, res, it = lax.while_loop(cond, body, (x, res0, jnp.zeros((), jnp.int32)))
    return y, res, it


def solve_point(z, c: Constants, *, eta0, n_levels: int, tol, max_iter: int):
    """Solve at one complex z by imaginary-part continuation from z + iη₀ down to z (see module doc)."""
    k = c.c2.shape[0]
    z = jnp.asarray(z, jnp.complex128)
    x0 = jnp.zeros(k + k * k, jnp.complex128)
    eta0 = jnp.asarray(eta0).astype(jnp.complex128)
    z_start = z + 1j * eta0
    # a few plain fixed-point sweeps at huge η (a contraction there) give the Newton start
    x0 = lax.fori_loop(0, 8, lambda _, y: fixed_point_map(y, z_start, c), x0)
    # η_j = η₀·ratio_j geometric down to ~1e-16 η₀, then exactly Im z (ratio 0)
    ratios = jnp.concatenate([jnp.geomspace(1.0, 1e-16, n_levels), jnp.zeros(1)])

    def level(carry, ratio):
        y, its, _ = carry
        zl = z + 1j * eta0 * ratio.astype(jnp.complex128)
        y, res, it = _newton(y, zl, c, tol, max_iter)
        return (y, its + it, res), None

    init = (x0, jnp.zeros((), jnp.int32), jnp.zeros((), jnp.float64))
    (x, its, res), _ = lax.scan(level, init, ratios)
    g, delta, xi, r, sample, tr_class = outputs(x, z, c)
    return ResolventState(z=z, g=g, delta=delta, xi=xi, R=r, sample_measure=sample, class_trace=tr_class,
                          residual=res, iterations=its)


def node_denominators(state: ResolventState, c: Constants):
    """D_i at every population node for a solved state (used by the outlier equations)."""
    x = jnp.concatenate([state.delta, state.xi.reshape(-1)])
    return _pieces(x, state.z, c)[5]
