"""Loss weights that close the window (asymptotic ridge-time theory, strong centroids, imbalance).

* ``reweight``  left: per-class τ_gen (solid) and τ_mem (dashed) against the weight ratio w_1/w_2 of the DSM
  loss (normalised Σ π_c w_c = 1) for π = (0.2, 0.8), σ² = (1.21, 1), ‖μ_c‖²/d = 16: with equal weights the
  minority class 1 generalises last (the order is reversed by the imbalance); the dotted line marks the
  weights of ``rfdiff reweight --target equal-gen``. Right: the per-class test errors ε_c^te(τ) with equal
  weights (thin) and with those weights (thick).

Times on the ridge-time clock of ``rfdiff.theory.curves``; definitions in ``theory_notes/10_reweighting.md``.
"""

from __future__ import annotations

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)

from rfdiff import GaussianMixture, RFModel  # noqa: E402
from rfdiff.plots import class_color, log_axis  # noqa: E402
from rfdiff.theory.curves import theory_curves  # noqa: E402
from rfdiff.theory.reweight import solve_weights  # noqa: E402
from rfdiff.theory.timescales import curve_timescales  # noqa: E402

MODEL = RFModel(1.0, 0.5, 0.05, "tanh")
MIX = GaussianMixture.create([0.2, 0.8], [1.21, 1.0]).with_strong_centroids([16.0, 16.0])


def make(quick: bool = False):
    """Yields ("reweight", Figure)."""
    import matplotlib.pyplot as plt

    n_quad = 128 if quick else 512
    taus = np.logspace(-3, 6, 181 if quick else 361)
    ratios = np.logspace(-1, 1.5, 7 if quick else 21)
    gen, mem = [], []
    for r in ratios:  # times straight from the curves: a τ_mem beyond the grid is a gap, not an error
        out = theory_curves(MIX, MODEL, taus, n_quad=n_quad, loss_weights=[r, 1.0], clock="ridge")
        ts = curve_timescales(taus, out["eps_test"], out["eps_train"], out["eps_train_inf"])
        gen.append(np.asarray(ts.tau_gen))
        mem.append(np.asarray(ts.tau_mem))
    gen, mem = np.array(gen), np.array(mem)
    sol = solve_weights(MIX, MODEL, "equal-gen", taus=taus, n_quad=n_quad)
    grid = np.logspace(-2, 1.3, 120)  # up to τ ≈ 20: the generalisation phase (memorisation takes over later)
    plain = theory_curves(MIX, MODEL, grid, n_quad=n_quad, clock="ridge")
    weighted = theory_curves(MIX, MODEL, grid, n_quad=n_quad, loss_weights=sol.weights, clock="ridge")

    fig, axs = plt.subplots(1, 2, figsize=(10, 3.8))
    for c in range(2):
        col = class_color(c)
        axs[0].plot(ratios, gen[:, c], "-", color=col, label=f"class {c + 1} τ_gen (π = {MIX.proportions[c]:.1f})")
        axs[0].plot(ratios, np.where(np.isfinite(mem[:, c]), mem[:, c], np.nan), "--", color=col,
                    label=f"class {c + 1} τ_mem")
    axs[0].axvline(sol.weights[0] / sol.weights[1], color="k", ls=":", lw=1, label="equal-gen weights")
    axs[0].axvline(1.0, color="0.6", lw=0.8)
    axs[0].set(xlabel="w_1 / w_2 (loss weight ratio)", ylabel="training time τ (ridge-time clock)",
               title="per-class times vs loss weights")
    log_axis(axs[0], "x")
    log_axis(axs[0], "y")
    axs[0].legend(fontsize="small")
    for c in range(2):
        col = class_color(c)
        axs[1].plot(grid, plain["eps_test"][c], "-", color=col, lw=0.8, label=f"class {c + 1}, equal weights")
        axs[1].plot(grid, weighted["eps_test"][c], "-", color=col, lw=2.0,
                    label=f"class {c + 1}, w = {np.round(sol.weights, 3).tolist()}")
        for t, lw in ((sol.before.tau_gen[c], 0.8), (sol.after.tau_gen[c], 2.0)):
            axs[1].axvline(t, color=col, ls=":", lw=lw)
    axs[1].set(xlabel="training time τ", ylabel="test error ε_c^te", title="test error, plain vs weighted loss")
    log_axis(axs[1], "x")
    axs[1].legend(fontsize="small")
    fig.suptitle(f"loss weights, strong centroids ‖μ‖²/d = 16, tanh, ψ_p={MODEL.psi_p}, ψ_n={MODEL.psi_n}, "
                 f"t={MODEL.t}")
    yield "reweight", fig
