"""Figure: per-class closed-form curves (lines) with fresh-noise RF simulation points (markers).

Two classes σ² = (4, 1), balanced, tanh, t = 0.05, ψ_p = 1, ψ_n = 0.5; GD step η̂ = 0.3/λ_max(U); the simulation
uses fresh noise (one draw per point and step) with the linear control variate, on the same realisation.
"""

from __future__ import annotations

import jax


def make(quick: bool = False):
    """Yields ("simulation_curves", Figure): the comparison drawn by rfdiff.plots.plot_comparison."""
    from rfdiff import GaussianMixture, RFModel
    from rfdiff.simulate.compare import compare_timescales, prepare_theory
    from rfdiff.finite.features import realise
    from rfdiff.plots import plot_comparison
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
    fig = plot_comparison(cmp, labels=["class 1 (σ²=4)", "class 2 (σ²=1)"])
    fig.suptitle(f"RF simulation (points, fresh noise) vs closed form (lines), d={d}, p={prob.p}, n={prob.n}")
    yield "simulation_curves", fig
