"""Spectrum of the feature covariance U = (1/n) Σ_ν E_ξ[φ φᵀ] of the random-features score model.

In the limit d, p, n → ∞ (ψ_p = p/d, ψ_n = n/d) the Stieltjes transform g(z) = (1/p) Tr (U − z)⁻¹ solves
the self-consistent equations of :mod:`rfdiff.theory.equations` (derivation: ``theory_notes/03_spectrum.md``),
for a K-class Gaussian mixture with per-class variances, covariance levels and centroids:

* weak centroids (``||μ_c||² = O(1)``, regime A): neuron-independent coefficients, one population node;
  the centroids only create finite-rank outliers (:func:`outliers`, ``d`` needed);
* strong centroids (``||μ_c||²/d = O(1)``, regime B): the neuron shifts ``m_i ~ N(0, e^{-2t} M)`` are
  averaged on scrambled-Sobol nodes (:func:`neuron_population`), or given explicitly at finite d;
  :func:`centroid_regime` decides between the two from the data (and ``d``).

Entry points: :func:`resolvent` (any complex z, vectorised, NumPy results; the jittable per-point core is
:func:`rfdiff.theory.equations.solve_point`), :func:`spectral_density` (density on a λ grid with per-class parts,
atom, edges, outliers, residuals), :func:`spectral_distance` /
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

from typing import TYPE_CHECKING

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..errors import ConvergenceError, SpectrumConvergenceError
from ..precision import float64
from . import equations as eq
from .equations import Constants, NeuronPopulation, ResolventState, node_denominators, scale, solve_grid
from ..model.rf import RFModel
from ..model.mixture import GaussianMixture

if TYPE_CHECKING:  # annotations only (jaxtyping shapes); no runtime import
    from jaxtyping import ArrayLike, Complex, Float

__all__ = [
    "NeuronPopulation",
    "ResolventState",
    "ConvergenceError",
    "SpectrumConvergenceError",
    "neuron_population",
    "centroid_regime",
    "resolvent",
    "SpectrumResult",
    "spectral_density",
    "outliers",
    "spectral_distance",
    "edges_from_eigs",
]

# default shift nodes with strong centroids: at ||μ||²/d = 16, 256 Sobol nodes give E a² within 1e-4 of
# 1024 nodes, and a 1000-point grid takes ~30 s on the shared 2-core machine (512: ~65 s), notes 03 §4
N_QUAD_SPECTRUM = 256


# --------------------------------------------------------------------------------------- populations
def centroid_regime(mixture: GaussianMixture, d: int | None = None) -> str:
    """``"weak"`` or ``"strong"``: how the centroids enter the spectrum (theory_notes/03_spectrum.md §4.3).

    The neuron shifts have variance e^{-2t} M_cc, M = ||μ||²/d. Regime A (one node, centroids as the rank-K
    spike b_c = a e^{-t} W̃μ_c, outliers from the secular determinant) is exact to first order in M and
    errs by O(M) in the bulk coefficients; regime B (shift population, mean-feature spikes) is needed when
    M = O(1) but its outlier equation misses the spike's coupling to the bulk, an O(1) error at small M
    (measured: ||μ||² = (40, 10), d = 300: A gives outliers 6.27 / 19.39, B one outlier 16.9, the GE
    finite-d matrix 6.2–7.1 / 18.0–18.4). With ``d`` the rule is A iff max eig M ≤ d^{-1/3}
    (||μ||² ≤ d^{2/3}: a crossover between M = O(1/d) and M = O(1), a heuristic checked at that one case);
    without ``d`` it is M = 0 → A, else B (the population average is never worse for the bulk).
    """
    gram = np.asarray(mixture.centroid_gram, dtype=np.float64)
    top = float(np.linalg.eigvalsh(gram).max(initial=0.0)) if gram.size else 0.0
    if top <= 0.0:
        return "weak"
    if d is None:
        return "strong"
    return "weak" if top <= float(d) ** (-1.0 / 3.0) else "strong"


@float64
def neuron_population(mixture: GaussianMixture, model: RFModel, *, n_quad: int | None = None, shifts=None,
                      centroids: str = "auto", d: int | None = None,
                      coef_nodes: int | None = None) -> NeuronPopulation:
    """The neuron population of ``mixture`` under ``model`` (:func:`rfdiff.theory.equations.neuron_population`).

    * ``centroids="weak"`` (or M = 0): one node at m = 0 (regime A, neuron-independent coefficients);
    * ``centroids="strong"``: ``n_quad`` scrambled-Sobol nodes of m ~ N(0, e^{-2t} M) (default
      ``N_QUAD_SPECTRUM`` = 256);
    * ``"auto"``: :func:`centroid_regime` (uses ``d`` when given);
    * ``shifts`` (Q, K): an explicit set ``m_ic = e^{-t} w_i·μ_c/√d`` (finite d), equal weights.

    ``coef_nodes``: order of each coefficient integral (default 128 up to 64 nodes, else 96).
    """
    k = mixture.num_classes
    if centroids not in ("auto", "weak", "strong"):
        raise ValueError(f"centroids must be 'auto', 'weak' or 'strong', got {centroids!r}")
    if shifts is not None:
        m = np.asarray(shifts, dtype=np.float64)
        if m.ndim != 2 or m.shape[1] != k or not np.all(np.isfinite(m)):
            raise ValueError(f"shifts must be a finite (Q, {k}) array, got shape {m.shape}")
        nq = m.shape[0]
    else:
        regime = centroid_regime(mixture, d) if centroids == "auto" else centroids
        if regime == "weak" or not np.any(np.asarray(mixture.centroid_gram)):
            nq = 1
        else:
            nq = N_QUAD_SPECTRUM if n_quad is None else n_quad
            if not (isinstance(nq, (int, np.integer)) and nq >= 1):
                raise ValueError(f"n_quad must be a positive integer, got {nq!r}")
    return eq.neuron_population(model.activation, mixture.class_variance, mixture.centroid_gram, model.t,
                                n_quad=int(nq), coef_nodes=coef_nodes, shifts=shifts)


def _constants(mixture: GaussianMixture, model: RFModel, pop: NeuronPopulation, weights) -> Constants:
    f = jnp.asarray(mixture.proportions, jnp.float64)
    omega = e = None
    if weights is not None:
        omega, e = (jnp.asarray(x, jnp.float64) for x in weights)
        if omega.shape != f.shape or e.shape != f.shape:
            raise ValueError(f"weights must be a pair (ω, e) of shape ({f.shape[0]},) each")
    return eq.constants(pop, f, mixture.variances, model.psi_p, model.psi_n, model.t, levels=mixture.levels,
                        level_weights=mixture.level_weights, omega=omega, e=e)


@float64
def resolvent(z: Complex[ArrayLike, "*n"], mixture: GaussianMixture, model: RFModel, *,
              weights: Float[ArrayLike, "K"] | None = None, quad: NeuronPopulation | None = None,
              tol: float = 1e-12) -> ResolventState:
    """Solve the self-consistent equations at complex ``z`` (Im z > 0, or real z below the spectrum).

    Returns a :class:`ResolventState` with ``g = (1/p) Tr(U − z)⁻¹``, ``delta`` (K,), the class-signal
    matrix ``R`` (K, K) ≈ (1/(dΔ)) Tr V_cᵀ(U − z)⁻¹V_c', the per-class sample measure ``δ_c/(1+δ_c)``,
    the per-class traces ``(1/p) Tr(ω_c U_c (U − z)⁻¹)`` (summing to 1 + z g), the residual and the
    Newton iteration count. ``z`` may have any shape (the solve is vmapped); outputs gain its shape in front.

    ``weights = (ω, e)`` solves for ``U(ω, e) = Σ_c ω_c U_c^tr + Σ_c e_c U_c^pop`` (default ω = π, e = 0);
    ``quad`` is a precomputed :func:`neuron_population` (recomputed here otherwise). The solver continues
    in the imaginary part from far above the spectrum down to ``Im z`` on a fixed schedule, re-solving the
    points whose residual exceeds ``tol`` on a finer one (:func:`rfdiff.theory.equations.solve_grid`). It does
    not raise: check ``residual`` and ``branch`` (``spectral_density`` does).

    Example::

        >>> st = resolvent(-0.1, mix, model)          # real z = −μ: everything real   # doctest: +SKIP
    """
    pop = neuron_population(mixture, model) if quad is None else quad
    c = _constants(mixture, model, pop, weights)
    z = jnp.asarray(z, jnp.complex128)
    return _solve_many(z.reshape(-1), c, z.shape, tol)


def _solve_many(zf, c, shape, tol=1e-12):
    st = solve_grid(zf, c, tol=tol)
    return jax.tree_util.tree_map(lambda a: a.reshape(tuple(shape) + a.shape[1:]), st)


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


_NEAR = 1e-3  # relative distance to the atom inside which grid points are not solved reliably (notes 03 §6)


def _atom(pop: NeuronPopulation, c: Constants):
    """Atom location (the constant part of Λ_i) and mass, when the diagonal part is neuron-independent; ``pop``
    and ``c`` are host (NumPy) copies, fetched once by :func:`spectral_density`.

    With one population node (or a neuron-independent diagonal) U = s̄² I + N, and N lies in the span of
    the d columns of W̃ (present when some a_c ≠ 0) and of the noise vectors ω_ν of the training points of
    every class with ω_c v²_c ≠ 0 (n_c = f_c n of them); the mean-feature direction adds rank 1 (an
    outlier, mass 0 as d → ∞). So rank N / p = (1·[a ≠ 0] + ψ_n Σ_c f_c [ω_c v²_c ≠ 0]) / ψ_p and the
    rest, (1 − rank/p)⁺, sits at s̄² (theory_notes/03_spectrum.md §6). "≠ 0" is decided numerically:

    * a_c: |a_c| > 1e-10 × the coefficient scale (the coefficients are accurate to ~1e-10 relative);
    * v²_c: the class-c noise-vector cluster spans at most [s̄², s̄² + (ω_c/f_c) v²_c (1 + √(ψ_p/ψ_n))²]
      (Marchenko–Pastur edge of (1/n)Σ ω_ν ω_νᵀ); when that width is below 1e-4·s̄² (ten times inside
      the near-atom exclusion ``_NEAR``) or below 1e-20 × scale (v² is a sum of squared residuals, so a
      1e-10 quadrature error shows as 1e-20: linear σ gives v² ~ 1e-26) the cluster cannot be told
      apart from the atom at the solver's resolution and is counted in the atom (e.g. tanh at t = 5,
      v² ~ 1e-13). Linear σ: rank d, atom mass 1 − 1/ψ_p at s̄² = 0.
    """
    diag = np.asarray(pop.s2 @ (c.omega + c.e) + pop.v2 @ c.e)
    if diag.size != 1 and np.ptp(diag) > 1e-12 * max(1.0, np.abs(diag).max()):
        return float(np.average(diag, weights=np.asarray(pop.weights))), 0.0
    loc = float(diag.ravel()[0])
    a2, v2, s2 = (np.asarray(x).max(0) for x in (pop.a**2, pop.v2, pop.s2))  # (K,) worst node
    omega, e, ratio = np.asarray(c.omega), np.asarray(c.e), np.asarray(c.ratio)
    psi_p, psi_n = float(c.psi_p), float(c.psi_n)
    f = np.where(ratio > 0, omega / np.where(ratio > 0, ratio, 1.0), 0.0)  # f_c where ω_c > 0
    coef_scale = float(np.max(a2 * (float(c.delta_t) + np.asarray(c.c2)) + v2 + s2, initial=0.0)) or 1.0
    has_a = bool(np.any((a2 > 1e-20 * coef_scale) & (omega + e > 0)))
    width = ratio * v2 * (1.0 + np.sqrt(psi_p / psi_n)) ** 2
    has_v = width > max(1e-4 * abs(loc), 1e-20 * coef_scale)
    rank = 1.0 * has_a + psi_n * float(np.sum(f * has_v))
    return loc, max(0.0, 1.0 - rank / psi_p)


def _mass_check(lam, dens, loc, mass, cont, near, mass_tol):
    """None if atom + continuous mass = 1 within ``mass_tol``, else a one-line diagnosis of what is missing."""
    total = mass + cont
    if abs(total - 1.0) <= mass_tol:
        return None
    y = lam * dens
    top = y.max(initial=0.0)
    head = (f"mass balance fails: atom {mass:.4g} + continuous mass {cont:.4g} on [{lam[0]:.3g}, {lam[-1]:.3g}] "
            f"= {total:.4g} ≠ 1 (tol {mass_tol:.1g})")
    missing = []
    if top > 0 and y[0] > 1e-3 * top:
        missing.append(f"the density does not vanish at lam_min = {lam[0]:.3g}: extend the grid down")
    if top > 0 and y[-1] > 1e-3 * top:
        missing.append(f"the density does not vanish at lam_max = {lam[-1]:.3g}: extend the grid up")
    if near.any():
        missing.append(f"{int(near.sum())} points within {_NEAR:g} (relative) of the atom at s̄² = {loc:.6g} "
                       "were interpolated: part of the spectrum may sit there unresolved")
    if not missing:
        missing.append("the grid is too coarse for its edges, or the atom mass is wrong")
    return head + "; " + "; ".join(missing)


def _support(lam, dens, rel):
    """Intervals where λρ(λ) exceeds ``rel`` × its maximum (grid resolution): each run of points above the
    threshold, widened by one grid point on each side (clipped to the grid)."""
    y = lam * dens
    on = np.concatenate([[False], y > rel * y.max(), [False]]).astype(np.int8)
    step = np.diff(on)
    first, last = np.nonzero(step == 1)[0], np.nonzero(step == -1)[0] - 1  # run bounds (inclusive)
    lo = lam[np.maximum(first - 1, 0)]
    hi = lam[np.minimum(last + 1, lam.size - 1)]
    return np.stack([lo, hi], axis=1).astype(np.float64).reshape(-1, 2)


@float64
def spectral_density(mixture: GaussianMixture, model: RFModel, lam_grid: Float[ArrayLike, "n"], *,
                     weights: Float[ArrayLike, "K"] | None = None,
                     quad: NeuronPopulation | None = None, centroids: str = "auto", d: int | None = None,
                     n_quad: int | None = None, eta_rel: float = 1e-8, tol: float = 1e-10, support_rel: float = 1e-6,
                     mass_tol: float | None = None, check: bool = True) -> SpectrumResult:
    """Density of U on ``lam_grid`` (positive, increasing; use a log grid) at z = λ(1 + i·eta_rel).

    Solves :func:`resolvent` on the whole grid at once, returns a :class:`SpectrumResult`. With ``d`` the
    finite-rank outliers are located (:func:`outliers`) and ``centroids="auto"`` uses ``d`` to choose the
    regime (:func:`centroid_regime`). The result is checked; :class:`rfdiff.errors.ConvergenceError`
    (``.residual``, ``.point``) is raised if

    * a point's relative residual exceeds ``tol`` (relative to 1 + |x|) or Im g < 0 (point: that λ), or
    * the mass balance fails: atom + continuous mass on the grid (+ outliers, mass 0 as d → ∞) must be 1
      within ``mass_tol`` (point: the grid range; the message says which part is missing: density not
      vanishing at an end of the grid, or unresolved mass next to the atom). The default is
      max(1e-2, h, 2|I_h − I_2h|): h the largest step in log λ, and I_h − I_2h the change of the trapezoid
      sum when every other point is dropped, an estimate of the grid's own quadrature error. That error is
      dominated by the cells next to the atom where the bulk rises steeply: atom + continuous − 1 measured
      0.22 / −0.029 / 0.033 / −0.0097 / 1e-4 for 40 / 100 / 200 / 500 / 1000 points on [1e-3, 30] (two
      classes σ² = (1, 4), ψ_p = 2.5, ψ_n = 1), and 0.035 / 0.012 / 0.0045 / 9e-4 / 2e-4 for 200 / 500 /
      1000 / 2000 / 8000 points on [1e-4, 1e2] (the two-level K = 1 example, whose bulk starts at the atom);
      a missing bulk (0.15 or more) leaves I_h − I_2h small and fails.

    ``check=False`` returns the result with ``converged=False`` instead. ``n_quad``: shift nodes of the
    strong-centroid population (default ``N_QUAD_SPECTRUM``; ignored with ``quad``).
    """
    lam = np.asarray(lam_grid, dtype=np.float64)
    if lam.ndim != 1 or lam.size < 2 or np.any(lam <= 0) or np.any(np.diff(lam) <= 0) \
            or not np.all(np.isfinite(lam)):
        raise ValueError("lam_grid must be a finite, positive, strictly increasing 1-d array of ≥ 2 points")
    if not 0 < eta_rel < 1:
        raise ValueError(f"eta_rel must be in (0, 1), got {eta_rel}")
    auto_tol = mass_tol is None
    if auto_tol:
        mass_tol = max(1e-2, float(np.max(np.diff(np.log(lam)))))  # refined below with the quadrature estimate
    if not mass_tol > 0:
        raise ValueError(f"mass_tol must be positive, got {mass_tol}")
    pop = neuron_population(mixture, model, centroids=centroids, d=d, n_quad=n_quad) if quad is None else quad
    c = _constants(mixture, model, pop, weights)
    st = _solve_many(lam * (1 + 1j * eta_rel), c, lam.shape)
    g = np.asarray(st.g)
    res = np.asarray(st.residual)
    pop_h, c_h = jax.device_get((pop, c))  # one transfer; the checks below are NumPy
    loc, mass = _atom(pop_h, c_h)
    # Next to the atom the unknowns diverge like 1/|z − s̄²| (theory_notes/03 §6) and the continuation can
    # end on a wrong branch: points within _NEAR (relative) of s̄², and failed points within 10·_NEAR, are
    # excluded from the check and interpolated from their neighbours below.
    bad = ~np.isfinite(res) | (res > tol) | (g.imag < -1e-12 * np.abs(g)) | ~np.asarray(st.branch)
    near = np.zeros(lam.shape, bool)
    if mass > 0:
        dist = np.abs(lam - loc) / max(abs(loc), 1e-300)
        near = (dist < _NEAR) | (bad & (dist < 10 * _NEAR))
    bad = bad & ~near
    converged = not bool(bad.any())
    if check and not converged:
        score = np.where(bad, np.where(np.isfinite(res), res, np.inf), -1.0)
        worst = int(np.argmax(score))
        raise ConvergenceError(
            f"{int(bad.sum())} of {lam.size} points of the spectrum did not converge (tol {tol:.1g}; worst "
            f"residual, Im g = {g.imag[worst]:.3g})", residual=float(res[worst]), point=float(lam[worst]))
    dens = np.clip(g.imag, 0.0, None) / np.pi
    cls = np.clip(np.asarray(st.class_trace).imag, 0.0, None) / (np.pi * lam[:, None])
    smp = np.asarray(st.sample_measure).imag / np.pi
    if near.any() and not near.all():
        # Each side of the atom from its own side only: a bulk may start (or end) exactly at s̄² with a jump
        # (the K = 1 two-level case: 0 below, 1.7 above), and interpolating across the jump put a spurious
        # 1.6 % of mass into the cell below the atom on a 1000-point grid. np.interp extends the nearest value.
        far = ~near
        for side in (lam < loc, lam >= loc):
            tgt, src = near & side, far & side
            if not tgt.any():
                continue
            if not src.any():  # nothing resolved on this side: the other side's nearest values
                src = far
            dens[tgt] = np.interp(lam[tgt], lam[src], dens[src])
            for arr in (cls, smp):
                for k in range(arr.shape[1]):
                    arr[tgt, k] = np.interp(lam[tgt], lam[src], arr[src, k])
    if mass > 0:  # the atom's Lorentzian tail (width η) is not continuous density: remove it analytically
        lor = mass * (eta_rel * lam) / np.pi / ((lam - loc) ** 2 + (eta_rel * lam) ** 2)
        dens = np.clip(dens - lor, 0.0, None)
        # class c owns the fraction (ω_c s²_c + e_c(s²_c + v²_c))/s̄² of the atom (its share of U there)
        if loc > 0:
            share = (pop_h.s2 * (c_h.omega + c_h.e)[None, :] + pop_h.v2 * c_h.e[None, :])[0] / loc
            cls = np.clip(cls - (lor * loc / lam)[:, None] * share[None, :], 0.0, None)  # Im[Tr U_c Q]/(πλ)
    cont = float(np.trapezoid(dens * lam, np.log(lam)))
    if auto_tol and lam.size >= 5:  # the grid's own quadrature error: trapezoid on every other point
        half = float(np.trapezoid((dens * lam)[::2], np.log(lam[::2])))
        mass_tol = max(mass_tol, 2.0 * abs(cont - half))
    problem = _mass_check(lam, dens, loc, mass, cont, near, mass_tol)
    if problem is not None:
        converged = False
        if check:
            raise ConvergenceError(problem, residual=abs(mass + cont - 1.0),
                                   point={"lam_min": float(lam[0]), "lam_max": float(lam[-1])})
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
    return _solve_many(jnp.asarray(np.asarray(lam, np.float64) + 0j), c, np.shape(lam))


@float64
def outliers(mixture: GaussianMixture, model: RFModel, d: int, *, quad: NeuronPopulation | None = None,
             weights: Float[ArrayLike, "K"] | None = None, centroids: str = "auto",
             bulk_top: float | None = None) -> Float[np.ndarray, "m"]:
    """Finite-rank outliers of U above the bulk at dimension ``d`` (theory_notes/03_spectrum.md §6; APPROX).

    * Mean-feature spikes (strong centroids, or any activation with E σ ≠ 0): the rank-K term
      Σ_c ω_c μ0_c μ0_cᵀ gives λ solving λ = eig_k( p diag√ω E_i[μ0_i μ0_iᵀ (−λ/D_i(λ))] diag√ω ).
    * Weak centroids (one population node, M ≠ 0): the class means b_c = a_c e^{-t} W̃ μ_c give λ with
      det( I_K + e^{-2t} diag√ω ((d M) ∘ R(λ)) diag√ω ) = 0, R from the equations at real λ > bulk edge.

    Returns the sorted outlier locations (those above ``bulk_top``, default the top of the support).
    """
    if not (isinstance(d, (int, np.integer)) and d > 0):
        raise ValueError(f"d must be a positive integer, got {d!r}")
    pop = neuron_population(mixture, model, centroids=centroids, d=d) if quad is None else quad
    c = _constants(mixture, model, pop, weights)
    p = float(model.psi_p) * d
    if bulk_top is None:
        lam = np.geomspace(1e-6, 10 * float(scale(c)), 400)
        dens = np.asarray(_solve_many(jnp.asarray(lam * (1 + 1e-8j)), c, lam.shape).g).imag
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


def spectral_distance(eigs: Float[ArrayLike, "p"], result: SpectrumResult, kind: str = "ks", *, n_outliers: int | None = None) -> float:
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


def edges_from_eigs(eigs: Float[ArrayLike, "p"], *, theory_edges: Float[ArrayLike, "B 2"] | None = None, atom_location: float | None = None, atom_count: int = 0,
                    n_outliers: int = 0, min_gap: float = 0.03, min_count: int = 5) -> Float[np.ndarray, "B 2"]:
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
