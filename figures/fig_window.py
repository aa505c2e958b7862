"""The stopping window over the variance ratio and the imbalance (asymptotic ridge-time theory, weak centroids).

* ``window``  width log10(min_c τ_end,c / max_c τ_gen,c) in decades over (σ_1/σ_2, π_1), for τ_end = τ_mem
  (left) and τ_end = τ_onset (right); blue: a window exists, red: disparity (some class memorises before another
  generalises); black line: width 0; hatched: no class ever memorises (unbounded window).

Cost (measured, shared 2-core CPU): quick 8 × 8 grid 14–17 s, default 24 × 24 grid 21–23 s, both variants.
Times on the ridge-time clock of ``rfdiff.theory.curves``; definitions in ``rfdiff.theory.window``.
"""

from __future__ import annotations

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)

from rfdiff import GaussianMixture, RFModel  # noqa: E402
from rfdiff.sweep import phase_diagram  # noqa: E402
from rfdiff.plots import colorbar, log_axis  # noqa: E402
from rfdiff.theory.window import window_fn  # noqa: E402

MODEL = RFModel(2.0, 1.0, 0.01, "tanh")
BASE = GaussianMixture.create([0.5, 0.5], [1.0, 1.0])


def make(quick: bool = False):
    """Yields ("window", Figure): both window maps computed, then drawn."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    n = 8 if quick else 24
    rs, pis = np.logspace(-1, 1, n), np.linspace(0.02, 0.98, n)
    widths = {}
    with jax.enable_x64(True):
        for mem in ["tau_mem", "tau_onset"]:
            out = phase_diagram(window_fn(BASE, MODEL, memorisation=mem, n_quad=1),
                                {"sigma_ratio": rs, "pi1": pis}, progress=False)
            widths[mem] = out["window_width"]
    fig, axs = plt.subplots(1, 2, figsize=(10, 4.2), sharey=True)
    for ax, (mem, w) in zip(axs, widths.items()):
        finite = np.isfinite(w)
        # colour limit from the 99th percentile: a few cells at π_1 → 1 (class 2 with n_c/d ≈ 0.02, whose
        # ε^tr(∞) crosses 0 or −1 there) would otherwise wash out the rest; the bar's arrows mark clipping
        lim = max(float(np.percentile(np.abs(w[finite]), 99)), 1e-3) if finite.any() else 1.0
        im = ax.pcolormesh(pis, rs, np.where(finite, w, np.nan), cmap="RdBu", vmin=-lim, vmax=lim,
                           shading="nearest")
        if (w == np.inf).any():  # no class memorises: the window has no end
            ax.contourf(pis, rs, (w == np.inf).astype(float), levels=[0.5, 1.5], colors="none", hatches=["///"])
        if finite.any() and w[finite].min() < 0 < w[finite].max():
            ax.contour(pis, rs, np.where(finite, w, lim), levels=[0.0], colors="k", linewidths=1.2)
        colorbar(im, ax, "window width [decades]", extend="both")  # defined in the module docstring
        ax.set(xlabel="π_1 (class 1's proportion)", title=f"τ_end = {mem}: blue window, red disparity")
        log_axis(ax, "y")
    axs[0].set_ylabel("σ_1/σ_2 (class 1 over class 2)")
    fig.legend(handles=[Patch(facecolor="none", hatch="///", label="no class memorises"),
                        plt.Line2D([], [], color="k", label="width 0")], loc="outside lower center", ncol=2)
    fig.suptitle(f"stopping window, ridge-time theory, weak centroids, tanh, ψ_p={MODEL.psi_p}, ψ_n={MODEL.psi_n}, "
                 f"t={MODEL.t}")
    yield "window", fig
