"""Spectrum of the feature covariance U = (1/n) Σ_ν E_ξ[φ φᵀ] of the random-features score model.

In the limit d, p, n → ∞ (ψ_p = p/d, ψ_n = n/d) the Stieltjes transform g(z) = (1/p) Tr (U − z)⁻¹ solves
the self-consistent equations of :mod:`rfdiff._resolvent` (derivation: ``theory_notes/03_spectrum.md``),
for a K-class Gaussian mixture with per-class variances, covariance levels and centroids:

* weak centroids (``||μ_c||² = O(1)``, regime A): neuron-independent coefficients, one population node;
  the centroids only create finite-rank outliers (:func:`outliers`, ``d`` needed);
* strong centroids (``||μ_c||²/d = O(1)``, regime B): the neuron shifts ``m_i ~ N(0, e^{-2t} M)`` are
  averaged by a tensor Gauss–Hermite rule (:func:`neuron_population`), or given explicitly at finite d.

Entry points: :func:`resolvent` (any complex z, jit/vmap-able core), :func:`spectral_density` (density on a
λ grid with per-class parts, atom, edges, outliers, residuals), :func:`spectral_distance` /
:func:`edges_from_eigs` (comparison with finite-d eigenvalues).

Example::

    >>> import numpy as np, rfdiff
    >>> mix = rfdiff.GaussianMixture.create([0.5, 0.5], [1.0, 4.0])
    >>> model = rfdiff.RFModel(psi_p=4.0, psi_n=2.0, t=0.01)
    >>> res = rfdiff.spectral_density(mix, model, np.geomspace(1e-3, 1e2, 400))   # doctest: +SKIP
    >>> res.atom_mass                                                                # doctest: +SKIP
    0.25

Reference for K = 1: Bonnaire, Urfin, Biroli, Mézard (2025), arXiv:2505.17638 ("BUBM").
"""

from __future__ import annotations

import itertools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..precision import float64
from .equations import Constants, NeuronPopulation, ResolventState, node_denominators, solve_point
from ..model.activations import class_coefficients
from ..model.rf import RFModel
from ..model.mixture import GaussianMixture

__all__ = [
    "NeuronPopulation",
    "ResolventState",
    "SpectrumConvergenceError",
    "neuron_population",
    "resolvent",
    "SpectrumResult",
    "spectral_density",
    "outliers",
    "spectral_distance",
    "edges_from_eigs",
]


class SpectrumConvergenceError(RuntimeError):
    """The self-consistent equations did not converge (message names the worst residual and its λ)."""


