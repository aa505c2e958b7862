"""Gaussian-equivalence coefficients a, v², s² against the class standard deviation, per activation
(theory_notes/02_gaussian_equivalence.md), and their spread over neurons for strong centroids."""

from __future__ import annotations

import numpy as np

from rfdiff.model.activations import ge_coefficients
from rfdiff.plots import log_axis


def make(quick: bool = False):
    """Yields ("coefficients", Figure)."""
    import matplotlib.pyplot as plt

    sig = np.geomspace(0.25, 4.0, 12 if quick else 60)
    acts = ["tanh", "relu", "erf", "silu"]
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.4))
    for t, ls in [(0.01, "-"), (0.1, "--")]:
        dlt = 1 - np.exp(-2 * t)
        for i, act in enumerate(acts):
            c = ge_coefficients(act, 0.0, np.exp(-2 * t) * sig**2, dlt, n_nodes=64 if quick else 200)
            for ax, val, name in zip(axes[:3], [c.a, c.v2, c.s2], ["a = E σ'", "v² (data non-linearity)",
                                                                    "s² (noise non-linearity)"]):
                ax.plot(sig, np.asarray(val), ls, color=f"C{i}", label=f"{act}, t={t}")
                ax.set_title(name)
    # strong centroids: per-neuron slope a_i for a shift m_i ~ N(0, e^{-2t} ||μ||²/d)
    rng = np.random.default_rng(0)
    for q, col in [(1.0, "C0"), (16.0, "C3")]:
        shifts = rng.normal(0, np.sqrt(q), 4000 if not quick else 400)
        a = np.asarray(ge_coefficients("tanh", shifts, 1.0, 0.0198, n_nodes=64 if quick else 200).a)
        axes[3].hist(a, bins=40, density=True, alpha=0.6, color=col, label=f"tanh, ||μ||²/d = {q:g}")
    axes[3].set_title("per-neuron a_i, strong centroids (σ=1)")
    for ax in axes[:3]:
        log_axis(ax, "x")
        log_axis(ax, "y")
        ax.set_xlabel("class std σ_c")
    axes[3].set_xlabel("a_i")
    axes[3].set_ylabel("density")
    axes[0].legend(fontsize=6)
    axes[3].legend()
    yield "coefficients", fig
