"""Memorisation metrics shared by the RF and U-Net experiments.

A generated sample ``x`` is *memorised* when its nearest training point is much closer than the second
nearest (Bonnaire et al. 2025, arXiv:2505.17638; Gu et al. 2023, *On memorization in diffusion models*)::

    d₁(x) / d₂(x) < 1/3,     d_k = k-th smallest ||x − x_train^ν||  over the whole training set.

The sample's class is the label of its nearest training neighbour. Per-class memorisation fractions come with
percentile-bootstrap confidence intervals (resampling the generated samples of that class).

Example::

    >>> import numpy as np
    >>> from rfdiff.simulate.metrics import memorization_report
    >>> train = np.eye(4); labels = np.array([0, 0, 1, 1])
    >>> rep = memorization_report(train[:2] + 1e-3, train, labels, num_classes=2)
    >>> rep.fraction.tolist()
    [1.0, nan]
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["nearest_two", "MemorizationReport", "memorization_report", "MEMORIZATION_RATIO"]

MEMORIZATION_RATIO = 1.0 / 3.0


def nearest_two(samples, train, chunk: int = 1024):
    """Distances to the nearest and second-nearest training points and the nearest index.

    ``samples`` (m, D), ``train`` (n ≥ 2, D), any float dtype (computed in float64, chunked over samples to
    bound memory to ``chunk × n``). Returns (d1 (m,), d2 (m,), idx1 (m,)).
    """
    samples = np.asarray(samples, dtype=np.float64).reshape(len(samples), -1)
    train = np.asarray(train, dtype=np.float64).reshape(len(train), -1)
    if train.shape[0] < 2:
        raise ValueError("train must hold at least two points for the d1/d2 criterion")
    if samples.shape[1] != train.shape[1]:
        raise ValueError(f"samples have dimension {samples.shape[1]} but train has {train.shape[1]}")
    tn = np.einsum("ij,ij->i", train, train)
    d1 = np.empty(len(samples))
    d2 = np.empty(len(samples))
    i1 = np.empty(len(samples), dtype=np.int64)
    for s in range(0, len(samples), chunk):
        x = samples[s:s + chunk]
        sq = np.einsum("ij,ij->i", x, x)[:, None] + tn[None, :] - 2.0 * x @ train.T
        np.maximum(sq, 0.0, out=sq)
        part = np.argpartition(sq, 1, axis=1)[:, :2]
        vals = np.take_along_axis(sq, part, axis=1)
        order = np.argsort(vals, axis=1)
        vals = np.take_along_axis(vals, order, axis=1)
        part = np.take_along_axis(part, order, axis=1)
        d1[s:s + chunk], d2[s:s + chunk] = np.sqrt(vals[:, 0]), np.sqrt(vals[:, 1])
        i1[s:s + chunk] = part[:, 0]
    return d1, d2, i1


class MemorizationReport(NamedTuple):
    """Per-class results (arrays of shape (K,)); ``ci_low``/``ci_high`` are bootstrap percentiles."""

    fraction: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    count: np.ndarray  # generated samples assigned to each class
    overall: float
    memorized: np.ndarray  # (m,) bool, per sample
    assigned_class: np.ndarray  # (m,) int, label of the nearest training point


def memorization_report(samples, train, train_labels, num_classes: int, *, ratio: float = MEMORIZATION_RATIO,
                        n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> MemorizationReport:
    """Per-class memorisation fraction of generated ``samples`` against the training set.

    Classes with no assigned sample get NaN. Bootstrap: ``n_boot`` resamples of each class's samples.
    """
    if not 0 < ratio < 1:
        raise ValueError(f"ratio must be in (0, 1), got {ratio}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    train_labels = np.asarray(train_labels)
    d1, d2, i1 = nearest_two(samples, train)
    mem = d1 < ratio * d2
    cls = train_labels[i1]
    rng = np.random.default_rng(seed)
    frac = np.full(num_classes, np.nan)
    lo = np.full(num_classes, np.nan)
    hi = np.full(num_classes, np.nan)
    count = np.zeros(num_classes, dtype=np.int64)
    alpha = (1 - level) / 2
    for c in range(num_classes):
        m = mem[cls == c]
        count[c] = m.size
        if m.size == 0:
            continue
        frac[c] = m.mean()
        boots = rng.choice(m, size=(n_boot, m.size), replace=True).mean(axis=1)
        lo[c], hi[c] = np.quantile(boots, [alpha, 1 - alpha])
    return MemorizationReport(frac, lo, hi, count, float(mem.mean()) if mem.size else float("nan"), mem, cls)