# --------------------------------------------------------------------------------------- populations
@float64
def neuron_population(mixture: GaussianMixture, model: RFModel, *, n_hermite: int | None = None,
                      shifts=None, centroids: str = "auto", n_nodes: int | None = None) -> NeuronPopulation:
    """Per-neuron GE coefficients at the nodes of the shift distribution ``m_i ~ N(0, e^{-2t} M)``.

    * ``centroids="weak"`` (or ``M = 0``): one node at m = 0 (regime A, neuron-independent coefficients);
    * ``centroids="strong"``: tensor Gauss–Hermite rule with ``n_hermite`` nodes per non-zero eigen-direction
      of M (default 24, 12, 8 for rank 1, 2, ≥3), weights summing to 1;
    * ``shifts`` (Q, K): an explicit empirical set ``m_ic = e^{-t} w_i·μ_c/√d`` (finite d), equal weights.

    ``"auto"`` is ``strong`` when M ≠ 0. ``n_nodes`` is the quadrature order of each coefficient integral
    (default 200 for ≤ 64 population nodes, else 80).
    """
    k = mixture.num_classes
    if centroids not in ("auto", "weak", "strong"):
        raise ValueError(f"centroids must be 'auto', 'weak' or 'strong', got {centroids!r}")
    t = jnp.asarray(model.t, jnp.float64)
    if shifts is not None:
        m = jnp.asarray(shifts, jnp.float64)
        if m.ndim != 2 or m.shape[1] != k or not np.all(np.isfinite(np.asarray(m))):
            raise ValueError(f"shifts must be a finite (Q, {k}) array, got shape {m.shape}")
        w = jnp.full((m.shape[0],), 1.0 / m.shape[0])
    else:
        gram = np.asarray(mixture.centroid_gram, dtype=np.float64)
        ev, vec = np.linalg.eigh(gram)
        keep = ev > 1e-12 * max(1.0, float(np.abs(ev).max(initial=0.0)))
        if centroids == "weak" or not keep.any():
            m, w = jnp.zeros((1, k)), jnp.ones((1,))
        else:
            r = int(keep.sum())
            nh = n_hermite or {1: 24, 2: 12}.get(r, 8)
            if nh < 1:
                raise ValueError(f"n_hermite must be positive, got {nh}")
            x1, w1 = np.polynomial.hermite_e.hermegauss(nh)
            w1 = w1 / w1.sum()
            grid = np.array(list(itertools.product(x1, repeat=r)))  # (nh^r, r)
            wgt = np.prod(np.array(list(itertools.product(w1, repeat=r))), axis=1)
            root = vec[:, keep] * np.sqrt(ev[keep])  # (K, r): M = root rootᵀ
            m = jnp.asarray(np.exp(-float(t)) * grid @ root.T)
            w = jnp.asarray(wgt)
    if n_nodes is None:  # trapezoid rule (activations): 128 nodes ~1e-10 up to Γ ≈ 3; 96 for large populations
        n_nodes = 128 if m.shape[0] <= 64 else 96
    co = class_coefficients(model.activation, mixture, t, m, n_nodes=n_nodes)
    return NeuronPopulation(weights=w, mu0=co.mu0, a=co.a, v2=co.v2, s2=co.s2)


def _constants(mixture: GaussianMixture, model: RFModel, pop: NeuronPopulation, weights) -> Constants:
    f = jnp.asarray(mixture.proportions, jnp.float64)
    if weights is None:
        omega, e = f, jnp.zeros_like(f)
    else:
        omega, e = (jnp.asarray(x, jnp.float64) for x in weights)
        if omega.shape != f.shape or e.shape != f.shape:
            raise ValueError(f"weights must be a pair (ω, e) of shape ({f.shape[0]},) each")
    ratio = jnp.where(f > 0, omega / jnp.where(f > 0, f, 1.0), 0.0)
    t = jnp.asarray(model.t, jnp.float64)
    return Constants(psi_p=jnp.asarray(model.psi_p, jnp.float64), psi_n=jnp.asarray(model.psi_n, jnp.float64),
                     delta_t=-jnp.expm1(-2 * t), c2=jnp.exp(-2 * t) * mixture.variances,
                     levels=mixture.levels, level_weights=mixture.level_weights, omega=omega, e=e,
                     ratio=ratio, pop=pop)


def _scale(c: Constants):
    """A scale above the top of the bulk spectrum: ψ_p E_i Σ_c (ω_c+e_c)(a²(Δ + c2) + v² + s²) + 1."""
    pop = c.pop
    tot = pop.a**2 * (c.delta_t + c.c2 * (c.levels @ c.level_weights))[None, :] + pop.v2 + pop.s2
    return (c.psi_p + 1.0) * (pop.weights @ (tot @ (c.omega + c.e))) + 1.0


