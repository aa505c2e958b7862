"""The disparity window: when to stop training so that every class is learned and none memorised.

Per class c the theory gives a generalisation time τ_gen,c and a memorisation time τ_mem,c (or the onset time
τ_onset,c; definitions in :mod:`rfdiff.theory.timescales`), read off the asymptotic learning curves of
:mod:`rfdiff.theory.curves` — so every time here is on the **ridge-time clock** μ = 1/τ of that module, not
gradient-descent steps (its offset against gradient flow is measured in ``validation/timescales``). With
τ_end,c = τ_mem,c (default) or τ_onset,c (``memorisation="tau_onset"``)::

    class interval   I_c = [τ_gen,c, τ_end,c]
    common window    [lo, hi] = [max_c τ_gen,c, min_c τ_end,c]          exists  ⇔  lo < hi
    width            w = log10(hi / lo)   (decades; > 0 window, < 0 disparity, = 0 a single instant)
    binding classes  last_generalising = argmax_c τ_gen,c,   first_memorising = argmin_c τ_end,c

When the window does not exist (w < 0), class ``first_memorising`` is already memorising (past τ_end) while
class ``last_generalising`` has not yet generalised (before τ_gen) for −w decades of training time. Ties go to
the lowest class index. A class that never memorises (ε^tr(∞) ≥ 0, or for the onset ε^tr(∞) > −1) has
τ_end = +∞; a time the τ grid does not resolve (a level met at the first grid point, or one not reached before
its end although the asymptote says it will be) is NaN, and then ``lo``/``hi``/``w`` are NaN and ``exists``
False: :func:`disparity_window` raises instead, naming the class and the grid bound to move
(``theory_notes/08_window.md``).

Example::

    >>> import numpy as np
    >>> w = window_from_times(np.array([0.1, 0.3]), np.array([60.0, 20.0]))
    >>> round(float(w.lo), 3), round(float(w.hi), 3), round(float(w.width_decades), 3), bool(w.exists)
    (0.3, 20.0, 1.824, True)
    >>> w = window_from_times(np.array([0.1, 5.0]), np.array([2.0, 40.0]))   # class 0 memorises first
    >>> bool(w.exists), int(w.first_memorising), int(w.last_generalising), round(float(w.width_decades), 3)
    (False, 0, 1, -0.398)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..precision import float64
from .curves import theory_curves
from .phase import default_taus, timescale_fn
from .timescales import curve_timescales

if TYPE_CHECKING:  # annotations only (jaxtyping shapes); no runtime import
    from jaxtyping import Array, ArrayLike, Float
    from collections.abc import Callable
    from ..model.mixture import GaussianMixture
    from ..model.rf import RFModel
    from .timescales import Timescales

__all__ = ["Window", "MEMORISATION", "window_from_times", "resolve_times", "disparity_window", "window_fn"]

MEMORISATION = ("tau_mem", "tau_onset")


class Window(NamedTuple):
    """The window of a mixture (per-class fields shape (..., K), the rest (...)); a pytree, so it passes
    through ``jit``/``vmap``.

    ``tau_end`` is the end of each class interval actually used (``tau_mem`` or ``tau_onset``).
    """

    tau_gen: jax.Array  # (..., K) start of each class interval
    tau_end: jax.Array  # (..., K) end of each class interval (τ_mem or τ_onset; +inf: never memorises)
    lo: jax.Array  # (...) max_c τ_gen,c
    hi: jax.Array  # (...) min_c τ_end,c
    width_decades: jax.Array  # (...) log10(hi / lo)
    exists: jax.Array  # (...) bool, lo < hi
    first_memorising: jax.Array  # (...) int, argmin_c τ_end,c
    last_generalising: jax.Array  # (...) int, argmax_c τ_gen,c


def _check_memorisation(memorisation: str) -> None:
    if memorisation not in MEMORISATION:
        raise ValueError(f"memorisation must be one of {', '.join(MEMORISATION)}, got {memorisation!r}")


@float64
def window_from_times(tau_gen: Float[ArrayLike, "*b K"], tau_end: Float[ArrayLike, "*b K"]) -> Window:
    """The common window of per-class intervals [τ_gen,c, τ_end,c]; pure and jittable (vmap for grids).

    ``tau_gen``, ``tau_end``: shape (..., K), the class axis last; ``tau_end`` is τ_mem,c or τ_onset,c
    (+inf for a class that never memorises). NaN anywhere in a row (unresolved time) makes that row's
    ``lo``/``hi``/``width_decades`` NaN and ``exists`` False; ``jnp.argmax``/``argmin`` put ties (and NaN) at
    the lowest index. See the module docstring for the definitions.
    """
    tau_gen = jnp.asarray(tau_gen)
    tau_end = jnp.asarray(tau_end, tau_gen.dtype)
    if tau_gen.shape != tau_end.shape or tau_gen.ndim < 1:
        raise ValueError(f"tau_gen {tau_gen.shape} and tau_end {tau_end.shape} must have the same shape (..., K)")
    # jnp.max/min propagate NaN (an unresolved class must not silently drop out of the window)
    lo = jnp.max(tau_gen, axis=-1)
    hi = jnp.min(tau_end, axis=-1)
    width = jnp.log10(hi) - jnp.log10(lo)  # log of each: inf/finite stays inf instead of inf/inf = NaN
    return Window(tau_gen=tau_gen, tau_end=tau_end, lo=lo, hi=hi, width_decades=width, exists=lo < hi,
                  first_memorising=jnp.argmin(tau_end, axis=-1), last_generalising=jnp.argmax(tau_gen, axis=-1))


@float64
def resolve_times(tau_gen: Float[ArrayLike, "*b K"], tau_mem: Float[ArrayLike, "*b K"],
                  tau_onset: Float[ArrayLike, "*b K"], eps_train_inf: Float[ArrayLike, "*b K"], *,
                  memorisation: str = "tau_mem", onset_level: float = -1.0
                  ) -> tuple[Float[Array, "*b K"], Float[Array, "*b K"]]:
    """``(tau_gen, tau_end)`` with the timescale conventions turned into window conventions; jittable.

    :func:`rfdiff.theory.timescales.curve_timescales` returns NaN for "no memorisation" (ε^tr(∞) ≥ 0) and for
    "met at the first grid point", +inf for "not reached on the grid". Here: τ_end = +inf where the class
    provably never memorises (ε^tr(∞) ≥ 0 for τ_mem; ε^tr(∞) > ``onset_level`` for τ_onset); every other
    non-finite time is unresolved by the grid and becomes NaN. Shapes (..., K).
    """
    _check_memorisation(memorisation)
    tau_gen = jnp.asarray(tau_gen)
    inf_ = jnp.asarray(eps_train_inf, tau_gen.dtype)
    if memorisation == "tau_mem":
        end, never = jnp.asarray(tau_mem, tau_gen.dtype), inf_ >= 0
    else:
        end, never = jnp.asarray(tau_onset, tau_gen.dtype), inf_ > onset_level
    end = jnp.where(never, jnp.inf, jnp.where(jnp.isfinite(end), end, jnp.nan))
    return jnp.where(jnp.isfinite(tau_gen), tau_gen, jnp.nan), end


@float64
def disparity_window(mixture: GaussianMixture, model: RFModel, taus: Float[ArrayLike, "T"] | None = None, *,
                     memorisation: str = "tau_mem", return_timescales: bool = False,
                     **kw) -> Window | tuple[Window, Timescales]:
    """The window of ``mixture`` under ``model`` from the asymptotic ridge-time theory (float64, NumPy fields).

    Runs :func:`rfdiff.theory.curves.theory_curves` on ``taus`` (default
    :func:`rfdiff.theory.phase.default_taus`, 10⁻³ … 10⁶, 64 points; ``kw`` go to ``theory_curves``; the clock
    is the ridge-time proxy, that of the phase diagrams, unless ``kw`` sets ``clock``), then
    :func:`rfdiff.theory.timescales.curve_timescales`, :func:`resolve_times` and :func:`window_from_times`.
    Raises ``ValueError`` naming the class when a time is not resolved by the grid (lower ``taus[0]`` or
    raise ``taus[-1]``), and for an unknown ``memorisation``. With ``return_timescales`` it returns
    ``(window, timescales)``, the second the :class:`~rfdiff.theory.timescales.Timescales` it was built from.

    Example::

        >>> from rfdiff import GaussianMixture, RFModel
        >>> w = disparity_window(GaussianMixture.create([0.5, 0.5], [4.0, 1.0]), RFModel(4.0, 2.0, 0.01, "tanh"))
        >>> bool(w.exists), int(w.last_generalising), int(w.first_memorising)
        (True, 1, 0)
    """
    _check_memorisation(memorisation)
    taus = np.asarray(default_taus() if taus is None else taus, dtype=np.float64)
    out = theory_curves(mixture, model, taus, **{"clock": "ridge", **kw})
    ts = curve_timescales(taus, out["eps_test"], out["eps_train"], out["eps_train_inf"])
    gen, end = (np.asarray(a) for a in resolve_times(ts.tau_gen, ts.tau_mem, ts.tau_onset, ts.eps_train_inf,
                                                     memorisation=memorisation))
    for name, raw, res in (("tau_gen", ts.tau_gen, gen), (memorisation, getattr(ts, memorisation), end)):
        raw = np.asarray(raw)
        for c in np.flatnonzero(np.isnan(res)):
            where = (f"already reached at the first grid time {taus[0]:.3g}: lower the grid's start"
                     if np.isnan(raw[c]) else f"not reached by the last grid time {taus[-1]:.3g}: extend the grid")
            raise ValueError(f"taus: {name} of class {c} is not resolved ({where})")
    w = Window(*(np.asarray(v) for v in window_from_times(gen, end)))
    if return_timescales:
        return w, type(ts)(*(np.asarray(v) for v in ts))
    return w


def window_fn(base_mixture: GaussianMixture, base_model: RFModel, *, memorisation: str = "tau_mem",
              **kw) -> Callable[[dict], dict[str, Float[Array, "..."]]]:
    """``params -> dict``: :func:`rfdiff.theory.phase.timescale_fn`'s per-class times plus the window of the
    point — ``window_lo``, ``window_hi``, ``window_width`` (decades) scalars, and ``first_memorising``,
    ``last_generalising`` (class indices, as float64 so a phase diagram stores one dtype). Pure and jittable,
    for :func:`rfdiff.sweep.phase_diagram`; unresolved points
    give NaN widths (see :func:`resolve_times`). ``kw`` go to ``timescale_fn`` (``taus``, ``n_quad``, ...).

    Example::

        >>> from rfdiff import GaussianMixture, RFModel
        >>> fn = window_fn(GaussianMixture.create([0.5, 0.5], [1.0, 1.0]), RFModel(2.0, 1.0, 0.01, "tanh"))
        >>> with jax.enable_x64(True):
        ...     out = jax.jit(fn)({"sigma_ratio": 2.0, "pi1": 0.5})
        >>> bool(out["window_width"] > 0), out["tau_gen"].shape
        (True, (2,))
    """
    _check_memorisation(memorisation)
    times = timescale_fn(base_mixture, base_model, **kw)

    def fn(params):
        out = times(params)
        gen, end = resolve_times(out["tau_gen"], out["tau_mem"], out["tau_onset"], out["eps_train_inf"],
                                 memorisation=memorisation)
        w = window_from_times(gen, end)
        f = w.lo.dtype
        return {**out, "window_lo": w.lo, "window_hi": w.hi, "window_width": w.width_decades,
                "first_memorising": w.first_memorising.astype(f), "last_generalising": w.last_generalising.astype(f)}

    fn.out_dims = dict(times.out_dims)  # per-class outputs: dim "class"
    return fn
