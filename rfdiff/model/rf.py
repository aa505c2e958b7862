"""Hyper-parameters of the random-features score model ``s_A(x) = A σ(W x/√d)/√p``.

``W ∈ R^{p×d}`` has i.i.d. N(0, 1) entries and is fixed; ``A ∈ R^{d×p}`` is trained on the denoising
score-matching loss at one diffusion time ``t`` (``theory_notes/01_model.md``). The proportional limit keeps
``ψ_p = p/d`` and ``ψ_n = n/d`` fixed.

Example::

    >>> from rfdiff import RFModel
    >>> RFModel(psi_p=4.0, psi_n=2.0, t=0.01).sizes(100)
    (400, 200)
"""

from __future__ import annotations

import equinox as eqx
import jax
import numpy as np

from .activations import get_activation

__all__ = ["RFModel"]


class RFModel(eqx.Module):
    """Random-features score model hyper-parameters (a pytree: floats are leaves, the activation static).

    * ``psi_p`` = p/d (> 0), ``psi_n`` = n/d (> 0), ``t`` diffusion time (> 0);
    * ``activation``: a name from :data:`rfdiff.model.activations.ACTIVATIONS` (static: changing it retraces).
    """

    psi_p: jax.Array | float
    psi_n: jax.Array | float
    t: jax.Array | float
    activation: str = eqx.field(static=True, default="tanh")

    def __check_init__(self):
        vals = (self.psi_p, self.psi_n, self.t)
        if any(isinstance(v, jax.core.Tracer) for v in vals):
            return
        for name, v in zip(("psi_p", "psi_n", "t"), vals):
            v = np.asarray(v, dtype=float)
            if not np.all(np.isfinite(v)):
                raise ValueError(f"{name} must be finite, got {v}")
            if np.any(v <= 0):
                raise ValueError(f"{name} must be positive, got {v}")
        if isinstance(self.activation, str):
            get_activation(self.activation)  # raises a clear error for unknown names

    def sizes(self, d: int) -> tuple[int, int]:
        """(p, n) at input dimension ``d``: p = round(ψ_p d), n = round(ψ_n d)."""
        return int(round(float(self.psi_p) * d)), int(round(float(self.psi_n) * d))
