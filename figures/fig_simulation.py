"""Figure: per-class closed-form curves (lines) with fresh-noise RF simulation points (markers).

Two classes σ² = (4, 1), balanced, tanh, t = 0.05, ψ_p = 1, ψ_n = 0.5; GD step η̂ = 0.3/λ_max(U); the simulation
uses fresh noise (one draw per point and step) with the linear control variate, on the same realisation.
"""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np


def make(outdir: Path, quick: bool = False) -> list[Path]:
    import matplotlib.pyplot as plt

    from rfdiff import GaussianMixture, RFModel
    from rfdiff.simulate.compare import compare_timescales, prepare_theory
    from rfdiff.finite.features import realise
    from rfdiff.simulate.train import TrainConfig, train_rf

    d, steps = (100, 150) if quick else (300, 350)
    with jax.enable_x64(True):
        mix = GaussianMixture.create([0.5, 0.5], [4.0, 1.0])
        prob = realise(jax.random.key(0), mix, RFModel(1.0, 0.5, 0.05, "tanh"), d)
        theory = prepare_theory(prob, k_max=16)  # explicit order: small d is below the auto check
        lr = 0.3 / theory.lam_max
        log = train_rf(prob, TrainConfig(lr=lr, steps=steps, noise="fresh", control_variate="linear", num_logs=30,
                                         n_test=500, n_eval_noise=8, dtype="float32"), progress=False)
        cmp = compare_timescales(theory, log)
    fig, axes = plt.subplots(1, 2, figsize=(8.5, 3.3))
    names = ["σ²=4", "σ²=1"]
    for c in range(2):
        for ax, key in zip(axes, ("eps_test", "eps_train")):
            ax.plot(cmp["tau_theory"], cmp[f"{key}_theory"][c], color=f"C{c}", lw=1.4, label=f"{names[c]} theory")
            ax.plot(cmp["tau_sim"], cmp[f"{key}_sim"][c], "o", color=f"C{c}", ms=3, label=f"{names[c]} simulation")
        for ax, tkey in zip(axes, ("tau_gen", "tau_mem")):
            tt = cmp["theory"][tkey][c]
            if np.isfinite(tt):
                ax.axvline(tt, color=f"C{c}", ls=":", lw=0.8)
    axes[0].set_ylabel("normalised error ε_c")
    for ax, title in zip(axes, ("test (fresh samples); dotted: τ_gen", "train; dotted: τ_mem")):
        ax.set_xscale("log")
        ax.set_xlabel("training time τ")
        ax.set_title(title, fontsize=9)
        ax.axhline(0, color="k", lw=0.4)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"RF simulation vs closed form, d={d}, p={prob.p}, n={prob.n}", fontsize=9)
    fig.tight_layout()
    outdir = Path(outdir)
    path = outdir / "simulation_curves.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return [path]
