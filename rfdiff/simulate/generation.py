"""Generation with learned RF scores and per-class memorisation of the generated samples.

One RF model per diffusion time on a grid t_1 < … < t_J, all sharing the features W and the training set, each
trained independently with :func:`rfdiff.simulate.train.train_rf` at its own time (the DSM loss at t_j is a separate
quadratic problem, so independent training is exactly what a per-time score network would learn at that time).
The score used by the backward sampler (:func:`rfdiff.simulate.sampling.backward_sde`) at time t is that of the model
nearest in log t (piecewise constant in log t); the last generated state is at t_1. Memorisation follows
``theory_notes/06_simulation.md`` §6: d₁/d₂ < 1/3 over the whole training set, class = label of the nearest
training point, Clopper–Pearson CIs (:func:`rfdiff.simulate.metrics.memorization_report`).

Example (training skipped here: a hand-made grid of zero readouts, whose score is 0, shows the shapes)::

    >>> grid = RFScoreGrid(times=np.array([0.01, 1.0]), A=np.zeros((2, 3, 5)), W=np.ones((5, 3)),
    ...                    activation="tanh")
    >>> generate(grid, jax.random.key(0), n=4, t_max=2.0, num_steps=10).shape
    (4, 3)

With a :class:`rfdiff.finite.features.FiniteProblem` ``problem``, the real use is::

    >>> grid = train_time_grid(problem, [0.01, 0.1, 1.0], lambda t, U: TrainConfig(lr=0.5 / U, steps=200,
    ...                        noise="exact"))                                       # doctest: +SKIP
    >>> x = generate(grid, jax.random.key(0), n=500, t_max=4.0, num_steps=200)       # doctest: +SKIP
    >>> memorization(x, problem).fraction                                           # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..model.activations import get_activation
from .metrics import MemorizationReport, memorization_report
from ..precision import x64

if TYPE_CHECKING:  # annotations only (jaxtyping shapes); no runtime import
    from jaxtyping import Array, ArrayLike, DTypeLike, Float, Key
    from ..finite.features import FiniteProblem

__all__ = ["RFScoreGrid", "RFScore", "train_time_grid", "flow_time_grids", "rf_score_fn", "generate",
           "memorization"]


class RFScoreGrid(NamedTuple):
    """Trained readouts ``A`` (J, d, p) at ``times`` (J,) for features ``W`` (p, d) and ``activation``."""

    times: np.ndarray
    A: np.ndarray
    W: np.ndarray
    activation: str


def _check_times(times) -> np.ndarray:
    times = np.asarray(times, np.float64)
    if times.ndim != 1 or times.size < 1 or np.any(times <= 0) or np.any(np.diff(times) <= 0):
        raise ValueError(f"times must be a strictly increasing 1-d array of positive times, got {times}")
    return times


def _at_time(problem: FiniteProblem, t) -> FiniteProblem:
    """The same realisation (W, data) with the model's diffusion time set to ``t``."""
    m = problem.model
    return eqx.tree_at(lambda pr: pr.model, problem, type(m)(m.psi_p, m.psi_n, float(t), m.activation))


def train_time_grid(problem: FiniteProblem, times: Float[ArrayLike, "J"], config_fn: Callable, *, progress: bool = False,
                    moments_kwargs: dict | None = None) -> RFScoreGrid:
    """Train one RF readout per time in ``times`` on ``problem`` (its W and training set; its own t ignored).

    ``config_fn(t, lam_max) -> TrainConfig`` gives the training of time t (``lam_max`` = λ_max of the exact U at
    t, for choosing a stable GD step); exact moments are computed per time (``rfdiff.finite.features.train_moments``,
    with ``moments_kwargs``, e.g. an explicit Mehler order ``k_max`` at small d).
    """
    from ..finite.features import train_moments
    from .train import train_rf

    times = _check_times(times)
    As = []
    for t in times:
        prob_t = _at_time(problem, t)
        with x64():
            mom = train_moments(prob_t, per_class=False, **(moments_kwargs or {}))
        lam_max = float(np.linalg.eigvalsh(np.asarray(mom.U))[-1])
        As.append(train_rf(prob_t, config_fn(float(t), lam_max), moments=mom, progress=progress).A)
    return RFScoreGrid(times, np.stack(As), np.asarray(problem.W), problem.model.activation)


