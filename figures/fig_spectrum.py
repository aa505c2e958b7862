"""Figure: asymptotic spectrum of the feature covariance U with its per-class parts.

Left: two balanced classes, σ² = 1 and 4 (weak centroids): atom, coupled, free and generalisation bulks.
Right: imbalanced pair π = (0.9, 0.1), equal variances, strong orthogonal centroids ||μ||²/d = 1
(neuron-shift population; mean-feature spikes at d = 1000 marked in red).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import rfdiff
from rfdiff.theory.spectrum import spectral_density


def make(outdir: Path, quick: bool) -> list[Path]:
    import matplotlib.pyplot as plt

    model = rfdiff.RFModel(psi_p=2.5, psi_n=1.0, t=0.01, activation="tanh")
    lam = np.geomspace(1e-4, 1e2, 150 if quick else 1200)
    cases = [("σ² = (1, 4), π = (½, ½)", rfdiff.GaussianMixture.create([0.5, 0.5], [1.0, 4.0]), None),
             ("σ² = (1, 1), π = (0.9, 0.1), ||μ||²/d = 1",
              rfdiff.GaussianMixture.create([0.9, 0.1], [1.0, 1.0]).with_strong_centroids([1.0, 1.0]), 1000)]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for ax, (title, mix, d) in zip(axes, cases):
        res = spectral_density(mix, model, lam, d=d)
        ax.plot(lam, lam * res.density, "k", lw=1.5, label="λρ(λ)")
        for c in range(mix.num_classes):
            ax.plot(lam, lam * res.class_density[:, c], "--", lw=1, label=f"class {c} part")
        if res.atom_mass > 0:
            ax.axvline(res.atom_location, color="0.5", ls=":", lw=1, label=f"atom (mass {res.atom_mass:.2f})")
        for i, o in enumerate(res.outliers):
            ax.axvline(o, color="r", ls=":", lw=1, label="outliers (d = 1000)" if i == 0 else None)
        ax.set_xscale("log")
        ax.set(xlabel="λ", ylabel="λ ρ(λ)", title=title)
        ax.legend(fontsize=7)
    fig.suptitle(f"Spectrum of U (tanh, t = 0.01, ψ_p = 2.5, ψ_n = 1)", fontsize=10)
    fig.tight_layout()
    out = Path(outdir) / "spectrum.png"
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return [out]