@float64
def resolvent(z, mixture: GaussianMixture, model: RFModel, *, weights=None, quad: NeuronPopulation | None = None,
              n_levels: int = 40, tol: float = 1e-13, max_iter: int = 40) -> ResolventState:
    """Solve the self-consistent equations at complex ``z`` (Im z > 0, or real z below the spectrum).

    Returns a :class:`ResolventState` with ``g = (1/p) Tr(U − z)⁻¹``, ``delta`` (K,), the class-signal
    matrix ``R`` (K, K) ≈ (1/(dΔ)) Tr V_cᵀ(U − z)⁻¹V_c', the per-class sample measure ``δ_c/(1+δ_c)``,
    the per-class traces ``(1/p) Tr(ω_c U_c (U − z)⁻¹)`` (summing to 1 + z g), the residual and the
    Newton iteration count. ``z`` may have any shape (the solve is vmapped); outputs gain its shape in front.

    ``weights = (ω, e)`` solves for ``U(ω, e) = Σ_c ω_c U_c^tr + Σ_c e_c U_c^pop`` (default ω = π, e = 0);
    ``quad`` is a precomputed :func:`neuron_population` (recomputed here otherwise). The solver continues
    in the imaginary part from far above the spectrum down to ``Im z`` (``n_levels`` geometric levels,
    Newton to ``tol`` at each). It does not raise: check ``residual`` (``spectral_density`` does).

    Example::

        >>> st = resolvent(-0.1, mix, model)          # real z = −μ: everything real   # doctest: +SKIP
    """
    pop = neuron_population(mixture, model) if quad is None else quad
    c = _constants(mixture, model, pop, weights)
    z = jnp.asarray(z, jnp.complex128)
    return _solve_many(z.reshape(-1), c, n_levels, tol, max_iter, z.shape)


_CHUNK = 128


