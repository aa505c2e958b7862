"""Speciation figures: per-class t_S,c vs imbalance ratio (theory + simulation), φ_c(t) per class (theory +
cloning). ``make(quick)`` yields (name, Figure); quick: d = 256, few trajectories (< 60 s); default: d = 1024."""

from __future__ import annotations

import jax
import numpy as np

import rfdiff
from rfdiff.theory import speciation as sp
from rfdiff.simulate.sampling import geometric_grid, mixture_score_fn
from rfdiff.plots import plot_phi, plot_times_vs_ratio
from rfdiff.simulate.speciation import cloning, speciation_vs_ratio


def _two_class(p_min):
    mix = rfdiff.GaussianMixture.create([1.0 - p_min, p_min], [1.0, 1.0])
    return mix.with_strong_centroids([1.0, 1.0], [[1.0, -1.0], [-1.0, 1.0]])


def make(quick: bool = False):
    """Yields ("speciation_times", Figure) and ("speciation_phi", Figure): computed first, then drawn."""
    d = 256 if quick else 1024
    with jax.enable_x64(True):
        res = speciation_vs_ratio(_two_class(0.5), d, [1.0, 10.0] if quick else [1.0, 10.0, 100.0, 1000.0],
                                  theta=0.9, n=1200 if quick else 1000, min_minority=0 if quick else 15,
                                  t_min=2e-2, num_steps=200 if quick else 300, seed=1)
        # φ_c(t) at ratio 10 (π_min = 1/11): theory curves and cloning points
        mix = _two_class(1.0 / 11.0)
        t = np.linspace(0.5 * np.log(d) - 1.5, 0.5 * np.log(d) + 1.5, 80)
        phi = sp.posterior_statistic(mix, t, d, "clone", "gaussian")
        mu = mix.centroids(jax.random.key(3), d)
        cts = 0.5 * np.log(d) + np.array([1.0, 0.5, 0.0, -0.5, -1.0] if quick else np.linspace(1.2, -1.2, 9))
        cl = cloning(mixture_score_fn(mix, mu), mix, mu, jax.random.key(4), geometric_grid(8.0, 2e-2, 150 if quick else 300),
                     cts, n=300 if quick else 800, t_end=1.0)
    names = ["class 1 (majority)", "class 2 (minority)"]
    yield "speciation_times", plot_times_vs_ratio(res, title=f"per-class speciation time, d = {d}, θ = 0.9",
                                                  labels=names)
    yield "speciation_phi", plot_phi(t, phi, clone=cl, labels=names,
                                     title=f"clone agreement φ_c(t), ratio 10, d = {d}")