def flow_time_grids(problem: FiniteProblem, times: Float[ArrayLike, "J"], taus: Float[ArrayLike, "T"], *,
                    kind: str = "flow", step: float | None = None,
                    moments_kwargs: dict | None = None) -> list[RFScoreGrid]:
    """One :class:`RFScoreGrid` per training time in ``taus``: the readouts of :func:`train_time_grid`, in closed form.

    From A(0) = 0 on the exact (noise-averaged) loss at each diffusion time t_j (``theory_notes/04_dynamics.md`` §1)::

        A_j(τ) = −√(p/Δ_j) V_jᵀ Q_j diag(f(τ)) Q_jᵀ,   U_j = Q_j diag(λ) Q_jᵀ,

    f from :mod:`rfdiff.finite.closed_form` (``kind="flow"``: (1 − e^{−τλ})/λ; ``"gd"`` with ``step`` η: GD with
    τ/η steps, identical to :func:`train_time_grid` with ``noise="exact"``). One moment computation and one
    eigendecomposition per t serve every τ, so τ up to 10⁶ costs nothing extra. ``moments_kwargs`` as in
    :func:`train_time_grid`.
    """
    from ..finite.closed_form import _KINDS, _f_weights
    from ..finite.features import train_moments

    times = _check_times(times)
    taus = np.atleast_1d(np.asarray(taus, np.float64))
    if taus.ndim != 1 or np.any(~np.isfinite(taus)) or np.any(taus < 0):
        raise ValueError(f"taus must be finite non-negative training times, got {taus}")
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")
    if kind == "gd" and not (step is not None and step > 0):
        raise ValueError(f"kind='gd' needs a positive step, got {step}")
    p = problem.p
    As = []
    for t in times:
        prob_t = _at_time(problem, t)
        with x64():
            mom = train_moments(prob_t, per_class=False, **(moments_kwargs or {}))
            lam, Q = np.linalg.eigh(0.5 * (np.asarray(mom.U) + np.asarray(mom.U).T))
            f = np.asarray(_f_weights(jnp.asarray(lam), jnp.asarray(taus), kind, step))  # (T, p)
        VQ = np.asarray(mom.V).T @ Q  # (d, p)
        As.append(-np.sqrt(p / -np.expm1(-2.0 * t)) * np.einsum("dk,tk,lk->tdl", VQ, f, Q))  # (T, d, p)
    A = np.stack(As, axis=1)  # (T, J, d, p)
    return [RFScoreGrid(times, A[i], np.asarray(problem.W), problem.model.activation) for i in range(taus.size)]


class RFScore(eqx.Module):
    """RF score ``s(x, t) = A_j σ(W x/√d)/√p`` with the readout ``A_j`` of the time nearest ``t`` in log t.

    ``x`` (n, d), ``t`` scalar → (n, d). Fields: ``logt`` (J,) log training times, ``A`` (J, d, p), ``wt``
    (p, d) = W/√d, ``activation`` (static name). An equinox module: the samplers trace its arrays, so a new
    readout of the same shapes does not recompile (:mod:`rfdiff.simulate.sampling`). Build with
    :func:`rf_score_fn`.
    """

    logt: jax.Array
    A: jax.Array
    wt: jax.Array
    activation: str | Callable = eqx.field(static=True)

    def __call__(self, x: jax.Array, t: jax.Array) -> jax.Array:
        dt = self.logt.dtype
        j = jnp.argmin(jnp.abs(self.logt - jnp.log(jnp.asarray(t, dt))))
        p = self.A.shape[-1]
        return get_activation(self.activation).fn(x @ self.wt.T) @ self.A[j].T * jnp.asarray(1.0 / np.sqrt(p), dt)


def rf_score_fn(grid: RFScoreGrid, dtype: DTypeLike = jnp.float32) -> RFScore:
    """``score_fn(x (n, d), t) -> (n, d)`` using the model nearest in log t (an :class:`RFScore` module)."""
    d = grid.W.shape[1]
    return RFScore(jnp.asarray(np.log(grid.times), dtype), jnp.asarray(grid.A, dtype),
                   jnp.asarray(np.asarray(grid.W) / np.sqrt(d), dtype), grid.activation)


def generate(grid: RFScoreGrid, key: Key[Array, ""], n: int, *, t_max: float = 4.0, num_steps: int = 200,
             method: str = "exponential", dtype: DTypeLike = jnp.float32) -> Float[np.ndarray, "n d"]:
    """n samples of the backward SDE from t_max down to the smallest trained time, with the RF scores."""
    from .sampling import backward_sde, geometric_grid

    t_min = float(grid.times[0])
    if not t_max > t_min:
        raise ValueError(f"t_max must exceed the smallest trained time {t_min}, got {t_max}")
    ts = geometric_grid(t_max, t_min, num_steps)
    out = backward_sde(rf_score_fn(grid, dtype), key, ts, n=n, d=grid.W.shape[1], method=method, dtype=dtype)
    return np.asarray(out.x)


def memorization(samples: Float[ArrayLike, "m d"], problem: FiniteProblem, **kwargs) -> MemorizationReport:
    """Per-class memorisation of ``samples`` against the training set of ``problem`` (d₁/d₂ < 1/3)."""
    return memorization_report(samples, np.asarray(problem.x0), np.asarray(problem.labels),
                               problem.mixture.num_classes, **kwargs)
