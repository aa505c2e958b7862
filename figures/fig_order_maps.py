"""Which class comes first, for each definition of the per-class time (issue #12 item 3).

* ``order_maps``  log10(τ_1/τ_2) for τ_gen, τ_mem, τ_onset (columns) over two planes (rows):
  (σ_1/σ_2 × ψ_n) at ψ_p = 8, and (σ_1/σ_2 × ψ_p/ψ_n) at ψ_n = 0.25 fixed (``psi_ratio`` varies ψ_p).
  Blue: class 1 (standard deviation σ_1) first; red: class 2 (σ_2) first; black line: level 0 (the order
  flips); grey: neither class reaches the threshold (τ = ∞ for both; when only one does, it is first). Above the
  dashed line σ_1 > σ_2, so "higher variance first" is blue above it and red below it. The star is the
  point of the issue (σ² = (4, 1), ψ_n = 0.25, ψ_p = 8).

Weak centroids (regime A, one population node), balanced classes, tanh, t = 0.01. Times on the ridge-time
clock of ``rfdiff.theory.curves`` (an exact gradient-flow clock may be added later; at finite d gradient-flow
time / ridge time = 0.73–0.95 with the class order unchanged, notes 04 §6). Numbers and reading: theory_notes/04_dynamics.md
§7 "Order maps per definition". Cost: see ``make``.
"""

from __future__ import annotations

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)

from rfdiff import GaussianMixture, RFModel  # noqa: E402
from rfdiff.plots import class_names, log_axis  # noqa: E402
from rfdiff.sweep import phase_diagram  # noqa: E402
from rfdiff.theory.phase import chunk_size_for, timescale_fn  # noqa: E402

BASE = GaussianMixture.create([0.5, 0.5], [1.0, 1.0])
PSI_P, PSI_N_FIXED, T = 8.0, 0.25, 0.01
MODEL = RFModel(PSI_P, PSI_N_FIXED, T, "tanh")
TAUS = np.logspace(-3, 7, 120)  # τ_mem reaches ~1e4 near ψ_n → ψ_p; 120 points keep ~1.2 log-steps per decade
DEFINITIONS = ("tau_gen", "tau_mem", "tau_onset")
POINT = (2.0, PSI_N_FIXED)  # σ_1/σ_2 = 2 (σ² = (4, 1)), ψ_n = 0.25


def compute(quick: bool = False):
    """{plane: (x_name, xs, rs, {definition: τ (len(rs), len(xs), 2)})} for the two planes."""
    n = 8 if quick else 40
    rs = np.logspace(np.log10(0.25), np.log10(4.0), n)
    planes = {"psi_n": np.logspace(np.log10(0.02), np.log10(32.0), n),
              "psi_ratio": np.logspace(np.log10(1.0), np.log10(256.0), n)}
    out = {}
    for name, xs in planes.items():
        fixed = {"psi_n": [PSI_N_FIXED]} if name == "psi_ratio" else {}
        fn = timescale_fn(BASE, MODEL, taus=TAUS, n_quad=1, grid={"sigma_ratio": rs, name: xs, **fixed})
        res = phase_diagram(fn, {"sigma_ratio": rs, name: xs, **fixed}, progress=False,
                            chunk_size=chunk_size_for(1, 2))
        out[name] = (xs, rs, {k: np.asarray(res[k]).reshape(n, n, 2) for k in DEFINITIONS})
    return out


def order(tau):
    """log10(τ_1/τ_2) of (..., 2) times: −inf when only class 1 reaches its threshold, +inf when only class 2
    does, NaN when neither does (or a time is NaN)."""
    t1, t2 = tau[..., 0], tau[..., 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        lr = np.log10(t1 / t2)
    return np.where(np.isinf(t1) & np.isinf(t2), np.nan, lr)


def point_times():
    """The three times of both classes at the issue's point (σ² = (4, 1), ψ_n = 0.25, ψ_p = 8)."""
    fn = timescale_fn(BASE, MODEL, taus=TAUS, n_quad=1)
    o = fn({"sigma_ratio": POINT[0], "psi_n": POINT[1]})
    return {k: np.asarray(o[k]) for k in (*DEFINITIONS, "eps_train_inf", "eps_test_min")}


def make(quick: bool = False):
    """Yields ("order_maps", Figure). Measured on the shared 2-core CPU (compilation included): quick (8 × 8)
    compute 42 s, default (40 × 40) compute 50 s, whole figure 31 s on a quieter run (most of it compilation); quick figure 11 s after another figure."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    data = compute(quick)
    names = class_names(2)
    xlabels = {"psi_n": "ψ_n = n/d   (ψ_p = 8)", "psi_ratio": f"ψ_p/ψ_n = p/n   (ψ_n = {PSI_N_FIXED})"}
    fig, axs = plt.subplots(2, 3, figsize=(13, 8), sharey=True)
    lim = 1.0
    for row, (plane, (xs, rs, taus)) in enumerate(data.items()):
        for col, k in enumerate(DEFINITIONS):
            ax = axs[row, col]
            lr = order(taus[k])
            finite = ~np.isnan(lr)  # ±inf (one class never reaches the threshold) is an order: clipped
            lr = np.clip(lr, -lim, lim)
            im = ax.pcolormesh(xs, rs, np.where(finite, lr, np.nan), cmap="RdBu_r",
                               vmin=-lim, vmax=lim, shading="nearest")
            if (~finite).any():
                ax.pcolormesh(xs, rs, np.where(finite, np.nan, 1.0), cmap="Greys", vmin=0, vmax=2,
                              shading="nearest")
            if finite.any() and np.nanmin(lr) < 0 < np.nanmax(lr):
                ax.contour(xs, rs, np.where(finite, lr, np.nan), levels=[0.0], colors="k", linewidths=1.3)
            ax.axhline(1.0, color="k", ls="--", lw=0.8)
            if plane == "psi_n":
                ax.plot(*POINT[::-1], "*", color="gold", mec="k", ms=12)
            else:
                ax.plot(PSI_P / PSI_N_FIXED, POINT[0], "*", color="gold", mec="k", ms=12)
            log_axis(ax, "x")
            log_axis(ax, "y")
            ax.set(xlabel=xlabels[plane], title=f"{k}: log10(τ_1/τ_2)")
        axs[row, 0].set_ylabel("σ_1/σ_2")
    fig.colorbar(im, ax=axs.ravel().tolist(), extend="both").set_label("log10(τ_1/τ_2)  (clipped at ±1)")
    fig.legend(handles=[Patch(color=plt.get_cmap("RdBu_r")(0.1), label=f"{names[0]} (σ_1) first"),
                        Patch(color=plt.get_cmap("RdBu_r")(0.9), label=f"{names[1]} (σ_2) first"),
                        plt.Line2D([], [], color="k", label="order flips (level 0)"),
                        plt.Line2D([], [], color="k", ls="--", label="σ_1 = σ_2"),
                        Patch(color="0.55", label="neither class reaches it (τ = ∞)")],
               loc="outside lower center", ncol=5)
    fig.suptitle(f"per-class order by definition: weak centroids, π = (½, ½), tanh, t = {T}, ridge-time clock")
    yield "order_maps", fig
