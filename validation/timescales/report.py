"""Per-class τ_gen, τ_mem, τ_onset: asymptotic theory vs the exact finite-d closed form, converging with d.

    python validation/timescales/report.py [--ds 250 500 1000] [--quick]

For each mixture and d: realise W and the training set (seed 0), exact noise-averaged moments
(``features.train_moments(method="exact")``) and exact class-population moments, then the closed-form curves
both for true gradient flow and for the ridge-time proxy (the object the theory computes). Times by
``rfdiff.theory.timescales`` on one τ grid for all. Per-(mixture, d, seed) curves are cached under ``cache/`` in
files named by, and verified against, the content key of their inputs, so an interrupted run resumes and a
changed mixture, model or τ grid is recomputed. Writes ``validation/timescales/README.md`` and PNGs (all numbers from this run).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)
ROOT = Path(__file__).resolve().parents[2]  # the repository (runs from an installed rfdiff)

from rfdiff import GaussianMixture, RFModel  # noqa: E402
from rfdiff.finite.closed_form import finite_curves  # noqa: E402
from rfdiff.theory.curves import theory_curves  # noqa: E402
from rfdiff.finite.features import population_moments, realise, train_moments  # noqa: E402
from rfdiff.io import atomic_write_text, content_key, load_result, save_result  # noqa: E402
from rfdiff.theory.timescales import curve_timescales  # noqa: E402

OUT = ROOT / "validation" / "timescales"
MODEL = RFModel(2.0, 1.0, 0.01, "tanh")
TAUS = np.logspace(-3, 6, 160)
TIMES = ("tau_gen", "tau_mem", "tau_onset")


def mixtures():
    return {
        "variance-ordered": GaussianMixture.create([0.5, 0.5], [4.0, 1.0]),
        "imbalance-reversed (π₁=0.1)": GaussianMixture.create([0.1, 0.9], [1.21, 1.0]).with_strong_centroids(
            [16.0, 16.0]),
        "imbalance-control (π₁=0.9)": GaussianMixture.create([0.9, 0.1], [1.21, 1.0]).with_strong_centroids(
            [16.0, 16.0]),
        "centroid-varied": GaussianMixture.create([0.5, 0.5], [2.0, 1.0]).with_strong_centroids([4.0, 1.0]),
        "three classes": GaussianMixture.create([0.2, 0.3, 0.5], [4.0, 2.0, 1.0]),
    }


def times(c, inf):
    ts = curve_timescales(TAUS, c["eps_test"], c["eps_train"], inf)
    return {k: np.asarray(getattr(ts, k)) for k in TIMES}


def realised_shifts(prob):
    """The realised neuron shifts m_ic = e^{-t} w̃_i·μ_c (p, K) of a finite problem."""
    d = prob.d
    return np.exp(-MODEL.t) * np.asarray(prob.W @ np.asarray(prob.centroids).T) / np.sqrt(d)


def finite_run(name, mix, d, seed=0, *, compute=True):
    """The cached finite-d curves of (``name``, d, seed), computed and cached first unless ``compute`` is False
    (then None when no cache matches)."""
    slug = "".join(ch if ch.isascii() and ch.isalnum() else "_" for ch in name).strip("_")
    # everything the cached curves depend on (the moments use their automatic Mehler order)
    key = content_key(mixture=mix, model=MODEL, d=d, seed=seed, taus=TAUS, kinds=["flow", "ridge"])
    path = OUT / "cache" / f"{slug}_d{d}_s{seed}_{key[:16]}.npz"
    if path.exists():
        arrs, attrs = load_result(path)
        if attrs.get("key") == key:
            return arrs
    if not compute:
        return None
    t0 = time.perf_counter()
    prob = realise(jax.random.key(seed), mix, MODEL, d)
    mom = train_moments(prob)
    pop = population_moments(prob)
    fc = finite_curves(prob, mom, pop)
    inf = np.asarray(fc.asymptote()["eps_train"][:, 0])
    arrs = {"inf": inf}
    for kind in ("flow", "ridge"):
        c = fc(TAUS, kind=kind)
        arrs[f"{kind}_eps_train"] = np.asarray(c["eps_train"])
        arrs[f"{kind}_eps_test"] = np.asarray(c["eps_test"])
    arrs["seconds"] = np.asarray(time.perf_counter() - t0)
    save_result(path, arrs, {"mixture": name, "d": d, "seed": seed, "key": key})
    print(f"  {name} d={d} seed={seed}: {float(arrs['seconds']):.0f} s", flush=True)
    return arrs


STRONG = ("imbalance-reversed (π₁=0.1)", "imbalance-control (π₁=0.9)")


def strong_section(ds, seeds):
    """Strong centroids: finite d vs theory on the *realised* shift population (removes the sampling of the
    neuron population, which the Sobol theory averages out) and vs the Sobol theory, over seeds."""
    mixes = mixtures()
    keys = TIMES + ("eps_inf",)
    per_d = dict(zip(ds, seeds if len(seeds) == len(ds) else [seeds[0]] * len(ds)))
    lines = ["## Strong centroids: sampling of the neuron population vs the equations", "",
             "For the two strong-centroid imbalance mixtures, realisations (seeds 0…S−1) per d: "
             + ", ".join(f"d = {d}: S = {n}" for d, n in per_d.items()) + ". "
             "`realised`: the theory solved on the realised shifts m_ic = e^{-t} w̃_i·μ_c of that W (`theory_curves(..., "
             "shifts=...)`), `Sobol`: the d → ∞ population (1024 nodes). Entries: mean ± standard error over seeds of "
             "finite(ridge) / theory; ε_inf = ε^tr(∞). The same gaps on the exact gradient-flow clock "
             "against d: `TREND.md` (`trend.py`).", "",
             "| mixture | d | class | vs | τ_gen | τ_mem | τ_onset | ε_inf |", "|---|---|---|---|---|---|---|---|"]
    for name in STRONG:
        mix = mixes[name]
        th = theory_curves(mix, MODEL, TAUS, clock="ridge")
        tsob = times(th, th["eps_train_inf"])
        tsob["eps_inf"] = th["eps_train_inf"]
        for d in ds:
            rat = {"realised": [], "Sobol": []}
            for seed in range(per_d[d]):
                fr = finite_run(name, mix, d, seed)
                tr = times({"eps_test": fr["ridge_eps_test"], "eps_train": fr["ridge_eps_train"]}, fr["inf"])
                tr["eps_inf"] = fr["inf"]
                prob = realise(jax.random.key(seed), mix, MODEL, d)
                thr = theory_curves(mix, MODEL, TAUS, shifts=realised_shifts(prob), clock="ridge")
                trl = times(thr, thr["eps_train_inf"])
                trl["eps_inf"] = thr["eps_train_inf"]
                rat["realised"].append([tr[k] / trl[k] for k in keys])
                rat["Sobol"].append([tr[k] / tsob[k] for k in keys])
            for vs, r in rat.items():
                r = np.asarray(r)  # (S, 4, K)
                m = r.mean(0)
                se = r.std(0, ddof=1) / np.sqrt(r.shape[0]) if r.shape[0] > 1 else None  # one seed: no error bar
                for c in range(mix.num_classes):
                    lines.append(f"| {name} | {d} | {c} | {vs} | " + " | ".join(
                        f"{m[i, c]:.3f}" + (f" ± {se[i, c]:.3f}" if se is not None else " (one seed)")
                        for i in range(len(keys))) + " |")
    return lines


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ds", type=int, nargs="+", default=[250, 500, 1000])
    ap.add_argument("--quick", action="store_true", help="d = 100, 200 only")
    ap.add_argument("--big-d", type=int, default=None, help="one larger d, only for mixtures named in --big-only")
    ap.add_argument("--big-only", nargs="*", default=["variance-ordered"], help="mixture names, or 'all'")
    ap.add_argument("--cache-only", default=None, help="compute the finite-d cache of this mixture at --big-d only")
    ap.add_argument("--cache-seed", type=int, default=0, help="the realisation --cache-only computes")
    ap.add_argument("--strong-ds", type=int, nargs="*", default=[500, 1000],
                    help="d values of the multi-seed strong-centroid section (empty: skip it)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[4],
                    help="realisations per d in the strong-centroid section: one number, or one per --strong-ds")
    args = ap.parse_args(argv)
    ds = [100, 200] if args.quick else args.ds
    if len(args.seeds) not in (1, len(args.strong_ds or [])):
        raise SystemExit(f"--seeds takes one number or one per --strong-ds ({len(args.strong_ds or [])}), "
                         f"got {args.seeds}")
    if args.big_only == ["all"]:
        args.big_only = list(mixtures())
    if args.cache_only:
        finite_run(args.cache_only, mixtures()[args.cache_only], args.big_d, args.cache_seed)
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, conv, conv_flow, proxy = [], [], [], []
    mixes = mixtures()
    fig, axs = plt.subplots(2, len(mixes), figsize=(3.3 * len(mixes), 5.6), sharex=True)
    for j, (name, mix) in enumerate(mixes.items()):
        th = theory_curves(mix, MODEL, TAUS, clock="ridge")
        tth = times({"eps_test": th["eps_test"], "eps_train": th["eps_train"]}, th["eps_train_inf"])
        thf = theory_curves(mix, MODEL, TAUS, clock="flow")  # exact gradient flow (theory_notes/09)
        tthf = times(thf, thf["eps_train_inf"])
        K = mix.num_classes
        dlist = ds + ([args.big_d] if args.big_d and name in args.big_only else [])
        for d in dlist:
            fr = finite_run(name, mix, d)
            tf = times({"eps_test": fr["flow_eps_test"], "eps_train": fr["flow_eps_train"]}, fr["inf"])
            tr = times({"eps_test": fr["ridge_eps_test"], "eps_train": fr["ridge_eps_train"]}, fr["inf"])
            for c in range(K):
                rows.append((name, d, c, *[tr[k][c] for k in TIMES], *[tf[k][c] for k in TIMES]))
                conv.append((name, d, c, *[abs(tr[k][c] / tth[k][c] - 1) for k in TIMES]))
                conv_flow.append((name, d, c, *[abs(tf[k][c] / tthf[k][c] - 1) for k in TIMES]))
                proxy.append((name, d, c, *[tf[k][c] / tr[k][c] for k in TIMES]))
            if d == dlist[-1]:
                for c in range(K):
                    col = f"C{c}"
                    axs[0, j].semilogx(TAUS, fr["ridge_eps_test"][c], col, lw=1)
                    axs[0, j].semilogx(TAUS, th["eps_test"][c], col + "--", lw=1.5)
                    axs[1, j].semilogx(TAUS, fr["ridge_eps_train"][c], col, lw=1, label=f"class {c} d={d}")
                    axs[1, j].semilogx(TAUS, th["eps_train"][c], col + "--", lw=1.5)
        for c in range(K):
            rows.append((name, "theory", c, *[tth[k][c] for k in TIMES], *[tthf[k][c] for k in TIMES]))
        axs[0, j].set_title(name, fontsize=9)
        axs[0, j].set_ylim(-0.1, 3)
        axs[1, j].set_xlabel("τ")
    axs[0, 0].set_ylabel("ε_c^te (ridge time)")
    axs[1, 0].set_ylabel("ε_c^tr (ridge time)")
    axs[1, 0].legend(fontsize=7)
    fig.suptitle("finite d (solid, ridge-time closed form) vs theory (dashed)", fontsize=10)
    fig.tight_layout()
    OUT.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT / "curves_theory_vs_finite.png", dpi=90)
    plt.close(fig)

    # convergence figure: relative gap theory vs finite ridge, per time, max over classes
    fig, axs = plt.subplots(1, 3, figsize=(11, 3.2))
    for i, k in enumerate(TIMES):
        for j, name in enumerate(mixes):
            dd = sorted({r[1] for r in conv if r[0] == name})
            errs = [max(r[3 + i] for r in conv if r[0] == name and r[1] == d) for d in dd]
            axs[i].loglog(dd, errs, "o-", label=name)
        axs[i].loglog(ds, [0.5 * (ds[0] / d) ** 0.5 for d in ds], "k:", label="∝ d^-1/2")
        axs[i].set_title(f"|{k} theory/finite − 1| (max over classes)", fontsize=9)
        axs[i].set_xlabel("d")
    axs[0].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(OUT / "convergence.png", dpi=90)
    plt.close(fig)

    f = lambda x: "—" if not np.isfinite(x) else f"{x:.4g}"
    command = " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    lines = ["# Per-class timescales: theory vs exact finite-d closed form", "",
             f"Generated by `python validation/timescales/report.py {command}`. Model: tanh, "
             f"ψ_p = {MODEL.psi_p}, ψ_n = {MODEL.psi_n}, t = {MODEL.t}; one realisation (seed 0) per d; exact "
             "noise-averaged train moments (Mehler) and exact population moments. Times as defined in "
             "`theory_notes/04_dynamics.md` §4 on a 160-point log grid τ ∈ [1e-3, 1e6].", "",
             "The theory is computed on both clocks: the ridge-time proxy (notes §3), compared with the finite-d "
             "closed form on the same clock (`ridge`), and exact gradient flow (`theory_notes/09_gradient_flow.md`), "
             "compared with the true gradient flow of the same finite model (`flow`).", "",
             "## Times (ridge clock | gradient-flow clock)", "",
             "| mixture | d | class | τ_gen ridge | τ_mem ridge | τ_onset ridge | τ_gen flow | τ_mem flow | "
             "τ_onset flow |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r[0]} | {r[1]} | {r[2]} | " + " | ".join(f(x) for x in r[3:]) + " |")
    lines += ["", "## Relative gap |theory / finite(ridge) − 1|", "",
              "| mixture | d | class | τ_gen | τ_mem | τ_onset |", "|---|---|---|---|---|---|"]
    for r in conv:
        lines.append(f"| {r[0]} | {r[1]} | {r[2]} | " + " | ".join(f(x) for x in r[3:]) + " |")
    lines += ["", "## Relative gap |flow theory / finite(flow) − 1| (exact gradient-flow clock, theory_notes/09)", "",
              "| mixture | d | class | τ_gen | τ_mem | τ_onset |", "|---|---|---|---|---|---|"]
    for r in conv_flow:
        lines.append(f"| {r[0]} | {r[1]} | {r[2]} | " + " | ".join(f(x) for x in r[3:]) + " |")
    lines += ["", "## Clock of the proxy: finite-d gradient-flow time / ridge time", "",
              "| mixture | d | class | τ_gen | τ_mem | τ_onset |", "|---|---|---|---|---|---|"]
    for r in proxy:
        lines.append(f"| {r[0]} | {r[1]} | {r[2]} | " + " | ".join(f(x) for x in r[3:]) + " |")
    ratios = np.array([r[3:] for r in proxy], dtype=float)
    lines += ["", "Range of flow/ridge ratios over all rows: " + ", ".join(
        f"{k} {np.nanmin(ratios[:, i]):.3f}–{np.nanmax(ratios[:, i]):.3f}" for i, k in enumerate(TIMES)) + ".", "",
              "![curves](curves_theory_vs_finite.png)", "", "![convergence](convergence.png)", ""]
    if args.strong_ds and not args.quick:
        lines += strong_section(args.strong_ds, args.seeds) + [""]
    atomic_write_text(OUT / "README.md", "\n".join(lines))
    print(f"wrote {OUT / 'README.md'}")


if __name__ == "__main__":
    main()
