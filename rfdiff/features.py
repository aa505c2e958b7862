"""The random-features score model and its finite-d feature moments.

Model (``theory_notes/01_model.md``)::

    s_A(x) = A σ(W x/√d)/√p,   W ∈ R^{p×d} i.i.d. N(0, 1) fixed,   A ∈ R^{d×p} trained.

At one diffusion time t the denoising score-matching loss over n training points is exactly quadratic in A::

    L(A) = 1/(n d) Σ_ν E_ξ ||√Δ_t s_A(e^{-t} x^ν + √Δ_t ξ) + ξ||²
         = 1 + Δ/(p d) Tr(A U Aᵀ) + 2√Δ/(d√p) Tr(A V),
    U = (1/n) Σ_ν E_ξ[φ φᵀ]  (p×p),   V = (1/n) Σ_ν E_ξ[φ ξᵀ] = √Δ diag(â) W/√d  (p×d, Stein),

with φ = σ(W x_t/√d) and â_i = (1/n) Σ_ν E_ξ σ'(h_i^ν).
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
    * ``activation``: a name from :data:`rfdiff.activations.ACTIVATIONS` (static: changing it retraces).
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
