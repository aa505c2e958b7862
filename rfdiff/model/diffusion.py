"""Forward Ornstein–Uhlenbeck diffusion and the exact score of a noised Gaussian mixture.

Forward process (variance preserving, unit rate)::

    x_t = e^{-t} x_0 + √Δ_t ξ,      Δ_t = 1 − e^{-2t},      ξ ~ N(0, I_d).

Conditioned on class c, ``x_t ~ N(m_c, C_c(t))`` with ``m_c = e^{-t} μ_c`` and
``C_c(t) = e^{-2t} Cov_c + Δ_t I``; for isotropic classes ``C_c = Γ_c² I``, ``Γ_c² = e^{-2t} σ_c² + Δ_t``.
The mixture score is the posterior-weighted class score (stable softmax form)::

    ∇ log p_t(x) = Σ_c P(c | x) · (−C_c^{-1}(x − m_c)),
    log P(c | x) = log π_c − ½ (x−m_c)ᵀ C_c^{-1} (x−m_c) − ½ log det C_c + const.

Example (one isotropic class: the score is −x/Γ², Γ² = e^{-2t} σ² + Δ_t)::

    >>> import jax.numpy as jnp
    >>> from rfdiff.model.mixture import GaussianMixture
    >>> mix = GaussianMixture.create([1.0], [4.0])
    >>> s = mixture_score(jnp.ones((1, 3)), 0.5, mix, jnp.zeros((1, 3)))
    >>> round(float(s[0, 0]), 6), round(float(-1 / (4 * jnp.exp(-1.0) + delta(0.5))), 6)
    (-0.475367, -0.475367)

Reference: Biroli, Bonnaire, de Bortoli, Mézard (2024), *Dynamical regimes of diffusion models*.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp

from .mixture import GaussianMixture

if TYPE_CHECKING:  # annotations only (jaxtyping shapes); no runtime import
    import numpy as np
    from jaxtyping import Array, ArrayLike, Float, Key

__all__ = [
    "delta",
    "noised_variances",
    "forward_sample",
    "class_log_posterior",
    "mixture_score",
    "class_score",
]


def delta(t: float | Float[Array, "*b"]) -> Float[Array, "*b"]:
    """Δ_t = 1 − e^{-2t} (accurate for small t via ``expm1``)."""
    return -jnp.expm1(-2.0 * jnp.asarray(t))


def noised_variances(mixture: GaussianMixture, t: float | Float[Array, ""]) -> Float[Array, "K"]:
    """Γ_c² = e^{-2t} σ_c² + Δ_t for each class, shape (K,) (uses the total class variance Tr Cov_c/d)."""
    return jnp.exp(-2.0 * t) * mixture.class_variance + delta(t)


def forward_sample(key: Key[Array, ""], x0: Float[Array, "n d"],
                   t: float | Float[Array, ""]) -> tuple[Float[Array, "n d"], Float[Array, "n d"]]:
    """Draw ``x_t = e^{-t} x0 + √Δ_t ξ`` for every row of ``x0`` (shape (n, d)); returns (x_t, ξ)."""
    xi = jax.random.normal(key, x0.shape, dtype=x0.dtype)
    return jnp.exp(-t) * x0 + jnp.sqrt(delta(t)) * xi, xi


def _class_cov_diag(mixture: GaussianMixture, d: int, t):
    # (K, d) diagonal of C_c(t) in the shared eigenbasis of the class covariances
    return jnp.exp(-2.0 * t) * mixture.covariance_diagonal(d) + delta(t)


def _lead(a, x):
    # give a (K, d)-shaped array the leading batch axes of x (explicit ranks: strict rank promotion)
    return a.reshape((1,) * (x.ndim - 1) + a.shape)


def class_log_posterior(x: Float[Array, "*b d"], t: float | Float[Array, ""], mixture: GaussianMixture,
                        centroids: Float[Array | np.ndarray, "K d"]) -> Float[Array, "*b K"]:
    """log P(c | x_t = x) for x of shape (..., d); returns (..., K). Exact for the noised mixture."""
    d = x.shape[-1]
    cdiag = _lead(_class_cov_diag(mixture, d, t), x)  # (..., K, d)
    diff = x[..., None, :] - _lead(jnp.exp(-t) * centroids, x)  # (..., K, d)
    logits = (_lead(jnp.log(mixture.proportions)[None, :], x)[..., 0, :]
              - 0.5 * jnp.sum(diff**2 / cdiag, axis=-1)
              - 0.5 * jnp.sum(jnp.log(cdiag), axis=-1))
    return jax.nn.log_softmax(logits, axis=-1)


def class_score(x: Float[Array, "*b d"], t: float | Float[Array, ""], mixture: GaussianMixture,
                centroids: Float[Array | np.ndarray, "K d"], c: int) -> Float[Array, "*b d"]:
    """Score of class c alone, −C_c^{-1}(x − m_c), for x of shape (..., d)."""
    d = x.shape[-1]
    cdiag = _lead(_class_cov_diag(mixture, d, t)[c][None, :], x)[..., 0, :]
    return -(x - _lead(jnp.exp(-t) * centroids[c][None, :], x)[..., 0, :]) / cdiag


def mixture_score(x: Float[Array, "*b d"], t: float | Float[Array, ""], mixture: GaussianMixture,
                  centroids: Float[Array | np.ndarray, "K d"]) -> Float[Array, "*b d"]:
    """Exact score ∇ log p_t(x) of the noised mixture for x of shape (..., d)."""
    d = x.shape[-1]
    cdiag = _lead(_class_cov_diag(mixture, d, t), x)  # (..., K, d)
    post = jnp.exp(class_log_posterior(x, t, mixture, centroids))  # (..., K)
    per_class = -(x[..., None, :] - _lead(jnp.exp(-t) * centroids, x)) / cdiag  # (..., K, d)
    return jnp.sum(post[..., None] * per_class, axis=-2)