def _solve_many(zf, c, n_levels, tol, max_iter, shape):
    # pad to a power-of-two batch (16 … _CHUNK) so that grids of different sizes share one compiled solver;
    # larger grids run in chunks of _CHUNK points (one very large vmapped batch of nested while loops was
    # seen to stall the XLA CPU runtime on the shared machine)
    n = zf.shape[0]
    m = min(_CHUNK, max(16, 1 << max(n - 1, 0).bit_length()))
    total = -(-n // m) * m
    zp = jnp.concatenate([zf, jnp.full((total - n,), 1j, zf.dtype)])
    parts = [_solve_jit(zp[i:i + m], c, n_levels, tol, max_iter) for i in range(0, total, m)]
    out = jax.tree_util.tree_map(lambda *a: jnp.concatenate(a, 0), *parts) if len(parts) > 1 else parts[0]
    return jax.tree_util.tree_map(lambda a: a[:n].reshape(shape + a.shape[1:]), out)


@eqx.filter_jit
def _solve_jit(zf, c, n_levels, tol, max_iter):
    eta0 = 10.0 * (_scale(c) + jnp.abs(zf.real))
    fn = lambda z, e0: solve_point(z, c, eta0=e0, n_levels=n_levels, tol=tol, max_iter=max_iter)  # noqa: E731
    return jax.vmap(fn)(zf, eta0)


# --------------------------------------------------------------------------------------- density
class SpectrumResult(eqx.Module):
    """Asymptotic spectrum of U on a λ grid (numpy arrays; see :func:`spectral_density`).

    * ``lam`` (N,), ``density`` (N,): ρ(λ) of the continuous part (the atom is *not* in it);
    * ``class_density`` (N, K): ρ_c(λ) = Im[(1/p) Tr(π_c U_c (U−λ)⁻¹)]/(πλ) ≥ 0, Σ_c ρ_c = ρ;
    * ``sample_density`` (N, K): Im[δ_c/(1+δ_c)]/π, spectral weight of one class-c training feature;
    * ``atom_location``, ``atom_mass``: the atom at s̄² (mass 0 when there is none);
    * ``continuous_mass``: ∫ρ on the grid (should equal 1 − atom_mass);
    * ``edges`` (B, 2): support intervals detected on the grid; ``outliers`` (O,), needs ``d``;
    * ``residual`` (N,), ``iterations`` (N,), ``g`` (N,) complex; ``converged``.
    """

    lam: np.ndarray
    density: np.ndarray
    class_density: np.ndarray
    sample_density: np.ndarray
    atom_location: float
    atom_mass: float
    continuous_mass: float
    edges: np.ndarray
    outliers: np.ndarray
    residual: np.ndarray
    iterations: np.ndarray
    g: np.ndarray
    converged: bool
    eta_rel: float
    p: int | None = None


def _atom(pop: NeuronPopulation, c: Constants):
    """Atom location (the constant part of Λ_i) and mass, when the diagonal part is neuron-independent.

    The non-diagonal part of U has rank min(p, n·[v² ≠ 0] + d·[a ≠ 0]) in regime A (one population node;
    all D_c ∝ I share the column space of W̃), so the rest, (p − n − d)⁺, sits at the diagonal value.
    """
    diag = np.asarray(pop.s2 @ (c.omega + c.e) + pop.v2 @ c.e)
    if diag.size != 1 and np.ptp(diag) > 1e-12 * max(1.0, np.abs(diag).max()):
        return float(np.average(diag, weights=np.asarray(pop.weights))), 0.0
    has_v = float(np.asarray(pop.v2 @ c.omega).max()) > 0
    has_a = float(np.abs(np.asarray(pop.a)).max()) > 0
    rank = float(c.psi_n) * has_v + 1.0 * has_a
    return float(diag.ravel()[0]), max(0.0, 1.0 - rank / float(c.psi_p))


def _support(lam, dens, rel):
    """Intervals where λρ(λ) exceeds ``rel`` × its maximum (grid resolution)."""
    y = lam * dens
    on = y > rel * y.max()
    edges, i = [], 0
    while i < lam.size:
        if on[i]:
            j = i
            while j + 1 < lam.size and on[j + 1]:
                j += 1
            edges.append((lam[max(i - 1, 0)] if i > 0 else lam[0], lam[min(j + 1, lam.size - 1)]))
            i = j + 1
        else:
            i += 1
    return np.asarray(edges, dtype=np.float64).reshape(-1, 2)


@float64
def spectral_density(mixture: GaussianMixture, model: RFModel, lam_grid, *, weights=None,
                     quad: NeuronPopulation | None = None, centroids: str = "auto", d: int | None = None,
                     eta_rel: float = 1e-8, tol: float = 1e-10, support_rel: float = 1e-6,
                     check: bool = True) -> SpectrumResult:
    """Density of U on ``lam_grid`` (positive, increasing; use a log grid) at z = λ(1 + i·eta_rel).

    Solves :func:`resolvent` on the whole grid at once, returns a :class:`SpectrumResult`. With ``d`` the
    finite-rank outliers are located (:func:`outliers`). Raises :class:`SpectrumConvergenceError` if a
    point's residual exceeds ``tol`` or Im g < 0 (``check=False`` returns the result with
    ``converged=False`` instead).
    """
    lam = np.asarray(lam_grid, dtype=np.float64)
    if lam.ndim != 1 or lam.size < 2 or np.any(lam <= 0) or np.any(np.diff(lam) <= 0) \
            or not np.all(np.isfinite(lam)):
        raise ValueError("lam_grid must be a finite, positive, strictly increasing 1-d array of ≥ 2 points")
    if not 0 < eta_rel < 1:
        raise ValueError(f"eta_rel must be in (0, 1), got {eta_rel}")
    pop = neuron_population(mixture, model, centroids=centroids) if quad is None else quad
    c = _constants(mixture, model, pop, weights)
    st = _solve_many(jnp.asarray(lam * (1 + 1j * eta_rel)), c, 40, 1e-13, 40, lam.shape)
    g = np.asarray(st.g)
    res = np.asarray(st.residual)
    loc, mass = _atom(pop, c)
    # Next to the atom the unknowns diverge like 1/|z − s̄²| (theory_notes/03 §6) and the continuation can
    # end on a wrong branch: points within 1e-3 (relative) of s̄², and failed points within 1e-2, are
    # excluded from the check and interpolated from their neighbours below.
    bad = ~np.isfinite(res) | (res > tol) | (g.imag < -1e-12 * np.abs(g))
    near = np.zeros(lam.shape, bool)
    if mass > 0:
        dist = np.abs(lam - loc) / loc
        near = (dist < 1e-3) | (bad & (dist < 1e-2))
    bad = bad & ~near
    converged = not bool(bad.any())
    if check and not converged:
        score = np.where(bad, np.where(np.isfinite(res), res, np.inf), -1.0)
        worst = int(np.argmax(score))
        raise SpectrumConvergenceError(
            f"{int(bad.sum())} of {lam.size} points did not converge; worst residual {res[worst]:.3g} at "
            f"λ = {lam[worst]:.6g} (Im g = {g.imag[worst]:.3g})")
    dens = np.clip(g.imag, 0.0, None) / np.pi
    cls = np.clip(np.asarray(st.class_trace).imag, 0.0, None) / (np.pi * lam[:, None])
    smp = np.asarray(st.sample_measure).imag / np.pi
    if near.any() and not near.all():
        far = ~near
        dens[near] = np.interp(lam[near], lam[far], dens[far])
        for arr in (cls, smp):
            for k in range(arr.shape[1]):
                arr[near, k] = np.interp(lam[near], lam[far], arr[far, k])
    if mass > 0:  # the atom's Lorentzian tail (width η) is not continuous density: remove it analytically
        lor = mass * (eta_rel * lam) / np.pi / ((lam - loc) ** 2 + (eta_rel * lam) ** 2)
        dens = np.clip(dens - lor, 0.0, None)
        # class c owns the fraction (ω_c s²_c + e_c(s²_c + v²_c))/s̄² of the atom (its share of U there)
        share = np.asarray(pop.s2 * (c.omega + c.e)[None, :] + pop.v2 * c.e[None, :])[0] / loc
        cls = np.clip(cls - (lor * loc / lam)[:, None] * share[None, :], 0.0, None)  # Im[Tr U_c Q]/(πλ)
    cont = float(np.trapezoid(dens * lam, np.log(lam)))
    p = None if d is None else int(round(float(model.psi_p) * d))
    edges = _support(lam, dens, support_rel)
    out = np.zeros(0)
    if d is not None:
        out = outliers(mixture, model, d, quad=pop, weights=weights, bulk_top=float(edges[-1, 1])
                       if edges.size else float(lam[-1]))
    return SpectrumResult(lam=lam, density=dens, class_density=cls, sample_density=smp, atom_location=loc,
                          atom_mass=mass, continuous_mass=cont, edges=edges, outliers=out, residual=res,
                          iterations=np.asarray(st.iterations), g=g, converged=converged, eta_rel=eta_rel, p=p)


# --------------------------------------------------------------------------------------- outliers
def _real_states(lam, c):
    return _solve_many(jnp.asarray(np.asarray(lam, np.float64) + 0j), c, 40, 1e-13, 40, np.shape(lam))


@float64
def outliers(mixture: GaussianMixture, model: RFModel, d: int, *, quad: NeuronPopulation | None = None,
             weights=None, centroids: str = "auto", bulk_top: float | None = None) -> np.ndarray:
    """Finite-rank outliers of U above the bulk at dimension ``d`` (theory_notes/03_spectrum.md §6; APPROX).

    * Mean-feature spikes (strong centroids, or any activation with E σ ≠ 0): the rank-K term
      Σ_c ω_c μ0_c μ0_cᵀ gives λ solving λ = eig_k( p diag√ω E_i[μ0_i μ0_iᵀ (−λ/D_i(λ))] diag√ω ).
    * Weak centroids (one population node, M ≠ 0): the class means b_c = a_c e^{-t} W̃ μ_c give λ with
      det( I_K + e^{-2t} diag√ω ((d M) ∘ R(λ)) diag√ω ) = 0, R from the equations at real λ > bulk edge.

    Returns the sorted outlier locations (those above ``bulk_top``, default the top of the support).
    """
    if not (isinstance(d, (int, np.integer)) and d > 0):
        raise ValueError(f"d must be a positive integer, got {d!r}")
    pop = neuron_population(mixture, model, centroids=centroids) if quad is None else quad
    c = _constants(mixture, model, pop, weights)
    p = float(model.psi_p) * d
    if bulk_top is None:
        lam = np.geomspace(1e-6, 10 * float(_scale(c)), 400)
        dens = np.asarray(_solve_many(jnp.asarray(lam * (1 + 1e-8j)), c, 40, 1e-13, 40, lam.shape).g).imag
        bulk_top = float(_support(lam, np.clip(dens, 0, None), 1e-6)[-1, 1])
    sw = np.sqrt(np.asarray(c.omega))
    found = []
    # (a) mean-feature spikes, fixed point in λ (−λ/D_i → 1 far above the bulk)
    mu0, wq = np.asarray(pop.mu0), np.asarray(pop.weights)
    s0 = p * sw[:, None] * ((mu0 * wq[:, None]).T @ mu0) * sw[None, :]
    nu = np.linalg.eigvalsh(s0)
    cand = nu[nu > 1.5 * bulk_top]
    for k in range(cand.size):
        lam_k = float(cand[-1 - k])
        for _ in range(30):
            st = _real_states(np.array([lam_k]), c)
            dn = np.asarray(node_denominators_batch(st, c))[0].real  # (Q,)
            s = p * sw[:, None] * ((mu0 * (wq * (-lam_k / dn))[:, None]).T @ mu0) * sw[None, :]
            new = float(np.linalg.eigvalsh(s)[-1 - k])
            if abs(new - lam_k) < 1e-12 * lam_k:
                break
            lam_k = new
        found.append(lam_k)
    # (b) weak-centroid outliers from the secular determinant
    gram = np.asarray(mixture.centroid_gram)
    if np.asarray(pop.weights).size == 1 and np.abs(gram).max() > 0:
        e2t = float(np.exp(-2 * float(model.t)))
        m_abs = d * gram

        def det(lams):
            r = np.asarray(_real_states(lams, c).R).real
            mat = np.eye(gram.shape[0]) + e2t * sw[:, None] * (m_abs * r) * sw[None, :]
            return np.linalg.det(mat)

        top = 10 * (bulk_top + e2t * float(np.max(np.abs(np.linalg.eigvalsh(m_abs)))) * float(np.abs(pop.a).max() ** 2)
                    * float(c.psi_p) + 1.0)
        grid = np.geomspace(bulk_top * (1 + 1e-4), top, 300)
        f = det(grid)
        lo, hi = grid[:-1][np.sign(f[:-1]) != np.sign(f[1:])], grid[1:][np.sign(f[:-1]) != np.sign(f[1:])]
        if lo.size:
            flo = det(lo)
            for _ in range(50):  # vectorised bisection in log λ
                mid = np.sqrt(lo * hi)
                fm = det(mid)
                left = np.sign(fm) == np.sign(flo)
                lo, flo, hi = np.where(left, mid, lo), np.where(left, fm, flo), np.where(left, hi, mid)
            found.extend(np.sqrt(lo * hi).tolist())
    return np.sort(np.asarray(found, dtype=np.float64))


def node_denominators_batch(states: ResolventState, c: Constants):
    return jax.vmap(lambda s: node_denominators(s, c))(states)


# --------------------------------------------------------------------------------------- finite-d comparison
def _strip(eigs, result: SpectrumResult, n_outliers):
    """Sorted eigenvalues with the atom (the round(mass·p) nearest to its location) and outliers removed."""
    ev = np.sort(np.asarray(eigs, dtype=np.float64).ravel())
    if ev.size < 2 or not np.all(np.isfinite(ev)):
        raise ValueError("eigs must be a finite array of at least 2 eigenvalues")
    n_out = result.outliers.size if n_outliers is None else int(n_outliers)
    if n_out:
        ev = ev[:-n_out]
    n_atom = int(round(result.atom_mass * (ev.size + n_out)))
    if n_atom:
        keep = np.ones(ev.size, bool)
        keep[np.argsort(np.abs(ev - result.atom_location), kind="stable")[:n_atom]] = False
        ev = ev[keep]
    return ev


def _theory_cdf(result: SpectrumResult):
    """CDF of the continuous part on the grid, normalised to 1 (trapezoid in log λ)."""
    y = result.density * result.lam
    x = np.log(result.lam)
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (y[1:] + y[:-1]) * np.diff(x))])
    return cdf / cdf[-1]


