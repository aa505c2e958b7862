"""Class weights of the denoising score-matching loss that equalise the per-class times or open the window.

The class-weighted DSM loss ``L_w(A) = Σ_c π_c w_c L_c(A)`` (normalised ``Σ_c π_c w_c = 1``) trains the RF
readout on ``U_ω = Σ_c ω_c U_c^tr``, ``V_ω = Σ_c ω_c V_c^tr`` with ``ω_c = π_c w_c`` while the sample counts stay
``n_c = π_c n`` (``theory_notes/10_reweighting.md``); :func:`rfdiff.theory.curves.theory_curves` takes the
weights as ``loss_weights``. This module solves, on that theory, for the weights that

* ``"equal-gen"``: equalise τ_gen,c across classes (root of log τ_gen,c − mean_c log τ_gen,c),
* ``"window"``: maximise the common window log10(min_c τ_mem,c / max_c τ_gen,c),
* ``"equal-mem"``: equalise τ_mem,c,

in log-weight coordinates with K − 1 free parameters (u_c = log w_c − log w_{K−1}, then rescaled to
Σ π_c w_c = 1). Times are read off the ridge-time theory curves on a τ grid (log-linear interpolation between
grid points, so log τ(u) is continuous and piecewise smooth): K = 2 uses a bracketing root (Brent) or a scan
plus a bounded scalar search, K > 2 a derivative-free Nelder–Mead on the squared residual / the negative width.
The solver reports its residual and raises :class:`rfdiff.errors.ConvergenceError` when it fails (no sign change
in the bracket, residual above ``tol``, an optimum at the bound, or times the grid does not resolve). When some
weights stop every class from memorising, the window is unbounded; ``"window"`` then returns the scan point
closest to equal weights with that property (at most one scan step, 0.25 in log w, past the threshold).
``memorisation="tau_onset"`` (passed on to :func:`rfdiff.theory.window.disparity_window`) closes the window at
the onset instead and makes ``"equal-mem"`` equalise τ_onset.

Example (strong centroids: imbalance reverses the order of τ_gen, measured in ``theory_notes/10_reweighting.md``)::

    >>> from rfdiff import GaussianMixture, RFModel
    >>> mix = GaussianMixture.create([0.2, 0.8], [1.21, 1.0]).with_strong_centroids([16.0, 16.0])
    >>> r = solve_weights(mix, RFModel(1.0, 0.5, 0.05, "tanh"), "equal-gen")         # doctest: +SKIP
    >>> r.weights.round(3), r.after.tau_gen.round(3)                                  # doctest: +SKIP
    (array([1.638, 0.84 ]), array([1.382, 1.382]))
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..errors import ConvergenceError
from .loss_weights import normalise_loss_weights, weights_from_log

__all__ = ["TARGETS", "Reweighting", "normalise_loss_weights", "weights_from_log", "class_times",
           "solve_weights"]

TARGETS = ("equal-gen", "window", "equal-mem")


class Reweighting(NamedTuple):
    """Result of :func:`solve_weights`: the weights (K,), the windows (:class:`rfdiff.theory.window.Window`)
    before (equal weights) and after, the final residual (decades: max |log10 τ_c − mean| for the equal-*
    targets, 0 for the window target) and the objective the solver met."""

    target: str
    weights: np.ndarray
    proportions: np.ndarray
    before: object
    after: object
    residual: float
    objective: float


def class_times(mixture, model, loss_weights=None, taus=None, **kw):
    """The window (per-class τ_gen and τ_mem, :func:`rfdiff.theory.window.disparity_window`) under the weights."""
    from .window import disparity_window

    return disparity_window(mixture, model, taus, loss_weights=loss_weights, **kw)


def _log_times(mixture, model, u, which, taus, kw):
    """log10 of the per-class ``which`` times at log-weights u, or None where the grid does not resolve them."""
    w = weights_from_log(u, mixture.proportions)
    try:
        win = class_times(mixture, model, w, taus, **kw)
    except ValueError:
        return None, None
    vals = np.log10(win.tau_gen if which == "tau_gen" else win.tau_end)
    return vals, win


def _finite_or(x, default):
    return default if x is None or np.isnan(x) else x


def solve_weights(mixture, model, target: str, *, taus=None, bound: float = 5.0, tol: float = 2e-3,
                  scan: int = 41, **kw) -> Reweighting:
    """Weights for ``target`` ∈ :data:`TARGETS` on the ridge-time theory of ``mixture`` under ``model``.

    ``taus``: the τ grid of the times (default 10⁻³ … 10⁶, 64 points per 9 decades is coarse for a root: the
    default here is 361 points over the same range). ``bound``: |log w_c/w_{K−1}| ≤ ``bound`` (natural log).
    ``tol``: the accepted residual of the equal-* targets in decades of τ. ``scan``: grid points of the K = 2
    scan of the window target. ``kw`` go to :func:`rfdiff.theory.curves.theory_curves` (``n_quad``, ...).
    Raises :class:`~rfdiff.errors.ConvergenceError` on failure, ``ValueError`` for an unknown target.
    """
    from scipy import optimize

    if target not in TARGETS:
        raise ValueError(f"target must be one of {', '.join(TARGETS)}, got {target!r}")
    taus = np.logspace(-3, 6, 361) if taus is None else np.asarray(taus, np.float64)
    pi = np.asarray(mixture.proportions, np.float64)
    k = pi.size
    before = class_times(mixture, model, None, taus, **kw)
    if k == 1:
        return Reweighting(target, np.ones(1), pi, before, before, 0.0, 0.0)
    which = "tau_gen" if target == "equal-gen" else "tau_mem"
    if target == "equal-mem" and not np.all(np.isfinite(before.tau_end)):
        raise ConvergenceError("equal-mem: a class never memorises under equal weights (τ_mem = ∞)",
                               residual=float("inf"), point={"tau_mem": before.tau_end.tolist()})

    def spread(u):
        v, _ = _log_times(mixture, model, u, which, taus, kw)
        return None if v is None or not np.all(np.isfinite(v)) else v - v.mean()

    def width(u):
        _, win = _log_times(mixture, model, u, "tau_gen", taus, kw)
        return None if win is None else float(win.width_decades)

    if target in ("equal-gen", "equal-mem"):
        if k == 2:
            def g(x):
                s = spread([x])
                if s is None:
                    raise ConvergenceError(f"{target}: times not resolved on the τ grid", residual=float("nan"),
                                           point={"log_w0_over_w1": float(x)})
                return s[0]
            lo, hi = g(-bound), g(bound)
            if lo * hi > 0:
                raise ConvergenceError(f"{target}: no root in the bracket |log(w0/w1)| ≤ {bound}",
                                       residual=float(min(abs(lo), abs(hi))),
                                       point={"spread_at_-bound": float(lo), "spread_at_+bound": float(hi)})
            u = np.array([optimize.brentq(g, -bound, bound, xtol=1e-10)])
        else:
            def obj(x):
                if np.any(np.abs(x) > bound):
                    return 1e3 + float(np.sum(np.abs(x)))
                s = spread(x)
                return 1e3 if s is None else float(s @ s)
            res = optimize.minimize(obj, np.zeros(k - 1), method="Nelder-Mead",
                                    options={"xatol": 1e-6, "fatol": 1e-12, "maxiter": 400 * k})
            u = res.x
        s = spread(u)
        resid = float("inf") if s is None else float(np.max(np.abs(s)))
        if not resid <= tol:
            raise ConvergenceError(f"{target}: residual above tol {tol:g} decades", residual=resid,
                                   point={"weights": weights_from_log(u, pi).tolist()})
        objective = resid
    else:
        if k == 2:
            grid = np.linspace(-bound, bound, scan)
            vals = np.array([_finite_or(width([x]), -np.inf) for x in grid])
            if np.all(vals == -np.inf):
                raise ConvergenceError("window: no resolved window on the scan", residual=float("nan"),
                                       point={"bound": bound})
            i = int(np.argmax(vals))
            if np.isposinf(vals[i]):
                # unbounded: some weights stop every class from memorising (ε^tr(∞) above the level); take the
                # scan point closest to equal weights that does, i.e. at most one scan step past the threshold
                inf_pts = np.flatnonzero(np.isposinf(vals))
                u = np.array([grid[inf_pts[np.argmin(np.abs(grid[inf_pts]))]]])
            else:
                a, b = grid[max(i - 1, 0)], grid[min(i + 1, scan - 1)]
                res = optimize.minimize_scalar(lambda x: -_finite_or(width([x]), -np.inf), bounds=(a, b),
                                               method="bounded", options={"xatol": 1e-6})
                u = np.array([res.x if -res.fun >= vals[i] else grid[i]])
        else:
            def obj(x):
                if np.any(np.abs(x) > bound):
                    return 1e3 + float(np.sum(np.abs(x)))
                wd = width(x)
                return 1e3 if wd is None or np.isnan(wd) else -min(wd, 1e3)  # +inf: unbounded, best
            res = optimize.minimize(obj, np.zeros(k - 1), method="Nelder-Mead",
                                    options={"xatol": 1e-5, "fatol": 1e-8, "maxiter": 400 * k})
            u = res.x
        wd = width(u)
        if wd is None or np.isnan(wd) or wd == -np.inf:
            raise ConvergenceError("window: the optimum is not resolved on the τ grid", residual=float("nan"),
                                   point={"weights": weights_from_log(u, pi).tolist()})
        resid, objective = 0.0, wd
        if np.any(np.abs(u) >= bound - 1e-6):
            raise ConvergenceError(f"window: the optimum is at the bound |log w| = {bound} (raise bound)",
                                   residual=float("nan"), point={"weights": weights_from_log(u, pi).tolist()})
    w = weights_from_log(u, pi)
    after = class_times(mixture, model, w, taus, **kw)
    return Reweighting(target, w, pi, before, after, resid, float(objective))
