"""Centroid geometry as an axis: per-class times against the centroid norm ratio and the cosine (issue #12 item 4).

* ``geometry``  τ_gen,c (solid) and τ_mem,c (dashed) of both classes at equal variance (σ_1 = σ_2 = 1, balanced),
  against ||μ_1||/||μ_2|| (cosine 0, left) and against cos(μ_1, μ_2) (equal norms, right), for weak centroids
  (top: ||μ_2||² = 4 at d = 1000, M = O(1/d)) and strong ones (bottom: ||μ_2||²/d = 4, M = O(1)); grey
  (right axis): the order log10(τ_1/τ_2) of τ_gen (solid) and τ_mem (dashed); dotted: the same ratios caused by
  σ_1/σ_2 = 2 at equal, orthogonal centroids instead, for scale.

Phase-diagram parameters ``norm_ratio`` and ``cosine`` of :mod:`rfdiff.theory.phase` (Gram
M_01 = cosine·||μ_1|| ||μ_2||/d), tanh, ψ_p = 8, ψ_n = 1, t = 0.01, ridge-time clock, 256 shift nodes.
Reading and numbers: theory_notes/04_dynamics.md §8 "Centroid geometry as an axis". Cost: see ``make``.
"""

from __future__ import annotations

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)

from rfdiff import GaussianMixture, RFModel  # noqa: E402
from rfdiff.plots import class_color, class_names, log_axis  # noqa: E402
from rfdiff.sweep import phase_diagram  # noqa: E402
from rfdiff.theory.phase import chunk_size_for, timescale_fn  # noqa: E402

MODEL = RFModel(8.0, 1.0, 0.01, "tanh")
SQ_NORM, D_WEAK, N_QUAD = 4.0, 1000, 256
TAUS = np.logspace(-3, 6, 90)
_EQ = GaussianMixture.create([0.5, 0.5], [1.0, 1.0])
BASES = {"weak": _EQ.with_weak_centroids([SQ_NORM, SQ_NORM], D_WEAK),
         "strong": _EQ.with_strong_centroids([SQ_NORM, SQ_NORM])}
KEYS = ("tau_gen", "tau_mem", "tau_onset")


def compute(quick: bool = False):
    """{regime: {"norm_ratio": (xs, {k: (n, 2)}), "cosine": (xs, {k: (n, 2)}), "sigma2": {k: (2,)}}}."""
    n = 5 if quick else 17
    axes = {"norm_ratio": np.logspace(np.log10(0.5), np.log10(2.0), n), "cosine": np.linspace(-1.0, 1.0, n)}
    out = {}
    for regime, base in BASES.items():
        out[regime] = {}
        for name, xs in axes.items():
            fn = timescale_fn(base, MODEL, taus=TAUS, n_quad=N_QUAD, grid={name: xs})
            res = phase_diagram(fn, {name: xs}, progress=False, chunk_size=chunk_size_for(N_QUAD, 2))
            out[regime][name] = (xs, {k: np.asarray(res[k]) for k in KEYS})
        # the variance effect for scale: σ_1/σ_2 = 2 with this regime's equal, orthogonal centroids
        fn = timescale_fn(base, MODEL, taus=TAUS, n_quad=N_QUAD, grid={"sigma_ratio": [2.0]})
        out[regime]["sigma2"] = {k: np.asarray(v) for k, v in fn({"sigma_ratio": 2.0}).items() if k in KEYS}
    return out


def make(quick: bool = False):
    """Yields ("geometry", Figure). Measured on the shared 2-core CPU (compilation included): default (17 points a
    curve) compute 52 s, whole figure 55–75 s; quick (5 points) 38 s."""
    import matplotlib.pyplot as plt

    data = compute(quick)
    names = class_names(2)
    fig, axs = plt.subplots(2, 2, figsize=(11, 8), sharey="row")
    xlabels = {"norm_ratio": "||μ_1||/||μ_2||   (cosine 0)", "cosine": "cos(μ_1, μ_2)   (equal norms)"}
    for row, regime in enumerate(BASES):
        for col, name in enumerate(("norm_ratio", "cosine")):
            ax = axs[row, col]
            xs, taus = data[regime][name]
            for c in range(2):
                ax.plot(xs, taus["tau_gen"][:, c], "o-", ms=3, color=class_color(c), label=f"τ_gen, {names[c]}")
                ax.plot(xs, taus["tau_mem"][:, c], "s--", ms=3, color=class_color(c), mfc="none",
                        label=f"τ_mem, {names[c]}")
            ax.set_yscale("log")
            tw = ax.twinx()  # the order: log10(τ_1/τ_2), grey; its scale from the variance (dotted)
            for k, ls in (("tau_gen", "-"), ("tau_mem", "--")):
                tw.plot(xs, np.log10(taus[k][:, 0] / taus[k][:, 1]), ls, color="0.55", lw=2.2, alpha=0.7)
                ref = data[regime]["sigma2"][k]
                tw.axhline(np.log10(ref[0] / ref[1]), color="0.3", ls=":", lw=1.2)
                tw.annotate(f"σ_1/σ_2 = 2: {k}", (xs[-1], np.log10(ref[0] / ref[1])), fontsize=7, color="0.3",
                            ha="right", va="bottom")
            tw.axhline(0.0, color="0.3", lw=0.6)
            tw.set_ylim(-0.6, 0.6)
            if col == 1:
                tw.set_ylabel("log10(τ_1/τ_2)  (grey)", color="0.35")
            else:
                tw.set_yticklabels([])
            if name == "norm_ratio":
                log_axis(ax, "x")
            ax.set(xlabel=xlabels[name], title=f"{regime} centroids, ||μ_2||²{'' if regime == 'weak' else '/d'} = "
                   f"{SQ_NORM:g}" + (f" (d = {D_WEAK})" if regime == "weak" else ""))
        axs[row, 0].set_ylabel("training time τ")
    handles, labels = axs[1, 0].get_legend_handles_labels()
    handles += [plt.Line2D([], [], color="0.55", lw=2.2, label="log10(τ_gen,1/τ_gen,2)"),
                plt.Line2D([], [], color="0.55", lw=2.2, ls="--", label="log10(τ_mem,1/τ_mem,2)")]
    fig.legend(handles=handles, loc="outside lower center", ncol=3)
    fig.suptitle(f"centroid geometry at equal variance: tanh, ψ_p = {MODEL.psi_p}, ψ_n = {MODEL.psi_n}, "
                 f"t = {MODEL.t}, ridge-time clock; dotted: the order that σ_1/σ_2 = 2 gives instead")
    yield "geometry", fig
