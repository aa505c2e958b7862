"""K-class Gaussian mixtures: the data model of rfdiff.

Class ``c`` has proportion ``π_c``, centroid ``μ_c ∈ R^d`` and covariance ``σ_c² Σ_c`` where ``Σ_c`` is
diagonal in a basis shared by all classes with eigenvalue ``levels[c, l]`` on a fraction
``level_weights[l]`` of the coordinates (``L = 1``, ``levels = 1`` is the isotropic case σ_c² I).
A point of class c is ``x_0 = μ_c + σ_c Σ_c^{1/2} z`` with ``z ~ N(0, I_d)``.

Centroids are specified dimension-free by their Gram matrix ``M_cc' = μ_c·μ_c' / d``:

* weak centroids, ``||μ_c||² = O(1)``: ``M = O(1/d)`` (use :meth:`GaussianMixture.with_weak_centroids`);
* strong centroids, ``||μ_c||²/d = O(1)``: ``M = O(1)``; each neuron's pre-activation is then shifted by the
  O(1) amount ``w_i·μ_c/√d ~ N(0, M_cc)`` (see ``theory_notes/01_model.md``).

The class is an :class:`equinox.Module` (a frozen dataclass and a pytree): every float is a leaf, so a whole
grid of mixtures is one ``jax.vmap``; ``K`` and ``L`` are set by the shapes. Validation runs only on concrete
values, never on tracers.

Example::

    >>> import jax, rfdiff
    >>> mix = rfdiff.GaussianMixture.create(proportions=[0.9, 0.1], variances=[1.0, 4.0])
    >>> mix.num_classes
    2
    >>> x, y = mix.sample(jax.random.key(0), n=100, d=50)
    >>> x.shape, y.tolist().count(1)                  # exactly n π_c points per class
    ((100, 50), 10)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..precision import float64

if TYPE_CHECKING:  # annotations only (jaxtyping shapes); no runtime import
    from jaxtyping import ArrayLike, Float, Int

__all__ = [
    "GaussianMixture",
    "proportions_step",
    "proportions_long_tail",
    "class_counts",
]

_PROP_TOL = 1e-8


def _is_concrete(*xs) -> bool:
    return not any(isinstance(x, jax.core.Tracer) for x in xs)


def _check_finite(name: str, x) -> None:
    if not np.all(np.isfinite(np.asarray(x))):
        raise ValueError(f"{name} must be finite, got {np.asarray(x)!r}")


class GaussianMixture(eqx.Module):
    """Validated, immutable K-class Gaussian-mixture specification.

    Fields (all leaves; shapes fix ``K`` and ``L``):

    * ``proportions`` ``(K,)``: π_c ≥ 0 summing to 1 (training set holds n_c = π_c n points).
    * ``variances`` ``(K,)``: σ_c² > 0.
    * ``centroid_gram`` ``(K, K)``: M_cc' = μ_c·μ_c'/d, symmetric positive semi-definite.
    * ``levels`` ``(K, L)``: covariance eigenvalue levels of each class (relative to σ_c²), > 0.
    * ``level_weights`` ``(L,)``: fraction of coordinates at each level, summing to 1.

    Use :meth:`create` to build one from Python lists with defaults.
    """

    proportions: jax.Array
    variances: jax.Array
    centroid_gram: jax.Array
    levels: jax.Array
    level_weights: jax.Array

    def __check_init__(self):
        leaves = (self.proportions, self.variances, self.centroid_gram, self.levels, self.level_weights)
        if not _is_concrete(*leaves):
            return
        p = np.asarray(self.proportions, dtype=float)
        v = np.asarray(self.variances, dtype=float)
        m = np.asarray(self.centroid_gram, dtype=float)
        lv = np.asarray(self.levels, dtype=float)
        lw = np.asarray(self.level_weights, dtype=float)
        for name, x in [("proportions", p), ("variances", v), ("centroid_gram", m), ("levels", lv),
                        ("level_weights", lw)]:
            _check_finite(name, x)
        if p.ndim != 1 or p.size < 1:
            raise ValueError(f"proportions must be a non-empty 1-d array, got shape {p.shape}")
        k = p.size
        if np.any(p < 0):
            raise ValueError(f"proportions must be non-negative, got {p}")
        if abs(p.sum() - 1.0) > _PROP_TOL:
            raise ValueError(f"proportions must sum to 1, got sum {p.sum():.12g}")
        if v.shape != (k,):
            raise ValueError(f"variances must have shape ({k},) to match proportions, got {v.shape}")
        if np.any(v <= 0):
            raise ValueError(f"variances must be positive, got {v}")
        if m.shape != (k, k):
            raise ValueError(f"centroid_gram must have shape ({k}, {k}), got {m.shape}")
        if not np.allclose(m, m.T, atol=1e-12, rtol=1e-10):
            raise ValueError("centroid_gram must be symmetric")
        if k and np.linalg.eigvalsh(m).min() < -1e-10 * max(1.0, np.abs(m).max()):
            raise ValueError("centroid_gram must be positive semi-definite (it is a Gram matrix μ_c·μ_c'/d)")
        if lw.ndim != 1 or lv.shape != (k, lw.size):
            raise ValueError(f"levels must have shape (K, L) = ({k}, {lw.size}), got {lv.shape}")
        if np.any(lv <= 0):
            raise ValueError(f"levels must be positive, got {lv}")
        if np.any(lw < 0) or abs(lw.sum() - 1.0) > _PROP_TOL:
            raise ValueError(f"level_weights must be non-negative and sum to 1, got {lw}")

    # ------------------------------------------------------------------ constructors
    @classmethod
    @float64
    def create(
        cls,
        proportions: Sequence[float],
        variances: Sequence[float],
        centroid_gram: Sequence[Sequence[float]] | None = None,
        levels: Sequence[Sequence[float]] | None = None,
        level_weights: Sequence[float] | None = None,
    ) -> "GaussianMixture":
        """Build a mixture from plain sequences (float64), with zero centroids and isotropic classes by default."""
        p = np.asarray(proportions, dtype=np.float64)
        if p.ndim != 1:
            raise ValueError(f"proportions must be 1-d, got shape {p.shape}")
        k = p.size
        m = np.zeros((k, k)) if centroid_gram is None else np.asarray(centroid_gram, dtype=np.float64)
        lw = np.ones(1) if level_weights is None else np.asarray(level_weights, dtype=np.float64)
        lv = np.ones((k, lw.size)) if levels is None else np.asarray(levels, dtype=np.float64)
        if lv.ndim == 1:  # one level profile shared by all classes
            lv = np.broadcast_to(lv, (k, lv.size)).copy()
        return cls(
            proportions=jnp.asarray(p),
            variances=jnp.asarray(np.asarray(variances, dtype=np.float64)),
            centroid_gram=jnp.asarray(m),
            levels=jnp.asarray(lv),
            level_weights=jnp.asarray(lw),
        )

    @classmethod
    def single(cls, variance: float = 1.0, levels=None, level_weights=None) -> "GaussianMixture":
        """One Gaussian class N(0, variance·Σ); e.g. the two-level covariance of Bonnaire et al. (2025)."""
        return cls.create([1.0], [variance], levels=None if levels is None else [list(levels)],
                          level_weights=level_weights)

    def with_weak_centroids(self, sq_norms_abs, d: int, cosines=None) -> "GaussianMixture":
        """Centroids with absolute squared norms ``||μ_c||² = O(1)`` at dimension ``d`` (Gram matrix / d)."""
        return self._with_gram(np.asarray(sq_norms_abs, float) / d, cosines)

    def with_strong_centroids(self, sq_norms_per_d, cosines=None) -> "GaussianMixture":
        """Centroids with ``||μ_c||²/d`` given (O(1) shifts of each neuron's pre-activation)."""
        return self._with_gram(np.asarray(sq_norms_per_d, float), cosines)

    @float64
    def _with_gram(self, sq, cosines):
        k = self.num_classes
        if sq.shape != (k,) or np.any(sq < 0) or not np.all(np.isfinite(sq)):
            raise ValueError(f"centroid squared norms must be {k} finite non-negative numbers, got {sq}")
        cos = np.eye(k) if cosines is None else np.asarray(cosines, float)
        if cos.shape != (k, k):
            raise ValueError(f"cosines must have shape ({k}, {k}), got {cos.shape}")
        if not np.all(np.isfinite(cos)) or np.any(np.abs(cos) > 1 + 1e-12):
            raise ValueError(f"cosines must be finite and in [-1, 1], got {cos.tolist()}")
        if np.any(np.abs(np.diag(cos) - 1.0) > 1e-12):
            raise ValueError(f"cosines must have a unit diagonal (cos(μ_c, μ_c) = 1), got {np.diag(cos).tolist()}")
        gram = np.sqrt(np.outer(sq, sq)) * cos
        # rebuild through the constructor (eqx.tree_at would skip __check_init__): symmetry, PSD are checked
        return type(self)(proportions=self.proportions, variances=self.variances, centroid_gram=jnp.asarray(gram),
                          levels=self.levels, level_weights=self.level_weights)

    # ------------------------------------------------------------------ properties
    @property
    def num_classes(self) -> int:
        return self.proportions.shape[0]

    @property
    def num_levels(self) -> int:
        return self.level_weights.shape[0]

    @property
    @float64  # computed in float64 whatever the caller's setting: the float64 leaves were multiplied in float32
    def class_variance(self) -> jax.Array:  # by callers without x64 (the numpy speciation theory, found by a probe)
        """Per-class total variance Tr Cov_c / d = σ_c² Σ_l w_l levels[c, l], shape (K,)."""
        return self.variances * (self.levels @ self.level_weights)

    @property
    def is_isotropic(self) -> bool:
        return bool(np.allclose(np.asarray(self.levels), 1.0))

    def permute(self, perm: Sequence[int]) -> "GaussianMixture":
        """Relabel classes: class j of the result is class ``perm[j]`` of ``self``."""
        perm = np.asarray(perm)
        if sorted(perm.tolist()) != list(range(self.num_classes)):
            raise ValueError(f"perm must be a permutation of range({self.num_classes}), got {perm}")
        return GaussianMixture(
            proportions=self.proportions[perm],
            variances=self.variances[perm],
            centroid_gram=self.centroid_gram[np.ix_(perm, perm)],
            levels=self.levels[perm],
            level_weights=self.level_weights,
        )

    # ------------------------------------------------------------------ finite-d realisations
    @float64
    def centroids(self, key: jax.Array, d: int) -> jax.Array:
        """Centroid vectors ``μ`` of shape (K, d) with ``μ μᵀ / d = M`` exactly, in a random orthonormal frame."""
        k = self.num_classes
        if d < k:
            raise ValueError(f"d must be at least the number of classes {k}, got {d}")
        m = np.asarray(self.centroid_gram, dtype=np.float64)
        evals, evecs = np.linalg.eigh(m)
        root = evecs * np.sqrt(np.clip(evals, 0.0, None))  # M = root rootᵀ
        frame, _ = jnp.linalg.qr(jax.random.normal(key, (d, k), dtype=jnp.float64))  # (d, K) orthonormal
        return jnp.sqrt(d) * jnp.asarray(root) @ frame.T

    def covariance_diagonal(self, d: int) -> jax.Array:
        """Per-class covariance eigenvalues σ_c² levels[c, l(j)] on coordinate j, shape (K, d).

        Level ``l`` occupies ``round(w_l d)`` coordinates (the last level takes the remainder).
        """
        w = np.asarray(self.level_weights)
        counts = np.floor(w * d + 0.5).astype(int)
        counts[-1] = d - counts[:-1].sum()
        if np.any(counts < 0):
            raise ValueError(f"d={d} too small to realise level_weights {w}")
        idx = np.repeat(np.arange(w.size), counts)
        return self.variances[:, None] * self.levels[:, idx]

    @float64
    def sample(self, key: jax.Array, n: int, d: int, centroids: jax.Array | None = None,
               labels: jax.Array | None = None, dtype=jnp.float64):
        """Draw ``x_0`` of shape (n, d) with labels (n,): exactly n_c = :func:`class_counts` points per class.

        ``centroids`` (K, d) defaults to :meth:`centroids` with a key split from ``key``. Pass ``labels`` to
        draw points for a given label vector instead (e.g. a fresh test set of one class). ``dtype`` is
        float64 by default; simulations may ask for float32.
        """
        if n <= 0 or d <= 0:
            raise ValueError(f"n and d must be positive, got n={n}, d={d}")
        kc, kz = jax.random.split(key)
        mu = self.centroids(kc, d) if centroids is None else jnp.asarray(centroids)
        if labels is None:
            labels = jnp.asarray(np.repeat(np.arange(self.num_classes), class_counts(self.proportions, n)))
        std = jnp.sqrt(self.covariance_diagonal(d))  # (K, d)
        z = jax.random.normal(kz, (labels.shape[0], d), dtype=jnp.float64)
        x = mu[labels] + std[labels] * z
        return x.astype(dtype), labels


def class_counts(proportions: Float[ArrayLike, "K"], n: int) -> Int[np.ndarray, "K"]:
    """Integer class counts summing to ``n`` closest to ``π n`` (largest-remainder rounding)."""
    p = np.asarray(proportions, dtype=np.float64)
    raw = p * n
    counts = np.floor(raw).astype(int)
    order = np.argsort(-(raw - counts), kind="stable")
    counts[order[: n - counts.sum()]] += 1
    return counts


def proportions_step(num_classes: int, minority_fraction: float, num_minority: int = 1) -> Float[np.ndarray, "K"]:
    """Step imbalance profile: the last ``num_minority`` classes share ``minority_fraction`` of the data.

    Minority classes get ``minority_fraction / num_minority`` each, the others the rest equally.
    """
    if not 0 < num_minority < num_classes:
        raise ValueError(f"num_minority must be in [1, num_classes-1], got {num_minority}")
    if not 0 < minority_fraction < 1:
        raise ValueError(f"minority_fraction must be in (0, 1), got {minority_fraction}")
    k_maj = num_classes - num_minority
    return np.array([(1 - minority_fraction) / k_maj] * k_maj + [minority_fraction / num_minority] * num_minority)


def proportions_long_tail(num_classes: int, imbalance_ratio: float) -> Float[np.ndarray, "K"]:
    """Exponential long-tail profile n_c = n_max ρ^{-c/(K-1)} (Cui et al. 2019), normalised to sum 1.

    ``imbalance_ratio`` ρ = n_max / n_min ≥ 1.
    """
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2 for a long-tail profile, got {num_classes}")
    if not np.isfinite(imbalance_ratio) or imbalance_ratio < 1:
        raise ValueError(f"imbalance_ratio must be finite and >= 1, got {imbalance_ratio}")
    w = imbalance_ratio ** (-np.arange(num_classes) / (num_classes - 1))
    return w / w.sum()
