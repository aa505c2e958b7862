"""From the statistics of image classes to the random-features theory's prediction for them.

The theory (``theory_notes/04_dynamics.md``) takes a Gaussian mixture — proportions π_c, variances σ_c² and a
centroid Gram M_cc' = μ_c·μ_c'/d — and an RF model (ψ_p = p/d, ψ_n = n/d, diffusion time t, activation). An
image data set is mapped onto it once, here, by moment matching (``theory_notes/07_unet.md`` §6):

    π_c = n_c / n   (the training subset),   σ_c² = Tr Cov_c / d,   M_cc' = μ_c·μ_c' / d   (population moments),
    ψ_n = n / d,    t = the OU time of the loss (the smallest evaluated one),    ψ_p, activation: chosen.

Fashion-MNIST centroids have ‖μ_c‖²/d = O(1) (0.29–0.65 at 14×14 in [−1, 1] pixels), i.e. the strong-centroid
regime: M enters the neuron population as shifts, so the imbalance can reverse the variance order. ψ_p has no
counterpart in a U-Net; the prediction is reported at the chosen value and :func:`theory_prediction` can be
called at several to show whether the order depends on it.

:func:`theory_prediction` returns the per-class τ_gen, τ_mem (ridge-time clock, theory units) and the orders they
imply; :func:`reversal_fraction` finds the proportion of the first class at which the predicted order of a
two-class mixture flips (the reversal boundary at these variances and centroids).

Example::

    >>> import numpy as np
    >>> from rfdiff.unet.fmnist import ClassStatistics
    >>> st = ClassStatistics(np.array([8, 7]), np.array([10, 10]), np.array([0.5, 0.5]), np.array([0.26, 0.09]),
    ...                      np.zeros((2, 2)), np.zeros((2, 2)), np.zeros(2))
    >>> p = theory_prediction(st, d=196, n=20, psi_p=8.0, t=0.02, activation="tanh")
    >>> p.order_gen.tolist()                               # higher variance (class 8) learned first
    [8, 7]
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..model.mixture import GaussianMixture
from ..model.rf import RFModel
from .fmnist import ClassStatistics

__all__ = ["Prediction", "mixture_from_statistics", "theory_prediction", "reversal_fraction", "recommended_weights"]


class Prediction(NamedTuple):
    """The theory's per-class times (K,) and orders (dataset labels, first first) for one data set."""

    classes: np.ndarray
    tau_gen: np.ndarray
    tau_mem: np.ndarray  # +inf: the class never memorises (ε^tr(∞) ≥ 0)
    order_gen: np.ndarray
    order_mem: np.ndarray
    model: RFModel
    mixture: GaussianMixture


def mixture_from_statistics(stats: ClassStatistics, proportions=None) -> GaussianMixture:
    """The moment-matched mixture: π from ``stats.proportions`` (or ``proportions``), σ_c², M (strong scaling)."""
    pi = np.asarray(stats.proportions if proportions is None else proportions, dtype=np.float64)
    if pi.shape != np.shape(stats.variance):
        raise ValueError(f"proportions must have shape {np.shape(stats.variance)}, got {pi.shape}")
    gram = np.asarray(stats.centroid_gram, dtype=np.float64)
    return GaussianMixture.create(pi / pi.sum(), np.asarray(stats.variance, dtype=np.float64), 0.5 * (gram + gram.T))


def _order(classes, tau):
    # ties (e.g. two classes that never memorise) keep the dataset order; +inf sorts last
    return np.asarray(classes)[np.argsort(np.asarray(tau, dtype=np.float64), kind="stable")]


