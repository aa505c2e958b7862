"""Exact d → ∞ gradient-flow (and finite-step GD) per-class curves: contour integrals of resolvent equivalents.

Derivation and numerical checks: ``theory_notes/09_gradient_flow.md``. Gradient flow weights eigen-direction λ
of U by f(λ) = (1 − e^{−τλ})/λ (GD with step η after s = τ/η steps: (1 − (1 − ηλ)^s)/λ; ridge proxy
1/(λ + 1/τ)). For any f analytic on a neighbourhood of the spectrum,

    f(U) = −(1/2πi) ∮ f(z) (U − z)⁻¹ dz        (counter-clockwise around spec U),

so with the per-class loss L_c = 1 + Q2 − 2 Q1 (``theory_notes/04_dynamics.md`` §3)::

    Q1 = −(1/2πi) ∮ f(z) Δ Σ_c' π_c' R_cc'(z) dz,
    Q2 = (1/2πi)² ∮∮ f(z) f(w) G2(z, w) dz dw,    G2(z, w) = −Δ πᵀ R'(z, w) π,

where R(z) is the one-point class-signal matrix of :mod:`rfdiff.theory.equations` and R'(z, w) the
*two-point* equivalent of −(1/d) Tr W̃ᵀ D_c (U − z)⁻¹ U_X (U − w)⁻¹ D_c' W̃ (U_X = U_c^tr or U_c^pop). R' is the
off-diagonal block of the equivalent of the block-triangular resolvent
[[U − z, ε U_X], [0, U − w]]⁻¹: the fixed-point equations lifted to 2×2 upper-triangular "scalars" (every
weight ω_c, e_c, every order parameter δ_c, Ξ_cd, D_i becomes such a 2×2 block, z becomes diag(z, w)), whose
diagonal is the one-point solution at z and at w and whose off-diagonal solves a linear system with the
mixed Jacobian (:func:`two_point`). At z = w it is the implicit-function derivative the ridge curves use.

The contour (:func:`contour`) runs in log z around [a, b] ⊃ spec U with a = ½ min_i Σ_c π_c s²_ic > 0 (the
non-linear noise floor bounds U from below) and b = 8 × :func:`rfdiff.theory.equations.scale`: composite
Gauss–Legendre on the rectangle |Im log z| ≤ π/4 of the log z plane, so that Re z > 0 on it and e^{−τz} stays
bounded for every τ ≥ 0. The nodes are solved once (:func:`flow_nodes`, jittable); every τ is then a weighted
sum (:func:`flow_losses`). :func:`flow_curves` is the driver behind ``theory_curves(..., clock="flow")``.

Example::

    >>> from rfdiff import GaussianMixture, RFModel                                        # doctest: +SKIP
    >>> from rfdiff.theory.curves import theory_curves                                     # doctest: +SKIP
    >>> mix = GaussianMixture.create([0.5, 0.5], [4.0, 1.0])                               # doctest: +SKIP
    >>> out = theory_curves(mix, RFModel(2.0, 1.0, 0.01, "tanh"), [0.1, 1.0, 10.0], clock="flow")  # doctest: +SKIP
    >>> out["eps_test"].shape                                                              # doctest: +SKIP
    (2, 3)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import ConvergenceError
from ..precision import float64
from .equations import (Constants, _cx, constants, neuron_population, outputs, scale,
                        solve_near, solve_point)

__all__ = ["lifted_map", "two_point", "two_point_fast", "two_point_pairs", "contour", "f_weights", "flow_nodes",
           "flow_losses", "flow_curves", "contour_bounds"]


# ----------------------------------------------------------------------------------- 2×2 upper-triangular algebra
def _mm(a, b):
    return jnp.einsum("...ij,...jk->...ik", a, b)


def _tri(diag, off):
    """2×2 block [[diag, off], [0, diag]] for arrays diag, off of the same shape (...,) → (..., 2, 2)."""
    z = jnp.zeros_like(diag)
    return jnp.stack([jnp.stack([diag, off], -1), jnp.stack([z, diag], -1)], -2)


def lifted_map(delta2, xi2, zw, c: Constants, d_omega, d_e):
    """The fixed-point map with 2×2 block entries (``theory_notes/09_gradient_flow.md`` §2).

    ``delta2`` (K, 2, 2), ``xi2`` (K, 2, K, 2), ``zw`` = (z, w) complex; the weights are ω_c I + dω_c E₁₂,
    e_c I + de_c E₁₂ (``d_omega``, ``d_e`` (K,)). Returns (δ, Ξ, R) lifted, the same shapes (R like Ξ).
    Products keep the order of the operator derivation: the sample-level Woodbury factor is
    ω_c (I + δ_c r_c)⁻¹ (r_c = ω_c/π_c), the neuron-level one Θ = (I + KΞ)⁻¹K.
    """
    k = c.c2.shape[0]
    dt = jnp.complex128
    cx = _cx(dt)
    eye2 = jnp.eye(2, dtype=dt)
    zz = jnp.diag(jnp.stack([zw[0], zw[1]]).astype(dt))
    inv_f = jnp.where(c.omega > 0, c.ratio / jnp.where(c.omega > 0, c.omega, 1.0), 0.0)  # 1/π_c
    om = _tri(cx(c.omega), cx(d_omega))  # (K, 2, 2)
    ee = _tri(cx(c.e), cx(d_e))
    rr = _tri(cx(c.ratio), cx(d_omega * inv_f))
    # ω_c b_c = ω_c (I + δ_c r_c)⁻¹: the middle factor θ(I + qθ)⁻¹ of the per-sample Woodbury step. The other
    # order (I + δ_c r_c)⁻¹ ω_c agrees at z = w but misses the finite-d two-point function by 80–120 % (notes §2.3)
    ob = _mm(om, jnp.linalg.inv(eye2[None] + _mm(delta2, rr)))
    lev = cx(c.levels.T)  # (L, K)
    c2 = cx(c.c2)[None, :, None, None]
    dl = cx(c.delta_t)
    kap = (dl * om[None] + c2 * lev[:, :, None, None] * ob[None]
           + ee[None] * (dl + c2 * lev[:, :, None, None]))  # (L, K, 2, 2)
    pop = c.pop
    lam = (jnp.einsum("qc,cab->qab", cx(pop.s2), om) + jnp.einsum("qc,cab->qab", cx(pop.s2 + pop.v2), ee)
           + jnp.einsum("qc,cab->qab", cx(pop.v2), ob) - zz[None])  # (Q, 2, 2)
    eyek = jnp.eye(k, dtype=dt)
    n2 = 2 * k
    kbig = jnp.einsum("cd,lcab->lcadb", eyek, kap).reshape(-1, n2, n2)  # blockdiag κ(l), (L, 2K, 2K)
    xbig = xi2.reshape(n2, n2)
    m = jnp.eye(n2, dtype=dt)[None] + kbig @ xbig[None]
    theta = jnp.linalg.solve(m, kbig)  # (I + KΞ)⁻¹K
    r_l = xbig[None] @ jnp.linalg.inv(m)  # Ξ(I + KΞ)⁻¹
    lw = cx(c.level_weights)
    theta_bar = jnp.einsum("l,lij->ij", lw, theta).reshape(k, 2, k, 2)
    a = cx(pop.a)
    dd = lam + jnp.einsum("qc,qd,cadb->qab", a, a, theta_bar)
    dinv = jnp.linalg.inv(dd)  # (Q, 2, 2)
    wq = cx(pop.weights)
    xi_new = cx(c.psi_p) * jnp.einsum("q,qc,qd,qab->cadb", wq, a, a, dinv)
    r4 = r_l.reshape(-1, k, 2, k, 2)
    diag_r = jnp.einsum("lcacb->lcab", r4)  # (L, K, 2, 2)
    lam_r = jnp.einsum("l,cl,lcab->cab", lw, cx(c.levels), diag_r)
    delta_new = (cx(c.c2)[:, None, None] * lam_r
                 + cx(c.psi_p) * jnp.einsum("q,qc,qab->cab", wq, cx(pop.v2), dinv)) / cx(c.psi_n)
    r_bar = jnp.einsum("l,lcadb->cadb", lw, r4)
    return delta_new, xi_new, r_bar


def _pack(xz, xw, y, k):
    """Lifted (δ, Ξ) from one-point solutions xz, xw (K + K²,) and the off-diagonal y (K + K²,)."""
    zero = jnp.zeros_like(y)
    blk = jnp.stack([jnp.stack([xz, y], -1), jnp.stack([zero, xw], -1)], -2)  # (K + K², 2, 2)
    d2 = blk[:k]
    x2 = jnp.transpose(blk[k:].reshape(k, k, 2, 2), (0, 2, 1, 3))  # [c, a, d, b]
    return d2, x2


def _off(dn, xn):
    k = dn.shape[0]
    return jnp.concatenate([dn[:, 0, 1], xn[:, 0, :, 1].reshape(k * k)])


def two_point(xz, xw, z, w, c: Constants, directions):
    """Off-diagonal (two-point) solution for each weight direction (rows of ``directions`` (J, 2K): (dω, de)).

    ``xz``, ``xw``: the one-point solutions (δ, Ξ) flattened (K + K²,) at z and w. The lifted map is affine in
    the off-diagonal unknowns y and the directions (E₁₂² = 0), so y = (I − J)⁻¹ s with J = ∂T_off/∂y (the mixed
    Jacobian: left factors at z, right factors at w) and s the source of each direction. Returns R' (J, K, K),
    the off-diagonal block of the lifted R, i.e. the equivalent of −(1/d) Tr W̃ᵀ D_c R(z) U_X R(w) D_c' W̃.
    At z = w this is the implicit-function derivative dR/dθ.
    """
    k = c.c2.shape[0]
    n = k + k * k
    zw = (z, w)

    def off(y, dth):
        d2, x2 = _pack(xz, xw, y, k)
        dn, xn, rn = lifted_map(d2, x2, zw, c, dth[:k], dth[k:])
        return _off(dn, xn), rn[:, 0, :, 1]

    y0 = jnp.zeros(n, jnp.complex128)
    th0 = jnp.zeros(2 * k, jnp.float64)
    jac = jax.jacfwd(lambda y: off(y, th0)[0], holomorphic=True)(y0)  # (n, n)
    jr = jax.jacfwd(lambda y: off(y, th0)[1], holomorphic=True)(y0)  # (K, K, n)
    src, r_src = jax.vmap(lambda th: off(y0, th))(directions)  # (J, n), (J, K, K)
    y = jnp.linalg.solve(jnp.eye(n, dtype=jnp.complex128) - jac, src.T).T  # (J, n)
    return r_src + jnp.einsum("cdn,jn->jcd", jr, y)


# ------------------------------------------------------------------------------------------------ the contour
_BETA = np.pi / 4  # half-opening of the log-z rectangle: Re z ≥ |z| cos β > 0, and β of room on either side


def contour(a, b, *, n_panels: int, order: int):
    """Upper half of the contour around [a, b] (0 < a < b): nodes z (N,) and weights dz (N,), N = (n_panels + 2)·order.

    In w = log z the closed contour is the rectangle [log a, log b] × [−β, β] (β = π/4), traversed counter-
    clockwise; its upper half is the cap |z| = b (arg 0 → β), the ray arg z = β (|z| from b down to a, in
    ``n_panels`` equal panels of log|z|), and the cap |z| = a (arg β → 0), each panel with ``order``
    Gauss–Legendre nodes. The lower half is the mirror image: for Schwarz-symmetric integrands (real on the
    real axis) −(1/2πi)∮ h dz = −(1/π) Im Σ_j dz_j h(z_j). Jittable in (a, b); sizes static.

    >>> z, dz = contour(1e-3, 10.0, n_panels=12, order=8)
    >>> z.shape, bool(jnp.all(z.imag > 0))
    ((112,), True)
    """
    x, wgl = np.polynomial.legendre.leggauss(order)
    cx = _cx(jnp.complex128)
    i1 = jnp.complex128(1j)
    la = jnp.log(jnp.asarray(a, jnp.float64))
    lb = jnp.log(jnp.asarray(b, jnp.float64))
    u = jnp.asarray(0.5 * (x + 1.0))  # (order,) on [0, 1]
    wu = jnp.asarray(0.5 * wgl)
    # right cap: w = log b + iφ, φ: 0 → β;  dz = i z dφ
    z_r = jnp.exp(cx(lb) + i1 * cx(_BETA * u))
    dz_r = i1 * z_r * cx(_BETA * wu)
    # ray: w = s + iβ, s: log b → log a;  dz = z ds
    h = (lb - la) / n_panels
    s = (lb - h * (jnp.arange(n_panels, dtype=jnp.float64)[:, None] + u[None, :])).reshape(-1)
    z_m = jnp.exp(cx(s) + i1 * _BETA)
    dz_m = -z_m * cx(h * jnp.tile(wu, n_panels))
    # left cap: w = log a + iφ, φ: β → 0
    z_l = jnp.exp(cx(la) + i1 * cx(_BETA * (1.0 - u)))
    dz_l = -i1 * z_l * cx(_BETA * wu)
    return jnp.concatenate([z_r, z_m, z_l]), jnp.concatenate([dz_r, dz_m, dz_l])


def f_weights(z, taus, clock: str, step=None):
    """f_τ(z) (T, N) at complex nodes z (N,) for the clock: 'flow' (1 − e^{−τz})/z, 'ridge' 1/(z + 1/τ), 'gd'
    (1 − (1 − ηz)^s)/z with s = round(τ/η) steps of size η = ``step`` (the finite-d closed form's clocks)."""
    z = z[None, :]
    tau = jnp.asarray(taus, jnp.float64)[:, None].astype(jnp.complex128)
    if clock == "flow":
        return -jnp.expm1(-tau * z) / z
    if clock == "ridge":
        return tau / (1.0 + tau * z)
    if clock == "inf":  # τ → ∞ on every convergent clock: f = 1/λ (0 lies outside the contour)
        return jnp.broadcast_to(1.0 / z, (tau.shape[0], z.shape[1]))
    if clock == "gd":
        s = jnp.round(tau.real / step).astype(jnp.complex128)
        return -jnp.expm1(s * jnp.log1p(-jnp.asarray(step, jnp.float64).astype(jnp.complex128) * z)) / z
    raise ValueError(f"clock must be 'flow', 'ridge' or 'gd', got {clock!r}")


# ------------------------------------------------------------------------------------ nodes once, then any τ
def flow_nodes(c: Constants, proportions, a, b, *, n_panels: int, order: int, tol=1e-13, one_point: str = "contour"):
    """Solve the equations once on the contour: one-point at every node, two-point at every node pair.

    Returns a dict: ``z``, ``dz`` (N,) (upper half, :func:`contour`), ``g1`` (N, K) = Δ Σ_c' π_c' R_cc'(z)
    (the linear term's integrand), ``guu``, ``gul`` (2K, N, N) = G2(z_j, z_k) and G2(z_j, z̄_k) (the quadratic
    term's, G2 = −Δ πᵀ R' π, train directions ω_c then test directions e_c), ``residual`` (max one-point
    residual), ``mass`` (enclosed spectral mass of g, 1 when the contour encloses the spectrum), ``branch`` (Im g ≥ 0
    at every node: g is a Stieltjes transform, so Im g > 0 where Im z > 0; False means a node's solution is a
    spurious root). Jittable (sizes static).

    ``one_point``: ``"contour"`` solves the first node by the spectrum's continuation in the imaginary part and
    every later one by Newton from its neighbour (fast); ``"grid"`` solves every node by that continuation
    (:func:`rfdiff.theory.equations.solve_point`, robust, ~30× slower), the fallback of :func:`flow_curves` when
    the contour route leaves the physical branch (seen with coarse contours: 2 panels over 4 decades jumped to
    a root with Im g < 0 and a 1e-16 residual).
    """
    k = c.c2.shape[0]
    z, dz = contour(a, b, n_panels=n_panels, order=order)
    # the first node (z = b, above the spectrum) by the spectrum's imaginary-part continuation, then Newton from the
    # neighbouring node along the contour: it stays an angle π/4 away from the real axis, so the solution moves
    # smoothly (≤ 4 Newton steps per node; same solution as continuation at every node to 8e-12, 27× faster at
    # 128 nodes × 256 neurons). A jump to another branch would show in the residual or the enclosed mass.
    if one_point == "contour":
        s0 = solve_point(z[0], c, eta0=10.0 * (scale(c) + jnp.abs(z[0].real)))

        def step(x, zz):
            y, res, _ = solve_near(x, zz, c, tol=tol, max_iter=40)
            return y, (y, res)

        _, (x, res) = jax.lax.scan(step, jnp.concatenate([s0.delta, s0.xi.reshape(k * k)]), z)  # x (N, K + K²)
    elif one_point == "grid":
        st = jax.vmap(lambda zz: solve_point(zz, c, eta0=10.0 * (scale(c) + jnp.abs(zz.real))))(z)
        x, res = jnp.concatenate([st.delta, st.xi.reshape(z.shape[0], k * k)], 1), st.residual
    else:
        raise ValueError(f"one_point must be 'contour' or 'grid', got {one_point!r}")
    g, _, _, r, _, _ = jax.vmap(lambda xx, zz: outputs(xx, zz, c))(x, z)
    pc = proportions.astype(jnp.complex128)
    dl = c.delta_t.astype(jnp.complex128)
    g1 = dl * r @ pc  # (N, K)
    # mass of (1/p) Tr (U − z)⁻¹ inside the contour: 1 iff the contour encloses the whole spectrum
    mass = -jnp.imag(jnp.sum(dz * g)) / np.pi
    dirs = jnp.eye(2 * k)
    # G2(z, w) = G2(w, z) (the operator (U − z)⁻¹ U_X (U − w)⁻¹ transposes into the swapped one) and G2 is real
    # on the real axis, so G_uu(j, k) = G_uu(k, j) and G_ul(j, k) = conj G_ul(k, j): the pairs j ≤ k only, N(N + 1)/2
    # of the N² (tests/theory/test_flow.py checks both against all pairs)
    n_nodes = z.shape[0]
    jj, kk = (jnp.asarray(a) for a in np.triu_indices(n_nodes))

    def g2(xw, zw, mirror):
        v = -dl * two_point_pairs(x, z, xw, zw, c, dirs, jj, kk, chunk=n_nodes, weights=pc)  # (2K, P) = −Δ πᵀR'π
        full = jnp.zeros((2 * k, n_nodes, n_nodes), jnp.complex128).at[:, kk, jj].set(mirror(v))
        return full.at[:, jj, kk].set(v)  # the computed value wins on the diagonal

    guu = g2(x, z, lambda v: v)
    gul = g2(jnp.conj(x), jnp.conj(z), jnp.conj)
    branch = jnp.all(g.imag >= -1e-12 * jnp.abs(g))
    return {"z": z, "dz": dz, "g1": g1, "guu": guu, "gul": gul, "residual": jnp.max(res),
            "mass": mass, "branch": branch}


def flow_losses(nodes, taus, clock: str = "flow", step=None):
    """Per-class losses (2K, T) (train classes, then test classes) and Q1 (K, T) at ``taus`` from :func:`flow_nodes`::

        Q1 = −(1/π) Im Σ_j h_j g1_j,   Q2 = −(1/2π²) Re[hᵀ G_uu h − hᵀ G_ul h̄],   h_j = f_τ(z_j) dz_j,

    (the lower half of the contour is the mirror image), L = 1 + Q2 − 2 Q1. Cheap: O(T N² K).
    """
    h = f_weights(nodes["z"], taus, clock, step) * nodes["dz"][None, :]  # (T, N)
    q1 = -jnp.imag(h @ nodes["g1"]) / np.pi  # (T, K)
    quad = (jnp.einsum("tj,xjk,tk->xt", h, nodes["guu"], h)
            - jnp.einsum("tj,xjk,tk->xt", h, nodes["gul"], jnp.conj(h)))
    q2 = -jnp.real(quad) / (2.0 * np.pi**2)  # (2K, T)
    return 1.0 + q2 - 2.0 * jnp.concatenate([q1.T, q1.T]), q1.T


# ------------------------------------------------------------- the two-point system in closed form (fast path)
def _point(x, z, c: Constants):
    """One-point quantities at a solution x (K + K²,) at z: what the off-diagonal equations need."""
    k = c.c2.shape[0]
    cx = _cx(jnp.complex128)
    delta = x[:k]
    xi = x[k:].reshape(k, k)
    b = 1.0 / (1.0 + cx(c.ratio) * delta)
    lev = cx(c.levels.T)  # (L, K)
    c2 = cx(c.c2)[None, :]
    dl = cx(c.delta_t)
    kap = cx(c.omega)[None, :] * (dl + c2 * lev * b[None, :]) + cx(c.e)[None, :] * (dl + c2 * lev)  # (L, K)
    eye = jnp.eye(k, dtype=jnp.complex128)
    m = eye[None] + kap[:, :, None] * xi[None]
    minv = jnp.linalg.inv(m)  # (L, K, K)
    theta = minv * kap[:, None, :]  # (I + KΞ)⁻¹ K
    r_l = xi[None] @ minv
    pop = c.pop
    lam_i = (cx(pop.s2 @ (c.omega + c.e) + pop.v2 @ c.e) + cx(pop.v2) @ (cx(c.omega) * b) - z)
    theta_bar = jnp.einsum("l,lcd->cd", cx(c.level_weights), theta)
    a = cx(pop.a)
    alpha = 1.0 / (lam_i + jnp.einsum("qc,cd,qd->q", a, theta_bar, a))  # 1/D_i (Q,)
    return {"delta": delta, "xi": xi, "b": b, "kap": kap, "minv": minv, "theta": theta, "r_l": r_l,
            "alpha": alpha}


def _features(c: Constants):
    """Per-neuron features whose u-weighted sums the off-diagonal equations need (Q, F), F = K⁴ + 2K³ + 2K²."""
    pop = c.pop
    q, k = pop.a.shape
    a, v2, s2 = pop.a, pop.v2, pop.s2
    aa = (a[:, :, None] * a[:, None, :]).reshape(q, k * k)
    return jnp.concatenate([(aa[:, :, None] * aa[:, None, :]).reshape(q, -1),  # a_c a_d a_e a_f
                            (aa[:, :, None] * v2[:, None, :]).reshape(q, -1),  # a_c a_d v²_e
                            (aa[:, :, None] * s2[:, None, :]).reshape(q, -1),  # a_c a_d s²_e
                            (v2[:, :, None] * v2[:, None, :]).reshape(q, -1),  # v²_c v²_e
                            (v2[:, :, None] * s2[:, None, :]).reshape(q, -1)], 1)  # v²_c s²_e


def _feature_layout(k: int):
    """(unique, index): the columns of :func:`_features` with distinct values (the products are symmetric under
    permutations of their a indices and of the two v² indices: K⁴ + 2K³ + 2K² = 416 columns hold 141 distinct
    values at K = 4, 24 of 40 at K = 2) and, for each column, the distinct column holding its value. The neuron sums
    are taken over the distinct columns only and gathered back."""
    sig = [("aaaa",) + tuple(sorted(ix)) for ix in np.ndindex(k, k, k, k)]
    sig += [(tag,) + tuple(sorted(ix[:2])) + ix[2:] for tag in ("aav", "aas") for ix in np.ndindex(k, k, k)]
    sig += [("vv",) + tuple(sorted(ix)) for ix in np.ndindex(k, k)]
    sig += [("vs",) + ix for ix in np.ndindex(k, k)]
    seen: dict = {}
    unique, index = [], []
    for f, key in enumerate(sig):
        if key not in seen:
            seen[key] = len(unique)
            unique.append(f)
        index.append(seen[key])
    return np.asarray(unique), np.asarray(index)


def _pair_linear(y, dth, pz, pw, nsum, c: Constants):
    """Off-diagonal map (linear in y = (δ', Ξ') and dth = (dω, de)) for one pair, from the one-point
    quantities ``pz``, ``pw`` and the neuron sums ``nsum`` (F,) = Σ_i w_i a-features /(D_i(z) D_i(w)).
    Equations: ``theory_notes/09_gradient_flow.md`` §2.2 (the product rule (AB)' = A_z B' + A' B_w)."""
    k = c.c2.shape[0]
    cx = _cx(jnp.complex128)
    d_om, d_e = cx(dth[:k]), cx(dth[k:])
    dlt, xip = y[:k], y[k:].reshape(k, k)
    om, r = cx(c.omega), cx(c.ratio)
    inv_f = cx(jnp.where(c.omega > 0, c.ratio / jnp.where(c.omega > 0, c.omega, 1.0), 0.0))
    # (ω b)' for ω b = ω (1 + δ r)⁻¹
    obp = d_om * pw["b"] - om * pz["b"] * pw["b"] * (pz["delta"] * d_om * inv_f + r * dlt)
    lev = cx(c.levels.T)
    c2 = cx(c.c2)[None, :]
    dl = cx(c.delta_t)
    kapp = dl * d_om[None, :] + c2 * lev * obp[None, :] + d_e[None, :] * (dl + c2 * lev)  # (L, K)
    mp = pz["kap"][:, :, None] * xip[None] + kapp[:, :, None] * pw["xi"][None]  # M' (L, K, K)
    thp = pz["minv"] @ (jnp.eye(k, dtype=jnp.complex128)[None] * kapp[:, None, :] - mp @ pw["theta"])
    rp_l = (xip[None] - pz["r_l"] @ mp) @ pw["minv"]
    lw = cx(c.level_weights)
    thp_bar = jnp.einsum("l,lcd->cd", lw, thp)
    k2, k3, k4 = k * k, k ** 3, k ** 4
    n_aaaa = nsum[:k4].reshape(k, k, k, k)
    n_aav = nsum[k4:k4 + k3].reshape(k, k, k)
    n_aas = nsum[k4 + k3:k4 + 2 * k3].reshape(k, k, k)
    n_vv = nsum[k4 + 2 * k3:k4 + 2 * k3 + k2].reshape(k, k)
    n_vs = nsum[k4 + 2 * k3 + k2:].reshape(k, k)
    # Σ_i u_i a_i a_iᵀ D'_i and Σ_i u_i v²_ic D'_i with D'_i = Σ_e [s² dω + (s² + v²) de + v² (ωb)']_ie + aᵀΘ̄'a
    lin_e = obp + d_e
    s_aa = (n_aav @ lin_e + n_aas @ (d_om + d_e) + jnp.einsum("cdef,ef->cd", n_aaaa, thp_bar))
    s_v = (n_vv @ lin_e + n_vs @ (d_om + d_e) + jnp.einsum("efc,ef->c", n_aav, thp_bar))
    xi_new = -cx(c.psi_p) * s_aa
    lam_r = jnp.einsum("l,cl,lcc->c", lw, cx(c.levels), rp_l)
    delta_new = (cx(c.c2) * lam_r - cx(c.psi_p) * s_v) / cx(c.psi_n)
    return jnp.concatenate([delta_new, xi_new.reshape(k2)]), jnp.einsum("l,lcd->cd", lw, rp_l)


def two_point_pairs(xs_z, zs, xs_w, ws, c: Constants, directions, jj, kk, *, chunk: int, weights=None):
    """Two-point R' at the pairs (z_jj[p], w_kk[p]) of the nodes ``zs`` (Nz,), ``ws`` (Nw,) with one-point solutions
    ``xs_z``, ``xs_w``: (J, P, K, K) for the P index pairs ``jj``, ``kk`` (static-shape integer arrays), ``chunk``
    pairs at a time (static; P is padded up to a multiple). Each pair: the neuron sums Σ_i w_i φ_i /(D_i(z) D_i(w))
    (the dominant cost, O(P Q F) as matrix products), then the off-diagonal system of :func:`_pair_linear`.
    ``weights`` w (K,): return the (J, P) contractions wᵀR'w instead, by one adjoint solve per pair instead of one
    solve with J right-hand sides (what :func:`flow_nodes` needs: w = π; 7 % of its warm time at K = 4)."""
    k = c.c2.shape[0]
    n = k + k * k
    pz = jax.vmap(lambda x, z: _point(x, z, c))(xs_z, zs)
    pw = jax.vmap(lambda x, z: _point(x, z, c))(xs_w, ws)
    unique, index = _feature_layout(k)
    feats = (_features(c) * c.pop.weights[:, None])[:, unique]  # (Q, F_unique), real
    eye = jnp.eye(n, dtype=jnp.complex128)
    nd = directions.shape[0]
    dirs_c = directions.astype(jnp.complex128)

    def one(pz1, pw1, ns):
        # the map is linear in (y, θ'): one forward-mode pass over all n + 2K inputs gives J, the sources and R'
        def fn(v):
            off, rp = _pair_linear(v[:n], v[n:], pz1, pw1, ns, c)
            return jnp.concatenate([off, rp.reshape(k * k)])

        full = jax.jacfwd(fn, holomorphic=True)(jnp.zeros(n + 2 * k, jnp.complex128))  # (n + K², n + 2K)
        jac, src = full[:n, :n], full[:n, n:] @ dirs_c.T  # (n, n), (n, J)
        jr, r_src = full[n:, :n], full[n:, n:] @ dirs_c.T
        if weights is not None:  # wᵀR'w only: one adjoint solve (I − J)ᵀρ = jrᵀ vec(wwᵀ) for every direction
            q = (weights[:, None] * weights[None, :]).reshape(k * k).astype(jnp.complex128)
            rho = jnp.linalg.solve((eye - jac).T, q @ jr)  # (n,)
            return q @ r_src + rho @ src  # (J,)
        y = jnp.linalg.solve(eye - jac, src)  # (n, J)
        return (r_src + jr @ y).T.reshape(nd, k, k)

    sel = lambda tree, idx: jax.tree_util.tree_map(lambda t: t[idx], tree)  # noqa: E731

    def block(idx):
        j, m = jj[idx], kk[idx]
        # the features are real: two real products (a quarter of the complex product's flops) over the distinct
        # columns only (a third at K = 4), gathered back to all F: 10.3 → 0.9 s for the two calls of a K = 4,
        # 1 024-neuron, 248-node contour (measured)
        u = pz["alpha"][j] * pw["alpha"][m]  # (chunk, Q)
        ns = jax.lax.complex(u.real @ feats, u.imag @ feats)[:, index]  # (chunk, F)
        return jax.vmap(one)(sel(pz, j), sel(pw, m), ns)

    p = jj.shape[0]
    total = -(-p // chunk) * chunk
    idx = jnp.minimum(jnp.arange(total), p - 1).reshape(-1, chunk)  # padding repeats the last pair
    out = jax.lax.map(block, idx)
    out = out.reshape((total,) + out.shape[2:])[:p]  # (P, J, K, K), or (P, J) with weights
    return jnp.moveaxis(out, 1, 0)


def two_point_fast(xs_z, zs, xs_w, ws, c: Constants, directions):
    """Two-point R' for every pair (z_j, w_k): (J, Nz, Nw, K, K); same result as :func:`two_point`, with the
    neuron averages done as matrix products (:func:`two_point_pairs` over all Nz·Nw pairs, Nw at a time)."""
    nz, nw = zs.shape[0], ws.shape[0]
    jj, kk = (a.ravel() for a in np.meshgrid(np.arange(nz), np.arange(nw), indexing="ij"))
    out = two_point_pairs(xs_z, zs, xs_w, ws, c, directions, jnp.asarray(jj), jnp.asarray(kk), chunk=nw)
    return out.reshape(out.shape[:1] + (nz, nw) + out.shape[2:])


# --------------------------------------------------------------------------------------------------- driver
def contour_bounds(c: Constants, proportions):
    """(a, b) with spec U ⊂ (a, b): a = ½ min_i Σ_c π_c s²_ic (U ⪰ diag Σ_c π_c s²_ic, the neurons' independent
    pure-noise variance), b = 8 × :func:`rfdiff.theory.equations.scale` (the bulk top measured at ≤ 2 × scale
    on the five validation mixtures; :func:`flow_nodes` checks the enclosed spectral mass)."""
    return 0.5 * jnp.min(c.pop.s2 @ proportions), 8.0 * scale(c)


_nodes_jit = jax.jit(flow_nodes, static_argnames=("n_panels", "order", "one_point"))
_losses_jit = jax.jit(flow_losses, static_argnames=("clock",))
_pop_jit = jax.jit(neuron_population, static_argnames=("activation", "n_quad", "coef_nodes"))


def n_panels_for(a, b) -> int:
    """Panels on the ray of the contour: one per β = π/4 of log|z| (Gauss–Legendre panels of length ≤ the
    distance β to the real axis converge geometrically, ~4⁻²ᵐ for m nodes)."""
    return max(2, int(np.ceil(np.log(float(b) / float(a)) / _BETA)))


@float64
def flow_curves(mixture, model, taus, *, kind: str = "flow", step=None, n_quad: int = 1, coef_nodes: int = 128,
                tol: float = 1e-8, shifts=None, order: int = 8, mass_tol: float = 1e-8):
    """Per-class curves on the gradient-flow (``kind="flow"``) or GD (``"gd"``, ``step`` = lr) clock.

    Called by :func:`rfdiff.theory.curves.theory_curves` (``clock=``), which validates the input; returns
    the same dict (``loss_*``, ``eps_*`` (K, T), ``eps_*_inf`` (K,), ``signal`` (K, T), ``residual``) plus
    ``mass`` (the spectral mass inside the contour, 1 when it encloses the spectrum). Raises
    :class:`rfdiff.errors.ConvergenceError` when a node did not converge or the contour misses spectrum.
    """
    props = jnp.asarray(mixture.proportions, jnp.float64)
    var = jnp.asarray(mixture.class_variance, jnp.float64)
    gram = jnp.asarray(mixture.centroid_gram, jnp.float64)
    t = jnp.float64(model.t)
    pop = _pop_jit(model.activation, var, gram, t, n_quad=n_quad, coef_nodes=coef_nodes, shifts=shifts)
    c = constants(pop, props, var, jnp.float64(model.psi_p), jnp.float64(model.psi_n), t)
    a, b = (float(v) for v in contour_bounds(c, props))
    if not (a > 0 and np.isfinite(b) and b > a):
        raise ConvergenceError("no contour around the spectrum: the noise floor min_i Σ_c π_c s²_ic is 0",
                               residual=float("nan"), point={"a": a, "b": b})
    if kind == "gd" and step * b >= np.sqrt(2.0):
        raise ValueError(f"clock ('gd', lr): lr = {step} must be < √2/b = {np.sqrt(2.0) / b:.4g} (b = {b:.4g} "
                         "bounds the spectrum; |1 − lr·z| ≤ 1 on the contour keeps (1 − lr·z)^s bounded)")
    args = (c, props, jnp.float64(a), jnp.float64(b))
    nodes = _nodes_jit(*args, n_panels=n_panels_for(a, b), order=order)
    if not bool(nodes["branch"]):  # Newton along the contour reached a spurious root: continuation at every node
        nodes = _nodes_jit(*args, n_panels=n_panels_for(a, b), order=order, one_point="grid")
    res, mass = float(nodes["residual"]), float(nodes["mass"])
    if not np.isfinite(res) or res > tol or not abs(mass - 1.0) < mass_tol or not bool(nodes["branch"]):
        raise ConvergenceError(f"flow theory: node residual {res:.2g} (tol {tol:.1g}), enclosed spectral mass "
                               f"{mass:.12g} ≠ 1 or Im g < 0 at a node (branch {bool(nodes['branch'])})",
                               residual=res, point={"a": a, "b": b, "order": order, "n_quad": int(n_quad)})
    taus = jnp.asarray(taus, jnp.float64)
    loss, q1 = _losses_jit(nodes, taus, kind, step)
    loss_inf, _ = _losses_jit(nodes, taus[:1], "inf", None)
    dlt = -np.expm1(-2.0 * float(model.t))
    S = dlt / (np.exp(-2.0 * float(model.t)) * np.asarray(var) + dlt)
    SS = np.concatenate([S, S])[:, None]
    loss, loss_inf = np.asarray(loss), np.asarray(loss_inf)
    eps, eps_inf = (loss - (1.0 - SS)) / SS, (loss_inf - (1.0 - SS)) / SS
    k = S.shape[0]
    return {"loss_train": loss[:k], "loss_test": loss[k:], "eps_train": eps[:k], "eps_test": eps[k:],
            "eps_train_inf": eps_inf[:k, 0], "eps_test_inf": eps_inf[k:, 0], "signal": np.asarray(q1),
            "residual": np.asarray(res), "mass": np.asarray(mass)}
