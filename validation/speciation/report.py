"""Speciation validation report: theory vs exact-score backward-SDE simulation.

    python validation/speciation/report.py [--quick]

Writes validation/speciation/README.md and PNGs. Sections: (1) per-class t_S,c vs imbalance ratio 1, 10, 100,
1000 at d = 1024 (θ = 0.9 and 0.99, same trajectories); (2) balanced symmetric case: cloning φ(t) at
d = 256 … 16384 against Biroli et al.'s universal curve and t_S = ½ log Λ; (3) variance-only mixture.
Simulations are checkpointed under validation/speciation/.cache, content-keyed by everything the trajectories
depend on (``simulate_posteriors``): a killed run resumes with identical numbers, a changed input recomputes.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import jax
import numpy as np

ROOT = Path(__file__).resolve().parents[2]  # the repository (runs from an installed rfdiff)

import rfdiff  # noqa: E402
from rfdiff.theory import speciation as sp  # noqa: E402
from rfdiff.io import atomic_write_text  # noqa: E402
from rfdiff.simulate.sampling import geometric_grid, mixture_score_fn  # noqa: E402
from rfdiff.plots import plot_phi, plot_times_vs_ratio  # noqa: E402
from rfdiff.simulate.speciation import (cloning, posterior_speciation_times, simulate_posteriors,  # noqa: E402
                                   speciation_vs_ratio)

OUT = ROOT / "validation" / "speciation"
CACHE = OUT / ".cache"
DIMS_BAL: list[int] = []  # overridable (smoke tests)
DIMS_VAR: list[int] = []


def two_class(props, variances=(1.0, 1.0), sq_norm=1.0):
    mix = rfdiff.GaussianMixture.create(list(props), list(variances))
    return mix.with_strong_centroids([sq_norm, sq_norm], [[1.0, -1.0], [-1.0, 1.0]]) if sq_norm else mix


def fmt(x, e=None):
    if np.isinf(x):
        return "∞"
    if np.isnan(x):
        return "–"
    return f"{x:.3f}" if e is None else f"{x:.3f} ± {e:.3f}"


def section_ratios(quick, lines):
    d = 256 if quick else 1024
    kw = dict(n=600 if quick else 2000, min_minority=20 if quick else 25, t_max=8.0, t_min=2e-2,
              num_steps=200 if quick else 300, seed=0, checkpoint_dir=CACHE / "ratios", keep_checkpoint=True,
              progress=True)  # kept: θ = 0.99 reuses the θ = 0.9 trajectories (θ is not in their key)
    ratios = [1.0, 10.0, 100.0] if quick else [1.0, 10.0, 100.0, 1000.0]
    mix = two_class([0.5, 0.5])
    lines += [f"## 1. Per-class speciation time vs imbalance ratio (d = {d})", "",
              "Two classes ±μ, ||μ||²/d = 1 (||Δμ||² = 4d), σ² = 1; π = (r, 1)/(r + 1). Backward SDE "
              f"(exponential integrator, {kw['num_steps']} geometric steps from t = 8 to {kw['t_min']}) with the exact score; "
              "t_S,c = largest t where the median over trajectories ending in c of P(c | x_t) reaches θ. "
              "Errors: bootstrap standard error over trajectories (200 resamples). Theory: "
              "`speciation_times` (closed form (6) of theory_notes/05_speciation.md). "
              "z = (sim − theory)/SE.", ""]
    pngs = []
    for theta in (0.9, 0.99):
        t0 = time.perf_counter()
        res = speciation_vs_ratio(mix, d, ratios, theta=theta, **kw)
        lines += [f"**θ = {theta}** ({time.perf_counter() - t0:.0f} s)", "",
                  "| ratio | n traj. | n minority | majority theory | majority sim | z | minority theory |"
                  " minority sim | z |", "|---|---|---|---|---|---|---|---|---|"]
        for i, r in enumerate(ratios):
            row = [f"{r:g}", str(int(res["n"][i])), str(int(res["counts"][i, 1]))]
            for c in range(2):
                th, sim, se = res["theory"][i, c], res["sim"][i, c], res["se"][i, c]
                z = "–" if not (np.isfinite(th) and np.isfinite(sim)) else f"{(sim - th) / se:+.2f}"
                row += [fmt(th), fmt(sim, se if np.isfinite(sim) else None), z]
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
        png = plot_times_vs_ratio(res, OUT / f"times_vs_ratio_theta{theta:g}.png",
                                  title=f"d = {d}, θ = {theta}")
        pngs.append(png)
        lines += [f"![t_S vs ratio, θ = {theta}]({png.name})", ""]
    return pngs


def section_balanced(quick, lines):
    dims = DIMS_BAL if DIMS_BAL else ([256, 1024] if quick else [256, 1024, 4096, 16384])
    th_b = sp.biroli_phi_threshold()
    lines += ["## 2. Balanced symmetric case: φ(t) and t_S = ½ log Λ", "",
              "Balanced ±μ, ||μ||²/d = 1, σ² = 1, so Λ = 1 + d. Cloning: parents branched into 2 copies at each "
              "clone time, copies run to t = 1 (classes long decided) and classified; φ = P(copies agree), SE by bootstrap over parents. "
              f"Theory: φ(t) = ∫Dz ½[1 + tanh(a + √a z)], a = e^{{-2(t − ½ log||μ||²)}}. θ_B = φ(a = 1) = {th_b:.4f} "
              "is the clone-agreement level at Biroli's t_S; the t where the measured φ crosses θ_B (linear "
              "interpolation between clone times) is compared with ½ log Λ.", "",
              "| d | ½ log Λ | t where sim φ = θ_B | median-θ=0.9 time: theory | sim | max over clone times of (φ_sim − φ_th)/SE, abs. |",
              "|---|---|---|---|---|---|"]
    fig_data = []
    for d in dims:
        n = 300 if quick else {256: 800, 1024: 600, 4096: 200, 16384: 60}[d]
        mix = two_class([0.5, 0.5])
        mu = mix.centroids(jax.random.key(10 + d), d)
        ts = geometric_grid(8.0, 2e-2, 200 if quick else 300)
        t_s = sp.biroli_time(mix, d)
        cts = t_s + np.array([0.8, 0.4, 0.2, 0.0, -0.2, -0.4, -0.8])
        cl = cloning(mixture_score_fn(mix, mu), mix, mu, jax.random.key(20 + d), ts, cts, n=n, t_end=1.0)
        phi_th = sp.phi_symmetric(cl["t"] - 0.5 * np.log(d))
        # clone-agreement φ_total has SE ~ that of φ_c; use the per-class SE average as its error
        se = cl["se"].mean(axis=1)
        from rfdiff.simulate.speciation import crossing_time

        t_cross = crossing_time(cl["t"], cl["phi_total"], th_b)
        tr = simulate_posteriors(None, mix, mu, jax.random.key(30 + d), ts, n,
                                 checkpoint_dir=CACHE / f"balanced_d{d}_n{n}_exp", keep_checkpoint=True)
        post = posterior_speciation_times(tr, 0.9)
        theory_med = sp.speciation_times(mix, d, 0.9)[0]
        lines.append(f"| {d} | {0.5 * np.log(1 + d):.3f} | {fmt(t_cross)} | {theory_med:.3f} | "
                     f"{fmt(post['times'].mean(), np.sqrt((post['se'] ** 2).sum()) / 2)} | "
                     f"{np.max(np.abs(cl['phi_total'] - phi_th) / se):.2f} |")
        fig_data.append((d, cl, se))
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.0, 3.6))
    s = np.linspace(-1.5, 1.5, 200)
    ax.plot(s, sp.phi_symmetric(s), "k", label="theory (universal)")
    for (d, cl, se), col in zip(fig_data, ["C0", "C1", "C2", "C3"]):
        ax.errorbar(cl["t"] - 0.5 * np.log(d), cl["phi_total"], yerr=se, fmt="o", ms=4, color=col, capsize=2,
                    label=f"cloning d = {d}")
    ax.axhline(th_b, color="gray", ls=":", lw=1)
    ax.axvline(0.0, color="gray", ls=":", lw=1)
    ax.set_xlabel("t − ½ log ||μ||²")
    ax.set_ylabel("φ(t)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    png = OUT / "phi_balanced.png"
    fig.savefig(png, dpi=100)
    plt.close(fig)
    lines += ["", f"![φ(t) collapse]({png.name})", ""]
    return [png]


def section_variance(quick, lines):
    dims = DIMS_VAR if DIMS_VAR else ([256, 1024] if quick else [256, 1024, 4096])
    lines += ["## 3. Variance-only mixture (μ = 0, σ² = (2.25, 1), balanced)", "",
              "Theory: exact law of the posterior (`method=\"exact\"`, 10⁵ reduced-coordinate draws) and the "
              "¼ log d asymptote. Simulation: backward SDE, posterior-median times, bootstrap SE.", "",
              "| d | theory σ²=2.25 / σ²=1 | sim σ²=2.25 | sim σ²=1 | ¼ log-law asymptote |", "|---|---|---|---|---|"]
    for d in dims:
        mix = rfdiff.GaussianMixture.create([0.5, 0.5], [2.25, 1.0])
        mu = np.zeros((2, d))
        n = 300 if quick else {256: 1500, 1024: 1000, 4096: 400}[d]
        ts = geometric_grid(6.0, 1e-2, 200 if quick else 300)
        tr = simulate_posteriors(None, mix, mu, jax.random.key(40 + d), ts, n,
                                 checkpoint_dir=CACHE / f"variance_d{d}_n{n}_exp", keep_checkpoint=True)
        post = posterior_speciation_times(tr, 0.9)
        th = sp.speciation_times(mix, d, 0.9, method="exact")
        lines.append(f"| {d} | {th[0]:.3f} / {th[1]:.3f} | {fmt(post['times'][0], post['se'][0])} | "
                     f"{fmt(post['times'][1], post['se'][1])} | {sp.variance_only_time(d, [2.25, 1.0]):.3f} |")
    lines.append("")
    return []


def section_integrator(quick, lines):
    d = 256 if quick else 1024
    n = 600 if quick else 2000
    mix = two_class([10 / 11, 1 / 11])
    mu = mix.centroids(jax.random.key(50), d)
    ts = geometric_grid(8.0, 2e-2, 200 if quick else 300)
    th = sp.speciation_times(mix, d, 0.9)[1], sp.speciation_times(mix, d, 0.99)
    lines += [f"## 4. Integrator bias (ratio 10, d = {d}, {ts.size - 1} geometric steps, same key)", "",
              "Euler–Maruyama vs the exponential integrator (OU part exact, score frozen on each step). "
              f"Theory: minority {th[0]:.3f} (θ = 0.9); majority / minority {th[1][0]:.3f} / {th[1][1]:.3f} "
              "(θ = 0.99).", "",
              "| method | minority, θ = 0.9 | z | majority, θ = 0.99 | z | minority, θ = 0.99 | z |",
              "|---|---|---|---|---|---|---|"]
    for method in ("euler", "exponential"):
        tr = simulate_posteriors(None, mix, mu, jax.random.key(51), ts, n, method=method,
                                 checkpoint_dir=CACHE / f"integrator_d{d}_n{n}_{method}", keep_checkpoint=True)
        a, b = posterior_speciation_times(tr, 0.9), posterior_speciation_times(tr, 0.99)
        row = [method, fmt(a["times"][1], a["se"][1]), f"{(a['times'][1] - th[0]) / a['se'][1]:+.2f}"]
        for c in range(2):
            row += [fmt(b["times"][c], b["se"][c]), f"{(b['times'][c] - th[1][c]) / b['se'][c]:+.2f}"]
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    return []


def section_variance_steps(quick, lines):
    """Variance-only classes: step-size convergence of the simulated times (own file: variance_steps.md)."""
    d, n = (128, 600) if quick else (256, 1500)
    mix = rfdiff.GaussianMixture.create([0.5, 0.5], [2.25, 1.0])
    mu = np.zeros((2, d))
    th = sp.speciation_times(mix, d, 0.9, method="exact")
    out = ["# Variance-only classes: simulated speciation time vs number of steps", "",
           f"μ = 0, σ² = (2.25, 1), balanced, d = {d}, {n} trajectories, exponential integrator, geometric grid "
           f"from t = 6 to 0.01, same key for every grid. Theory (exact law): {th[0]:.3f} / {th[1]:.3f}.", "",
           "| steps | sim σ²=2.25 | sim σ²=1 |", "|---|---|---|"]
    for steps in ((150, 600) if quick else (300, 1200)):
        tr = simulate_posteriors(None, mix, mu, jax.random.key(60), geometric_grid(6.0, 1e-2, steps),
                                 n, checkpoint_dir=CACHE / f"varsteps_d{d}_n{n}_N{steps}", keep_checkpoint=True)
        res = posterior_speciation_times(tr, 0.9)
        out.append(f"| {steps} | {fmt(res['times'][0], res['se'][0])} | {fmt(res['times'][1], res['se'][1])} |")
    atomic_write_text(OUT / "variance_steps.md", "\n".join(out) + "\n")
    print("\n".join(out))
    return []


def section_calibration(quick, lines):
    """Independent replicates vs the bootstrap SE (own file: calibration.md)."""
    d, n, reps = (128, 600, 4) if quick else (256, 1000, 8)
    mix = two_class([10 / 11, 1 / 11])
    th = sp.speciation_times(mix, d, 0.9)[1]
    mu = mix.centroids(jax.random.key(1), d)
    ts = geometric_grid(8.0, 2e-2, 300)
    est, ses, cnt = [], [], []
    for r in range(reps):
        tr = simulate_posteriors(None, mix, mu, jax.random.key(100 + r), ts, n, chunk=n,
                                 checkpoint_dir=CACHE / f"calib_d{d}_n{n}_r{r}", keep_checkpoint=True)
        res = posterior_speciation_times(tr, 0.9, n_boot=100)
        est.append(res["times"][1]), ses.append(res["se"][1]), cnt.append(res["counts"][1])
    est = np.asarray(est)
    out = ["# Error-bar calibration of the simulated minority speciation time", "",
           f"Ratio 10, d = {d}, {n} trajectories per replicate (≈ {int(np.mean(cnt))} minority), exponential "
           f"integrator, 300 geometric steps to t = 0.02, θ = 0.9, {reps} independent replicates (same centroids).",
           "", "| replicate | t_S,min | bootstrap SE | minority count |", "|---|---|---|---|"]
    out += [f"| {r} | {e:.3f} | {s_:.3f} | {c} |" for r, (e, s_, c) in enumerate(zip(est, ses, cnt))]
    out += ["", f"Theory {th:.3f}. Replicate mean {est.mean():.3f} ± {est.std(ddof=1) / np.sqrt(reps):.3f} "
            f"(mean − theory = {est.mean() - th:+.3f}); replicate SD {est.std(ddof=1):.3f} against a mean bootstrap "
            f"SE of {np.mean(ses):.3f} (ratio {est.std(ddof=1) / np.mean(ses):.2f})."]
    atomic_write_text(OUT / "calibration.md", "\n".join(out) + "\n")
    print("\n".join(out))
    return []


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", choices=["ratios", "balanced", "variance", "integrator", "calibration",
                                       "variance_steps"],
                    action="append",
                    default=[])
    args = ap.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    lines = ["# Speciation: theory vs simulation", "",
             "Generated by `python validation/speciation/report.py`" + (" --quick" if args.quick else "")
             + "; every number below comes from that run. Definitions: theory_notes/05_speciation.md.", ""]
    write = not args.only or set(args.only) - {"calibration", "variance_steps"}
    with jax.enable_x64(True):
        if not args.only or "calibration" in args.only:
            section_calibration(args.quick, [])
        if not args.only or "variance_steps" in args.only:
            section_variance_steps(args.quick, [])
        for name, fn in (("ratios", section_ratios), ("balanced", section_balanced),
                         ("variance", section_variance), ("integrator", section_integrator)):
            if not args.only or name in args.only:
                fn(args.quick, lines)
                if write:
                    atomic_write_text(OUT / "README.md", "\n".join(lines) + "\n")
    lines += ["Error bars: the bootstrap SE of a median crossing is itself noisy for small minority counts; its "
              "calibration against independent replicates is in [calibration.md](calibration.md). Variance-only "
              "classes need much finer steps (the radial signal is O(d^{-1/2})): [variance_steps.md](variance_steps.md).",
              "",
              f"Total run time {time.perf_counter() - t0:.0f} s on a shared 2-core CPU.", "",
              "## 5. Learned scores (RF per diffusion time, small U-Nets)", "",
              "Speciation measured with learned scores beside the exact-score theory: [learned.md](learned.md) "
              "(written by `validation/speciation/learned.py`)."]
    if write:
        atomic_write_text(OUT / "README.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
