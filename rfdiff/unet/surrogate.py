"""Gaussian surrogate of a labelled image set: each class replaced by exact draws from N(μ_c, Σ_c).

The theory treats each class as a Gaussian (theory_notes/01_model.md); this module builds the data set on which
that premise holds exactly, so a network trained on it can be set against one trained on the real images
(issue #15 item 3, ``validation/surrogate/``). For class c with population images ``x^ν ∈ R^d`` (all training
images of the class, at the run's resolution)::

    μ_c = mean_ν x^ν,    Σ_c = Σ_ν (x^ν − μ_c)(x^ν − μ_c)ᵀ / (n_c − 1)      (float64; the n_c − 1 of
                                                                          rfdiff.unet.fmnist.class_statistics)
    x = μ_c + V_c diag(√λ⁺_c) z,   z ~ N(0, I_d),   Σ_c = V_c diag(λ_c) V_cᵀ,   λ⁺ = max(λ, 0)

The eigendecomposition (not a Cholesky factor) is used because Σ_c is singular for Fashion-MNIST: border
pixels that are 0 in every image of a class have zero variance, so a Cholesky factorisation fails. ``eigh``
returns those null eigenvalues as rounding noise of either sign (|λ| ~ 1e-16 ‖Σ‖); clipping them at 0 changes
the covariance of the draws by that rounding only, and keeps √λ real. Samples are **not** clipped to the
pixel range [−1, 1]: the surrogate is exactly Gaussian, with the class's mean and covariance, nothing else.

Example::

    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(200, 2, 2)); y = np.repeat([3, 5], 100)
    >>> xs = gaussian_surrogate(x[:20], y[:20], x, y, seed=1)     # 20 rows of class 3 → 20 Gaussian draws
    >>> xs.shape, xs.dtype
    ((20, 2, 2), dtype('float32'))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

__all__ = ["ClassMoments", "class_moments", "sample_class_gaussians", "gaussian_surrogate"]

# a fixed second entropy word: the surrogate's stream differs from rfdiff.unet.fmnist.imbalanced_subset's
# default_rng(seed), so the draws are independent of which images the subset picked
_STREAM = 0x5EED_6A55


class ClassMoments(NamedTuple):
    """Per-class first and second moments, float64: classes (K,), counts (K,), mean (K, d), cov (K, d, d)."""

    classes: np.ndarray
    counts: np.ndarray
    mean: np.ndarray
    cov: np.ndarray


def class_moments(images, labels, classes: Sequence[int]) -> ClassMoments:
    """Mean and (n_c − 1)-normalised covariance of each class of ``images`` (n, ...) with ``labels`` (n,).

    Pixels are flattened (d = product of the trailing shape); computed in float64.
    """
    x = np.asarray(images)
    labels = np.asarray(labels)
    if x.ndim < 2 or labels.shape != (x.shape[0],):
        raise ValueError(f"images must be (n, ...) with labels (n,), got {x.shape} and {labels.shape}")
    x = x.reshape(len(x), -1).astype(np.float64)
    if not np.all(np.isfinite(x)):
        raise ValueError("images contain non-finite values")
    cnt, mus, covs = [], [], []
    for c in classes:
        xc = x[labels == c]
        if xc.shape[0] < 2:
            raise ValueError(f"class {c} needs at least two images for a covariance, has {xc.shape[0]}")
        mu = xc.mean(axis=0)
        dx = xc - mu
        cnt.append(xc.shape[0])
        mus.append(mu)
        covs.append(dx.T @ dx / (xc.shape[0] - 1))
    return ClassMoments(np.asarray(classes, dtype=np.int64), np.asarray(cnt, dtype=np.int64), np.stack(mus),
                        np.stack(covs))


def _factor(cov: np.ndarray) -> np.ndarray:
    """F with F Fᵀ = Σ (up to rounding), from eigh with the eigenvalues clipped at 0 (see module docstring)."""
    lam, v = np.linalg.eigh((cov + cov.T) / 2.0)
    return v * np.sqrt(np.clip(lam, 0.0, None))


def sample_class_gaussians(moments: ClassMoments, labels, seed: int) -> np.ndarray:
    """One draw from N(μ_c, Σ_c) per entry of ``labels`` (n,) → (n, d) float64, seeded.

    Rows keep the order (and so the per-class counts) of ``labels``; class c's rows are filled, in
    ``moments.classes`` order, with consecutive draws of ``numpy.random.default_rng([seed, const])``.
    """
    labels = np.asarray(labels)
    unknown = sorted(set(np.unique(labels).tolist()) - set(moments.classes.tolist()))
    if unknown:
        raise ValueError(f"labels {unknown} have no moments (classes: {moments.classes.tolist()})")
    rng = np.random.default_rng([int(seed), _STREAM])
    d = moments.mean.shape[1]
    out = np.empty((len(labels), d), dtype=np.float64)
    for c, mu, cov in zip(moments.classes, moments.mean, moments.cov):
        rows = np.flatnonzero(labels == c)
        if rows.size:
            out[rows] = mu + rng.standard_normal((rows.size, d)) @ _factor(cov).T
    return out


def gaussian_surrogate(images, labels, population_images, population_labels, seed: int) -> np.ndarray:
    """Replace each image of ``images`` (n, H, W) by a draw from its class's Gaussian; same shape, float32.

    The class moments are those of ``population_images`` / ``population_labels`` (e.g. all training images of
    the class at the run's resolution), for the classes present in ``labels``; counts and label order are kept.
    Pixels are not clipped to [−1, 1].
    """
    x = np.asarray(images)
    labels = np.asarray(labels)
    if x.ndim < 2 or x.shape[0] == 0 or labels.shape != (x.shape[0],):
        raise ValueError(f"images must be (n ≥ 1, ...) with labels (n,), got {x.shape} and {labels.shape}")
    pop = np.asarray(population_images)
    if pop.shape[1:] != x.shape[1:]:
        raise ValueError(f"population_images have image shape {pop.shape[1:]}, images {x.shape[1:]}")
    moments = class_moments(pop, population_labels, np.unique(labels).tolist())
    return sample_class_gaussians(moments, labels, seed).reshape(x.shape).astype(np.float32)
