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

from ._config import float64
from ._resolvent import Constants, NeuronPopulation, ResolventState, solve_point
from .activations import class_coefficients
from .features import RFModel
from .mixture import GaussianMixture

__all__ = [
    "NeuronPopulation",
    "ResolventState",
    "SpectrumConvergenceError",
    "neuron_population",
    "resolvent",
]


class SpectrumConvergenceError(RuntimeError):
    """The self-consistent equations did not converge (message names the worst residual and its λ)."""


# --------------------------------------------------------------------------------------- populations
@float64
def neuron_population(mixture: GaussianMixture, model: RFModel, *, n_hermite: int | None = None,
                      shifts=None, centroids: str = "auto", n_nodes: int = 80) -> NeuronPopulation:
    """Per-neuron GE coefficients at the nodes of the shift distribution ``m_i ~ N(0, e^{-2t} M)``.

    * ``centroids="weak"`` (or ``M = 0``): one node at m = 0 (regime A, neuron-independent coefficients);
    * ``centroids="strong"``: tensor Gauss–Hermite rule with ``n_hermite`` nodes per non-zero eigen-direction
      of M (default 24, 12, 8 for rank 1, 2, ≥3), weights summing to 1;
    * ``shifts`` (Q, K): an explicit empirical set ``m_ic = e^{-t} w_i·μ_c/√d`` (finite d), equal weights.

    ``"auto"`` is ``strong`` when M ≠ 0. ``n_nodes`` is the quadrature order of each coefficient integral.
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
    tot = pop.a**2 * (c.delta_t + c.c2 * (c.levels @ c.level_weights)) + pop.v2 + pop.s2
    return (c.psi_p + 1.0) * (pop.weights @ (tot @ (c.omega + c.e))) + 1.0


@float64
def resolvent(z, mixture: GaussianMixture, model: RFModel, *, weights=None, quad: NeuronPopulation | None = None,
              n_levels: int = 40, tol: float = 1e-12, max_iter: int = 40) -> ResolventState:
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


def _solve_many(zf, c, n_levels, tol, max_iter, shape):
    out = _solve_jit(zf, c, n_levels, tol, max_iter)
    return jax.tree_util.tree_map(lambda a: a.reshape(shape + a.shape[1:]), out)


@eqx.filter_jit
def _solve_jit(zf, c, n_levels, tol, max_iter):
    eta0 = 10.0 * (_scale(c) + jnp.abs(zf.real))
    fn = lambda z, e0: solve_point(z, c, eta0=e0, n_levels=n_levels, tol=tol, max_iter=max_iter)  # noqa: E731
    return jax.vmap(fn)(zf, eta0)
