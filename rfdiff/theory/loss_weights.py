"""Per-class loss weights of the class-weighted DSM loss: the normalisation rule and the log-weight chart.

One home for the rule every layer applies (theory, finite closed form, RF and U-Net trainers, spec): weights are
relative; they are rescaled so Σ_c π_c w_c = 1 (``theory_notes/10_reweighting.md`` §1). Kept apart from
:mod:`rfdiff.theory.reweight` (the solver) so that :mod:`rfdiff.theory.curves` can use it without a cycle.
"""

from __future__ import annotations

import numpy as np

from ..errors import SpecError

__all__ = ["normalise_loss_weights", "weights_from_log"]


def normalise_loss_weights(weights, proportions, name: str = "loss_weights") -> np.ndarray:
    """Per-class loss weights (K,) rescaled so Σ_c π_c w_c = 1.

    The rule: only the ratios of the weights matter; a common factor would only rescale the training clock
    (ω = π w multiplies U and V alike), so the weights are divided by Σ_c π_c w_c, which makes equal weights the
    plain loss (all 1). Raises :class:`rfdiff.errors.SpecError` naming ``name`` unless the weights are finite,
    positive and one per class.

    >>> normalise_loss_weights([2.0, 2.0], [0.25, 0.75]).tolist()
    [1.0, 1.0]
    >>> normalise_loss_weights([3.0, 1.0], [0.25, 0.75]).tolist()
    [2.0, 0.6666666666666666]
    """
    pi = np.asarray(proportions, dtype=np.float64).reshape(-1)
    try:
        w = np.asarray(weights, dtype=np.float64)
    except (TypeError, ValueError):
        raise SpecError(f"{name} must be a list of {pi.size} positive numbers, got {weights!r}") from None
    if w.ndim != 1 or w.size != pi.size:
        raise SpecError(f"{name} must have {pi.size} entries (one per class), got {np.asarray(weights).tolist()!r}")
    if not np.all(np.isfinite(w)) or np.any(w <= 0):
        raise SpecError(f"{name} must be finite and positive, got {w.tolist()!r}")
    return w / float(pi @ w)


def weights_from_log(u, proportions) -> np.ndarray:
    """Weights from the K − 1 free log-weights u (log w_c − log w_{K−1}), normalised Σ π_c w_c = 1."""
    u = np.concatenate([np.atleast_1d(np.asarray(u, np.float64)), [0.0]])
    w = np.exp(u - u.max())
    return w / float(np.asarray(proportions, np.float64) @ w)
