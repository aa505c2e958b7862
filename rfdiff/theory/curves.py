"""High-dimensional per-class learning curves (d, p, n → ∞ at fixed ψ_p, ψ_n): ridge-time theory.

Gradient flow weights eigen-direction λ of U by f(λ) = (1 − e^{−τλ})/λ; the exact asymptotic curves need
two-resolvent (z ≠ z') equivalents, derived in ``theory_notes/09_gradient_flow.md`` and computed by
:mod:`rfdiff.theory.flow` (``theory_curves(..., clock="flow")``). This module's own clock is the ridge-time proxy
f(λ) → 1/(λ + μ), μ = 1/τ, whose per-class losses are *equal-point* resolvent quantities at the real point
z = −μ < 0 (``theory_notes/04_dynamics.md`` §3)::

    L_c^X(μ) = 1 + Q2 − 2 Q1,     Q1 = Δ Σ_c' π_c' R_cc'(−μ),
    Q2 = −∂_ε [ Δ πᵀ R(−μ; U + ε U_c^X) π ]_{ε=0},

with R_cc'(z) = (1/d) Tr W̃ᵀ D_c (U − z)⁻¹ D_c' W̃ from the deterministic equivalent of U (the K-class
Gaussian-equivalent model, neurons averaged over their centroid shifts m ~ N(0, e^{−2t} M) on scrambled
Sobol nodes; equations (4.2) of the notes). The ε-derivative is taken by the implicit-function
theorem on the fixed point, so it is exact for the equations. The mean-feature and centroid outliers (rank K)
are not included. The proxy's clock offset against true gradient flow is measured at finite d (notes §3.3).

Everything is real and jittable: :func:`theory_curves_core` is a pure function of arrays (vmap it over grids);
:func:`theory_curves` validates, runs it in float64 and raises if the fixed point did not converge.

Example::

    >>> from rfdiff import GaussianMixture, RFModel
    >>> mix = GaussianMixture.create([0.5, 0.5], [4.0, 1.0])
    >>> out = theory_curves(mix, RFModel(4.0, 2.0, 0.01, "tanh"), [1e-2, 1.0, 1e2, 1e4])
    >>> out["eps_test"].shape, bool(out["eps_train"][0, -1] < 0)
    ((2, 4), True)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import ConvergenceError
from ..precision import float64
from . import equations as _eq
from .equations import constants, fixed_point_map, neuron_population, outputs, solve_real

__all__ = ["theory_curves", "default_clock", "theory_curves_core", "neuron_population", "spectral_masses_core",
           "theory_spectral_masses"]

_NEWTON = 8  # at most this many Newton steps per μ (warm-started from the previous, larger μ)
_FP = 25  # damped fixed-point steps before Newton where the start is far: first μ, jump to μ = 0, coarse τ steps
_NEAR = 1.5  # a μ within this factor of the previous one starts Newton directly from its solution


def theory_curves_core(proportions, variances, gram, psi_p, psi_n, t, taus, *, activation: str,
                       n_quad: int = 256, coef_nodes: int = 128, shifts=None, pop=None, loss_weights=None):
    """Pure, jittable core: per-class losses at μ = 1/τ for ``taus`` (T,) plus the μ = 0 asymptote.

    The equations are those of the spectrum solver (:func:`rfdiff.theory.equations.solve_real`, one covariance
    level) evaluated at the real point z = −μ, where they are real: chord/Newton steps from a cubic prediction
    out of the two previous (larger) μ's solutions (:func:`_predict`), after damped fixed-point steps instead at
    the first μ, at μ = 0 and after steps in μ above a factor 1.5. ``pop``: a prebuilt :class:`~rfdiff.theory.equations.NeuronPopulation` of (``variances``, ``gram``,
    ``t``) — it depends on nothing else, so a grid over ψ_p, ψ_n or π builds it once and passes it
    here (``n_quad``, ``coef_nodes``, ``shifts`` are then unused); built here from ``shifts`` or Sobol nodes
    otherwise. Returns a dict: ``loss_train``, ``loss_test``, ``eps_train``, ``eps_test``
    (K, T), ``eps_train_inf``, ``eps_test_inf`` (K,), ``signal`` (K, T) = Q1 = Δ Σ_c' π_c' R_cc'(−1/τ),
    ``residual`` (max relative fixed-point residual, scalar). ``loss_weights`` w (K,), normalised
    Σ_c π_c w_c = 1 (None: all 1): the class-weighted DSM loss trains with ω_c = π_c w_c in U and V while the
    sample counts stay π_c n, so ω replaces π in the training weights, Q1 and Q2 (``theory_notes/10_reweighting.md``).
    """
    K = variances.shape[0]
    if pop is None:
        pop = neuron_population(activation, variances, gram, t, n_quad=n_quad, coef_nodes=coef_nodes,
                                shifts=shifts)
    dlt = -jnp.expm1(-2.0 * t)
    cdat = jnp.exp(-2.0 * t) * variances
    f = proportions
    om = f if loss_weights is None else f * loss_weights  # ω_c = π_c w_c: the training (and V) weights
    theta0 = jnp.concatenate([om, jnp.zeros(K)])
    mus = jnp.concatenate([1.0 / jnp.asarray(taus), jnp.zeros(1)])  # decreasing μ, then μ = 0 (τ = ∞)

    def consts_of(th):
        return constants(pop, f, variances, psi_p, psi_n, t, omega=th[:K], e=th[K:])

    def r_of(y, th, mu):
        return outputs(y, -mu, consts_of(th))[3]  # R (K, K)

    def solve(carry, mu_nfp):
        hist, x = carry  # hist: the last two solutions as (u = log μ, x, dx/du), oldest first, and their validity
        mu, nfp = mu_nfp
        x = jnp.where(nfp == 0, _predict(hist, jnp.log(jnp.where(mu > 0, mu, 1.0)), x), x)
        x = jax.lax.fori_loop(0, nfp, lambda _, y: 0.5 * y + 0.5 * fixed_point_map(y, -mu, consts_of(theta0)), x)
        x, res, dx, dx_dmu = solve_real(x, mu, consts_of, theta0, n_newton=_NEWTON)
        R = r_of(x, theta0, mu)
        q1 = dlt * R @ om  # (K,)

        def dquad(j):
            tang = jax.nn.one_hot(j, 2 * K, dtype=x.dtype)
            _, dR = jax.jvp(lambda y, th: r_of(y, th, mu), (x, theta0), (dx[:, j], tang))
            return -dlt * om @ dR @ om

        q2 = jax.vmap(dquad)(jnp.arange(2 * K))  # (2K,): train ω_c then test e_c
        loss = 1.0 + q2 - 2.0 * jnp.concatenate([q1, q1])
        # a far step (damped start) begins a new history: the solution before it does not predict
        (u2, x2, d2, ok2), (u1, x1, d1, ok1) = hist
        new = (jnp.log(jnp.where(mu > 0, mu, 1.0)), x, mu * dx_dmu, jnp.array(True))
        hist = ((u1, x1, d1, ok1 & (nfp == 0)), new)
        return (hist, x), (loss, res, q1)

    # Newton alone diverges from 0 when the first μ is O(1) (τ_min ~ 1), across a large last jump to μ = 0
    # (τ_max ~ 10) and across coarse τ steps (factor 10); damped fixed-point steps there reach its basin. On a
    # fine grid (a phase diagram's 64 τ over 9 decades: factor 1.39) Newton from the previous solution converges
    # alone, and the per-μ warm-up it skips changed no result beyond 1e-12 (tests/theory/test_curves.py).
    near = mus[1:-1] >= mus[:-2] / _NEAR  # μ decreasing; the last entry is μ = 0: always far
    n_fp = jnp.concatenate([jnp.full(1, _FP), jnp.where(near, 0, _FP), jnp.full(1, _FP)]).astype(jnp.int32)
    x0 = jnp.zeros(K + K * K)
    empty = (jnp.zeros(()), x0, x0, jnp.array(False))
    _, (loss, res, q1) = jax.lax.scan(solve, ((empty, empty), x0), (mus, n_fp))  # loss (T+1, 2K)
    gam2 = cdat + dlt
    S = dlt / gam2
    eps = (loss.T - (1.0 - jnp.concatenate([S, S]))[:, None]) / jnp.concatenate([S, S])[:, None]
    return {"loss_train": loss.T[:K, :-1], "loss_test": loss.T[K:, :-1], "eps_train": eps[:K, :-1],
            "eps_test": eps[K:, :-1], "eps_train_inf": eps[:K, -1], "eps_test_inf": eps[K:, -1],
            "signal": q1.T[:, :-1], "residual": jnp.max(res)}


def _predict(hist, u, x):
    """Newton's start at u = log μ from the last two solutions (u_j, x_j, dx/du_j) of the scan in μ: the cubic
    Hermite extrapolant through both (error O(Δu⁴)), the tangent line from the last one when only it is valid
    (O(Δu²)), ``x`` itself when neither is. Measured on the 120-τ grid of examples/dynamics_two_class.toml with
    ||μ||²/d = 16: the start residual is ~1e-3 from the previous solution (3–4 Newton steps to 1e-14), ~1e-4
    from the tangent line (2–3) and ~1e-6 from the cubic (2); tests/theory/test_curves.py checks the orders."""
    (u2, x2, d2, ok2), (u1, x1, d1, ok1) = hist
    line = x1 + (u - u1) * d1
    h = jnp.where(ok2, u1 - u2, 1.0)
    s = (u - u2) / h  # Hermite basis on [u2, u1] evaluated outside it (s > 1)
    h00, h10, h01, h11 = 2 * s**3 - 3 * s**2 + 1, s**3 - 2 * s**2 + s, -2 * s**3 + 3 * s**2, s**3 - s**2
    cubic = h00 * x2 + h10 * h * d2 + h01 * x1 + h11 * h * d1
    return jnp.where(ok1, jnp.where(ok2, cubic, line), x)


@float64
def theory_curves(mixture, model, taus, *, n_quad: int | None = None, coef_nodes: int = 128, tol: float = 1e-8,
                  shifts=None, loss_weights=None, clock=None, contour_order: int = 8):
    """Asymptotic per-class curves of ``mixture`` under ``model`` at ``taus`` (increasing, > 0).

    ``clock``: ``"flow"`` (exact gradient flow, f(λ) = (1 − e^{−τλ})/λ), ``("gd", lr)`` (full-batch GD with
    step lr in τ units, τ = s·lr), both by contour integrals of one- and two-point equivalents
    (:mod:`rfdiff.theory.flow`, ``theory_notes/09_gradient_flow.md``; ``contour_order`` Gauss–Legendre nodes
    per panel), or ``"ridge"`` (the ridge-time proxy μ = 1/τ of this module: equal-point quantities only, the
    clock of the phase diagrams, windows and reweighting; its outputs add ``signal``, ``loss_*``). ``None``
    (default): :func:`default_clock`, i.e. ``"flow"``, or ``"ridge"`` with ``loss_weights`` (the flow clock does
    not take a weighted loss yet). The τ → ∞ asymptotes ``eps_*_inf`` are the same on every clock.

    ``n_quad`` (shift nodes) defaults to 1 when the centroid Gram is zero (no shifts) and 1024 otherwise. Raises
    :class:`rfdiff.errors.ConvergenceError` (residual and τ range) if the fixed point did not converge to
    ``tol``; ``ValueError`` for bad input. ``shifts`` (N, K): use this explicit
    neuron population (e.g. the realised e^{−t} W̃μ_c of a finite problem) instead of the Sobol nodes. Classes
    must be isotropic (one covariance level). ``loss_weights`` (K,) positive: per-class DSM loss weights,
    rescaled so Σ_c π_c w_c = 1 (:func:`rfdiff.theory.loss_weights.normalise_loss_weights`; ridge clock only). See
    :func:`theory_curves_core`.
    """
    taus = np.asarray(taus, dtype=np.float64)
    if taus.ndim != 1 or np.any(taus <= 0) or np.any(np.diff(taus) <= 0):
        raise ValueError("taus must be a 1-d increasing array of positive times")
    if not isinstance(model.activation, str):
        raise ValueError("theory_curves needs a named activation (model.activation)")
    props = np.asarray(mixture.proportions, dtype=np.float64)
    if np.any(props <= 0):
        raise ValueError(f"every class needs a positive proportion, got {props}")
    if not np.allclose(np.asarray(mixture.levels), 1.0):
        raise ValueError("theory_curves needs isotropic classes (mixture.levels all 1); the per-class "
                         "normalisation S_c = Δ/Γ_c² assumes Cov_c = σ_c² I")
    gram = jnp.asarray(mixture.centroid_gram, jnp.float64)
    if shifts is not None:
        shifts = jnp.asarray(shifts, jnp.float64)
        if shifts.ndim != 2 or shifts.shape[1] != props.size or not bool(jnp.all(jnp.isfinite(shifts))):
            raise ValueError(f"shifts must be a finite (N, {props.size}) array, got shape {shifts.shape}")
    if n_quad is None:
        n_quad = 1 if float(jnp.max(jnp.abs(gram))) == 0.0 else 1024
    if loss_weights is not None:
        from .loss_weights import normalise_loss_weights

        loss_weights = jnp.asarray(normalise_loss_weights(loss_weights, props))
    kind, step = _parse_clock(default_clock(loss_weights) if clock is None else clock)
    if kind != "ridge" and loss_weights is not None:
        raise ValueError(f"loss_weights: only the ridge clock supports a weighted loss so far, got clock={clock!r}")
    if kind != "ridge":
        from .flow import flow_curves

        return flow_curves(mixture, model, taus, kind=kind, step=step, n_quad=n_quad, coef_nodes=coef_nodes,
                           tol=tol, shifts=shifts, order=contour_order)
    out = _core_jit(jnp.asarray(props), jnp.asarray(mixture.class_variance, jnp.float64), gram,
                    jnp.float64(model.psi_p), jnp.float64(model.psi_n), jnp.float64(model.t), jnp.asarray(taus),
                    activation=model.activation, n_quad=n_quad, coef_nodes=coef_nodes, shifts=shifts,
                    loss_weights=loss_weights)
    res = float(out["residual"])
    if not np.isfinite(res) or res > tol:
        raise ConvergenceError(f"theory fixed point did not converge (tol {tol:.1g})", residual=res,
                               point={"tau_min": float(taus[0]), "tau_max": float(taus[-1]),
                                      "n_quad": int(n_quad)})
    return {k: np.asarray(v) for k, v in out.items()}


def default_clock(loss_weights=None) -> str:
    """The clock :func:`theory_curves` uses when none is given: ``"flow"`` (what a GD simulation follows), or
    ``"ridge"`` when ``loss_weights`` is given (only the ridge clock supports a weighted loss so far). The one
    place this rule lives; the CLI uses it too.

    >>> default_clock(), default_clock([4.0, 1.0])
    ('flow', 'ridge')
    """
    return "flow" if loss_weights is None else "ridge"


def _parse_clock(clock):
    """'ridge' | 'flow' | ('gd', lr) → (kind, step); a one-line error naming ``clock`` otherwise."""
    if clock in ("ridge", "flow"):
        return clock, None
    if isinstance(clock, tuple) and len(clock) == 2 and clock[0] == "gd":
        lr = float(clock[1])
        if not (np.isfinite(lr) and lr > 0):
            raise ValueError(f"clock ('gd', lr) needs a positive finite lr, got {clock[1]!r}")
        return "gd", lr
    raise ValueError(f"clock must be 'ridge', 'flow' or ('gd', lr), got {clock!r}")


_core_jit = jax.jit(theory_curves_core, static_argnames=("activation", "n_quad", "coef_nodes"))


# spectral grid of the loss masses, relative to equations.scale: 11 decades, 440 nodes (2.1 % apart in λ). The
# top is 10·scale because scale is not always above the V-weighted bulk (σ² = (4, 1), ψ_p = 4, ψ_n = 1: finite-d
# eigenvalues up to 8.7 against scale 3.6, and the truncated grid lost 27 % of the first moment that sets τ_gen);
# the mass and first-moment checks below say when the spectrum reaches outside the grid
SPECTRAL_GRID = np.geomspace(1e-10, 10.0, 440)


def spectral_masses_core(proportions, variances, gram, psi_p, psi_n, t, *, pop, rel_grid=SPECTRAL_GRID,
                         eta_rel: float = 1e-8, tol: float = 1e-10):
    """Pure, jittable: the per-class loss masses of the d → ∞ spectrum (``theory_notes/11_spectral_times.md``).

    The class-c signal Q1_c(z) = (1/d) Tr V_cᵀ(U − z)⁻¹V = Δ Σ_c' π_c' R_cc'(z) is the Stieltjes transform of the
    measure ν_c(dλ) = Σ_k b_c,k δ(λ − λ_k) of the finite-d closed form; its density is Im Q1_c(λ + i0)/π
    (z = λ(1 + i·eta_rel), the spectrum's complex solve). Loss mass per grid node in ε units:
    m_c,j = ν_c(λ_j) Δlog λ_j / S_c (∫ν/λ dλ = ∫ν d log λ, trapezoid weights). Returns a dict: ``lam`` (N,)
    = scale·``rel_grid``, ``mass`` (K, N), ``mass_error`` (K,) = Σ_j m_c,j / (Q1_c(0)/S_c) − 1 (grid
    quadrature and mass outside the grid; Q1_c(0) from a solve at z = i·λ_0·1e-3), ``moment_error`` (K,) the same
    for the first moment Σ_j λ_j m_c,j against ∫ν_c/S_c = Y Im Q1_c(iY)/S_c (1 + O(λ²/Y²)), Y = 1e4·λ_N (it sets
    τ^spec_gen), ``bad`` (number of nodes whose residual exceeds ``tol`` or left the physical branch; zero mass).
    """
    c = constants(pop, proportions, variances, psi_p, psi_n, t)
    lam = _eq.scale(c) * jnp.asarray(rel_grid)
    big = 1e4 * lam[-1]
    cx = jnp.complex128  # explicit casts: the package runs under jax_numpy_dtype_promotion="strict"
    iy = jnp.asarray(1j, cx)
    z = jnp.concatenate([lam.astype(cx) * jnp.asarray(1.0 + 1j * eta_rel, cx),
                         (iy * (1e-3 * lam[0]).astype(cx))[None], (iy * big.astype(cx))[None]])
    st = _eq._solve_impl(z, c, (_eq.N_LEVELS, _eq.N_NEWTON, _eq.N_FINAL))
    dlt = -jnp.expm1(-2.0 * t)
    S = dlt / (jnp.exp(-2.0 * t) * variances + dlt)
    q1 = dlt.astype(cx) * (st.R @ proportions.astype(cx))  # (N + 2, K)
    ok = (st.residual[:-2] <= tol) & st.branch[:-2]
    nu = jnp.where(ok[:, None], jnp.clip(q1[:-2].imag / jnp.pi, 0.0, None), 0.0)  # (N, K) density of ν_c
    ll = jnp.log(lam)
    dlog = jnp.concatenate([ll[1:2] - ll[:1], ll[2:] - ll[:-2], ll[-1:] - ll[-2:-1]]) / 2.0
    mass = (nu * dlog[:, None]).T / S[:, None]
    return {"lam": lam, "mass": mass, "mass_error": jnp.sum(mass, -1) / (q1[-2].real / S) - 1.0,
            "moment_error": (mass @ lam) / (big * q1[-1].imag / S) - 1.0,
            "bad": jnp.sum(~ok) + jnp.sum(st.residual[-2:] > tol)}


_spectral_jit = jax.jit(spectral_masses_core, static_argnames=("eta_rel", "tol"))


@float64
def theory_spectral_masses(mixture, model, *, n_quad: int | None = None, shifts=None, mass_tol: float = 0.02):
    """d → ∞ per-class loss masses of ``mixture`` under ``model``: ``(lam (N,), mass (K, N))`` in ε units.

    Feed to :func:`rfdiff.theory.timescales.spectral_times`. Raises :class:`rfdiff.errors.ConvergenceError` if a
    grid node did not converge or the masses or their first moments miss more than ``mass_tol`` (relative) of
    their exact values (spectrum outside the grid, or a grid too coarse). ``n_quad``/``shifts`` as in
    :func:`theory_curves`; isotropic classes.
    """
    props = np.asarray(mixture.proportions, dtype=np.float64)
    if np.any(props <= 0):
        raise ValueError(f"every class needs a positive proportion, got {props}")
    if not np.allclose(np.asarray(mixture.levels), 1.0):
        raise ValueError("theory_spectral_masses needs isotropic classes (mixture.levels all 1)")
    if not isinstance(model.activation, str):
        raise ValueError("theory_spectral_masses needs a named activation (model.activation)")
    gram = jnp.asarray(mixture.centroid_gram, jnp.float64)
    if n_quad is None:
        n_quad = 1 if float(jnp.max(jnp.abs(gram))) == 0.0 else 1024
    var = jnp.asarray(mixture.class_variance, jnp.float64)
    pop = neuron_population(model.activation, var, gram, jnp.float64(model.t), n_quad=n_quad,
                            shifts=None if shifts is None else jnp.asarray(shifts, jnp.float64))
    out = _spectral_jit(jnp.asarray(props), var, gram, jnp.float64(model.psi_p), jnp.float64(model.psi_n),
                        jnp.float64(model.t), pop=pop)
    err = np.concatenate([np.asarray(out["mass_error"]), np.asarray(out["moment_error"])])
    if int(out["bad"]) > 0 or not np.all(np.abs(err) <= mass_tol):
        raise ConvergenceError(f"spectral masses: {int(out['bad'])} grid node(s) did not converge, mass and moment "
                               f"errors {np.array2string(err, precision=3)} (tol {mass_tol:g})",
                               residual=float(np.max(np.abs(err))), point={"n_quad": int(n_quad)})
    return np.asarray(out["lam"]), np.asarray(out["mass"])