def spectral_distance(eigs, result: SpectrumResult, kind: str = "ks", *, n_outliers: int | None = None) -> float:
    """Distance between the empirical spectrum ``eigs`` and the theory, atom and outliers removed.

    The atom (mass ``result.atom_mass`` at ``result.atom_location``) is removed analytically: its
    round(mass·p) nearest eigenvalues are dropped and the theory CDF is the continuous part renormalised;
    the ``n_outliers`` largest eigenvalues (default ``result.outliers.size``) are dropped too.

    * ``kind="ks"``: sup_λ |F_emp − F_th| (Kolmogorov–Smirnov);
    * ``kind="w1"``: ∫ |F_emp − F_th| d log10 λ, the Wasserstein-1 distance of the log10-eigenvalue
      distributions (the spectrum spans decades, so the linear-λ W1 would only see the top bulk).
    """
    if kind not in ("ks", "w1"):
        raise ValueError(f"kind must be 'ks' or 'w1', got {kind!r}")
    ev = _strip(eigs, result, n_outliers)
    cdf = _theory_cdf(result)
    if kind == "ks":
        f = np.interp(ev, result.lam, cdf)
        m = ev.size
        k = np.arange(1, m + 1)
        return float(max(np.max(np.abs(f - k / m)), np.max(np.abs(f - (k - 1) / m))))
    lo = min(result.lam[0], ev[0])
    hi = max(result.lam[-1], ev[-1])
    x = np.geomspace(lo, hi, 20000)
    f_th = np.interp(x, result.lam, cdf)
    f_emp = np.searchsorted(ev, x, side="right") / ev.size
    return float(np.trapezoid(np.abs(f_emp - f_th), np.log10(x)))


