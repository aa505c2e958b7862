"""Figure: asymptotic spectrum of the feature covariance U with its per-class parts.

Left: two balanced classes, σ² = 1 and 4 (weak centroids): atom, coupled, free and generalisation bulks.
Right: imbalanced pair π = (0.9, 0.1), equal variances, strong orthogonal centroids ||μ||²/d = 1
(neuron-shift population; mean-feature spikes at d = 1000 marked in red).
"""

from __future__ import annotations

import numpy as np

import rfdiff
from rfdiff.theory.spectrum import spectral_density


def make(quick: bool = False):
    """Yields ("spectrum", Figure): compute both spectra, then draw each with rfdiff.plots.plot_spectrum."""
    import matplotlib.pyplot as plt

    from rfdiff.plots import plot_spectrum

    model = rfdiff.RFModel(psi_p=2.5, psi_n=1.0, t=0.01, activation="tanh")
    lam = np.geomspace(1e-4, 1e2, 150 if quick else 1200)
    cases = [("σ² = (1, 4), π = (½, ½)", rfdiff.GaussianMixture.create([0.5, 0.5], [1.0, 4.0]), None),
             ("σ² = (1, 1), π = (0.9, 0.1), ||μ||²/d = 1; outliers at d = 1000",
              rfdiff.GaussianMixture.create([0.9, 0.1], [1.0, 1.0]).with_strong_centroids([1.0, 1.0]), 1000)]
    results = [(title, spectral_density(mix, model, lam, d=d)) for title, mix, d in cases]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for ax, (title, res) in zip(axes, results):
        plot_spectrum(res, ax=ax, title=title)
    yield "spectrum", fig