def theory_prediction(stats: ClassStatistics, *, d: int, n: int, psi_p: float = 8.0, t: float = 0.02,
                      activation: str = "relu", proportions=None, loss_weights=None, taus=None,
                      n_quad: int | None = None) -> Prediction:
    """Per-class τ_gen, τ_mem and their orders for the classes of ``stats`` (training set of ``n`` images of
    ``d`` pixels), from :func:`rfdiff.theory.window.disparity_window` on the moment-matched mixture.

    ``n_quad``: shift nodes of the strong-centroid population (default 256, which keeps the memory small —
    the orders are what is used; 1 when the centroids are zero, where it is exact). ``loss_weights`` (K,): per-class DSM loss weights (``theory_notes/10_reweighting.md``).
    Raises ``ValueError`` if a time is not resolved on ``taus`` (default 10⁻³ … 10⁶).
    """
    from ..theory.window import disparity_window

    if int(d) < 1 or int(n) < 1:
        raise ValueError(f"d and n must be positive integers, got d={d}, n={n}")
    mix = mixture_from_statistics(stats, proportions)
    if n_quad is None:
        n_quad = 1 if not np.any(np.asarray(mix.centroid_gram)) else 256
    model = RFModel(float(psi_p), float(n) / float(d), float(t), activation)
    win = disparity_window(mix, model, taus, n_quad=n_quad, loss_weights=loss_weights)
    gen, mem = np.asarray(win.tau_gen, np.float64), np.asarray(win.tau_end, np.float64)
    cls = np.asarray(stats.classes)
    return Prediction(cls, gen, mem, _order(cls, gen), _order(cls, mem), model, mix)


def reversal_fraction(stats: ClassStatistics, which: str = "tau_mem", *, bracket=(0.02, 0.98), num_scan: int = 13,
                      **kw) -> float:
    """Proportion π_0 of the first of two classes at which the predicted ``which`` order (``"tau_gen"`` or
    ``"tau_mem"``) flips, by :func:`rfdiff.theory.timescales.reversal_boundary` on log τ_0/τ_1; NaN if it does
    not flip inside ``bracket`` (every scan point resolved). Raises :class:`rfdiff.errors.ConvergenceError` when it
    finds no flip but some scan points had no finite prediction (a flip could hide there). ``kw`` go to
    :func:`theory_prediction` (``d``, ``n``, ``psi_p``, ...)."""
    from ..theory.timescales import reversal_boundary

    if which not in ("tau_gen", "tau_mem"):
        raise ValueError(f"which must be 'tau_gen' or 'tau_mem', got {which!r}")
    if len(stats.classes) != 2:
        raise ValueError(f"reversal_fraction needs two classes, got {len(stats.classes)}")

    unresolved: list[float] = []

    def log_ratio(_, p0):
        try:
            pr = theory_prediction(stats, proportions=[p0, 1.0 - p0], **kw)
        except ValueError:
            unresolved.append(float(p0))
            return np.nan
        tau = getattr(pr, which)
        if not np.all(np.isfinite(tau)):
            unresolved.append(float(p0))
            return np.nan
        return float(np.log(tau[0] / tau[1]))

    root = float(reversal_boundary(log_ratio, [0.0], bracket, num_scan=num_scan, xtol=1e-3)[0])
    if np.isnan(root) and unresolved:
        # a flip hidden between unresolved scan points must not read as "no flip"
        from ..errors import ConvergenceError

        raise ConvergenceError(f"reversal_fraction({which!r}): the predicted order is unresolved (a time not "
                               f"finite, or no prediction) at {len(set(unresolved))} of {num_scan} scan points, so "
                               "'no flip' cannot be told from 'unresolved'", residual=float("nan"),
                               point={"pi_0": min(unresolved)})
    return root


def recommended_weights(stats: ClassStatistics, target: str, *, d: int, n: int, psi_p: float = 8.0, t: float = 0.02,
                        activation: str = "relu", proportions=None, n_quad: int = 256):
    """The theory's per-class loss weights for ``target`` (``"equal-gen"``, ``"window"``, ``"equal-mem"``) on the
    moment-matched mixture: :func:`rfdiff.theory.reweight.solve_weights` (its errors propagate). Returns the
    :class:`~rfdiff.theory.reweight.Reweighting` (weights normalised so Σ_c π_c w_c = 1, windows before/after)."""
    from ..theory.reweight import solve_weights

    mix = mixture_from_statistics(stats, proportions)
    return solve_weights(mix, RFModel(float(psi_p), float(n) / float(d), float(t), activation), target,
                         n_quad=n_quad)