def edges_from_eigs(eigs, *, theory_edges=None, atom_location: float | None = None, atom_count: int = 0,
                    n_outliers: int = 0, min_gap: float = 0.03, min_count: int = 5) -> np.ndarray:
    """Bulk intervals (B, 2) of a finite-d spectrum, after removing the ``n_outliers`` largest eigenvalues
    and the ``atom_count`` eigenvalues nearest ``atom_location``.

    With ``theory_edges`` (B, 2) each eigenvalue is assigned to the nearest theory interval in log λ and
    the result is the (min, max) of each group (robust at the sparse square-root edges). Without it, the
    sorted eigenvalues are split where consecutive log10 eigenvalues differ by more than ``min_gap`` and
    groups with fewer than ``min_count`` members are dropped.
    """
    ev = np.sort(np.asarray(eigs, dtype=np.float64).ravel())
    if n_outliers:
        ev = ev[:-int(n_outliers)]
    if atom_count:
        keep = np.ones(ev.size, bool)
        keep[np.argsort(np.abs(ev - atom_location), kind="stable")[:atom_count]] = False
        ev = ev[keep]
    ev = ev[ev > 0]
    if ev.size == 0:
        return np.zeros((0, 2))
    x = np.log(ev)
    if theory_edges is not None:
        te = np.log(np.asarray(theory_edges, dtype=np.float64).reshape(-1, 2))
        dist = np.maximum(te[None, :, 0] - x[:, None], 0) + np.maximum(x[:, None] - te[None, :, 1], 0)
        lab = np.argmin(dist, axis=1)
        return np.asarray([(ev[lab == b].min(), ev[lab == b].max()) if np.any(lab == b) else (np.nan, np.nan)
                           for b in range(te.shape[0])]).reshape(-1, 2)
    cut = np.nonzero(np.diff(x / np.log(10)) > min_gap)[0]
    groups = np.split(ev, cut + 1)
    return np.asarray([(g[0], g[-1]) for g in groups if g.size >= min_count]).reshape(-1, 2)
