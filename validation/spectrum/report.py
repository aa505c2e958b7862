"""Spectrum of U: asymptotic theory vs finite-d eigenvalues, six cases (two with strong centroids up to ||μ||²/d = 16).

Writes ``validation/spectrum/README.md`` and PNGs. For each case the Gaussian-equivalent U of
:func:`rfdiff.finite.features.train_moments` (per-neuron coefficients at the realised shifts and row norms) is
diagonalised at the ``--ds`` dimensions and compared with :func:`rfdiff.spectral_density` (KS and W1 on
log10 λ, atom and outliers removed analytically); at the ``--exact-ds`` dimensions the true U (noise average
exact, Mehler series) is diagonalised too. Eigenvalues are cached in ``validation/spectrum/cache/`` under
:func:`rfdiff.io.content_key` of everything that determines them (mixture, model, d, seed, method, package
version) and written atomically, so a changed case never reads old eigenvalues and a killed run resumes.
``--only a,b`` runs those cases and keeps the other sections of the README as they were.

Run: ``nice python validation/spectrum/report.py [--quick] [--only v_strong4,vi_strong16] [--ds 250,500,1000]
[--exact-ds 250,500]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import equinox as eqx
import jax
import numpy as np

jax.config.update("jax_enable_x64", True)
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import rfdiff  # noqa: E402
from rfdiff.finite.features import realise, train_moments  # noqa: E402
from rfdiff.io import atomic_write_text, content_key, load_result, save_result  # noqa: E402
from rfdiff.theory.spectrum import (edges_from_eigs, neuron_population, outliers, spectral_density,  # noqa: E402
                             spectral_distance)

OUT = Path(__file__).resolve().parent
PSI_P, PSI_N, T, ACT = 2.5, 1.0, 0.01, "tanh"


def cases():
    model = rfdiff.RFModel(psi_p=PSI_P, psi_n=PSI_N, t=T, activation=ACT)
    return {
        "i_single_two_level": ("(i) single Gaussian, two-level covariance (levels 1 and 4 on halves of the "
                               "coordinates, σ² = 1)",
                               rfdiff.GaussianMixture.single(1.0, levels=[1.0, 4.0], level_weights=[0.5, 0.5])),
        "ii_two_class_var": ("(ii) two balanced classes, σ² = 1 and 4, zero centroids",
                             rfdiff.GaussianMixture.create([0.5, 0.5], [1.0, 4.0])),
        "iii_imbalanced": ("(iii) imbalanced pair π = (0.9, 0.1), equal variances σ² = 1, "
                           "strong orthogonal centroids ||μ||²/d = 1",
                           rfdiff.GaussianMixture.create([0.9, 0.1], [1.0, 1.0]).with_strong_centroids([1.0, 1.0])),
        "iv_three_class": ("(iv) three classes, π = (0.4, 0.35, 0.25), σ² = (1, 2, 0.5), strong orthogonal "
                           "centroids ||μ||²/d = (0.25, 1, 2.25)",
                           rfdiff.GaussianMixture.create([0.4, 0.35, 0.25], [1.0, 2.0, 0.5])
                           .with_strong_centroids([0.25, 1.0, 2.25])),
        "v_strong4": ("(v) two balanced classes σ² = (1.21, 1), strong orthogonal centroids ||μ||²/d = 4",
                      rfdiff.GaussianMixture.create([0.5, 0.5], [1.21, 1.0]).with_strong_centroids([4.0, 4.0])),
        "vi_strong16": ("(vi) two balanced classes σ² = (1.21, 1), strong orthogonal centroids ||μ||²/d = 16",
                        rfdiff.GaussianMixture.create([0.5, 0.5], [1.21, 1.0]).with_strong_centroids([16.0, 16.0])),
    }, model


def cache_key(mix, model, d, method, seed, vectors) -> str:
    """Content key of a cached spectrum: everything that determines it (not the case name), plus the version."""
    return content_key(mixture=mix, model=model, d=int(d), method=method, seed=int(seed), vectors=bool(vectors))


def eigs_cached(name, mix, model, d, method, seed=0, vectors=False):
    path = OUT / "cache" / f"{cache_key(mix, model, d, method, seed, vectors)}.npz"
    if path.exists():
        z, _ = load_result(path)
        return z["ev"], (z["cls"] if "cls" in z else None)
    t0 = time.perf_counter()
    prob = realise(jax.random.key(seed), mix, model, d)
    mo = train_moments(prob, method, per_class=vectors, key=jax.random.key(seed + 1000))
    U = np.asarray(mo.U)
    cls = None
    if vectors:  # per-class Rayleigh weights π_c u_kᵀ U_c u_k / λ_k of each eigenvector
        ev, vec = np.linalg.eigh(U)
        f = np.asarray(prob.class_fractions)
        cls = np.stack([f[c] * np.einsum("ik,ij,jk->k", vec, np.asarray(mo.U_class[c]), vec) / ev
                        for c in range(mix.num_classes)], 1)
    else:
        ev = np.linalg.eigvalsh(U)
    save_result(path, {"ev": ev, **({} if cls is None else {"cls": cls})})  # atomic: a kill leaves no torn cache
    print(f"  {name} {method} d={d}: {time.perf_counter() - t0:.1f} s", flush=True)
    return ev, cls


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="d up to 500 only")
    ap.add_argument("--only", default=None, help="comma-separated case names (other sections are kept)")
    ap.add_argument("--ds", default=None, help="comma-separated d values (default 250,500,1000,2000)")
    ap.add_argument("--exact-ds", default="250", help="d values of the true (Mehler, exact noise average) U")
    args = ap.parse_args(argv)
    exact_ds = [int(x) for x in args.exact_ds.split(",")]
    ds = [250, 500] if args.quick else [250, 500, 1000, 2000]
    if args.ds:
        ds = [int(x) for x in args.ds.split(",")]
    d_hist = 1000 if 1000 in ds else ds[-1]
    allc, model = cases()
    kept = {}
    if args.only:
        names = args.only.split(",")
        unknown = set(names) - set(allc)
        if unknown:
            raise SystemExit(f"unknown case(s) {sorted(unknown)}; choose from {sorted(allc)}")
        old = (OUT / "README.md").read_text() if (OUT / "README.md").exists() else ""
        for sec in old.split("\n## ")[1:]:
            kept[sec.split("\n", 1)[0]] = "## " + sec.rstrip() + "\n"
        allc = {k: v for k, v in cases()[0].items() if k in names or v[0] in kept}
    lines = ["# Spectrum of the feature covariance U: theory vs finite d", "",
             f"Generated by `validation/spectrum/report.py`. Model: {ACT}, t = {T}, ψ_p = {PSI_P}, ψ_n = {PSI_N} "
             f"(p = {PSI_P:g} d, n = {PSI_N:g} d). Finite-d matrices: the Gaussian-equivalent U of "
             "`rfdiff.finite.features.train_moments(method='gaussian_equivalent')` (coefficients at the realised "
             "neuron shifts and row norms), one seed per d; 'true U' = `method='exact'` (noise average done "
             "exactly by the Mehler series). Distances: KS and W1 of log10 λ between the empirical "
             "eigenvalue distribution and the theory CDF, with the atom (round(mass·p) eigenvalues nearest "
             "s̄²) and the predicted outliers removed analytically.", ""]
    if args.only:
        lines += [f"Sections regenerated in the last run: {args.only} (d = {', '.join(map(str, ds))}; true U at "
                  f"d = {', '.join(map(str, exact_ds))}); the other sections are kept from an earlier run of this "
                  "script (cases (i), (ii) have no centroids: one population node, untouched by the change from "
                  "Gauss–Hermite to Sobol shift nodes).", ""]
    for name, (title, mix) in allc.items():
        if args.only and name not in args.only.split(","):
            lines += [kept[title], ""]
            continue
        print(name, flush=True)
        t0 = time.perf_counter()
        pop = neuron_population(mix, model)  # default: 256 scrambled-Sobol shift nodes when M ≠ 0
        # dense log grids: the coupled bulk rises sharply next to the atom, and the CDF is a trapezoid sum;
        # strong centroids put eigenvalues down to ~1e-13 (notes 04 §6), so their grid starts at 1e-15
        lam = (np.geomspace(1e-3, 30.0, 4000) if pop.weights.size == 1 else
               np.geomspace(1e-15 if float(np.max(mix.centroid_gram)) > 2 else 3e-4, 100.0, 1500))
        res = spectral_density(mix, model, lam, quad=pop, d=d_hist)
        t_th = time.perf_counter() - t0
        rows = []
        for d in ds:
            ev, _ = eigs_cached(name, mix, model, d, "gaussian_equivalent")
            # the bulk does not depend on d; only the outliers do
            r_d = eqx.tree_at(lambda r: r.outliers, res, outliers(mix, model, d, quad=pop,
                                                                  bulk_top=float(res.edges[-1, 1])))
            rows.append((d, spectral_distance(ev, r_d), spectral_distance(ev, r_d, "w1"), ev, r_d))
        true_rows = []  # the true U against the same theory (outliers located at that d)
        for d in exact_ds:
            ev_true, _ = eigs_cached(name, mix, model, d, "exact")
            r_d = eqx.tree_at(lambda r: r.outliers, res, outliers(mix, model, d, quad=pop,
                                                                  bulk_top=float(res.edges[-1, 1])))
            true_rows.append((d, spectral_distance(ev_true, r_d), spectral_distance(ev_true, r_d, "w1")))
        ev_h, cls_h = eigs_cached(name, mix, model, d_hist, "gaussian_equivalent", seed=1, vectors=True)
        n_atom = int(round(res.atom_mass * ev_h.size))
        emp_edges = edges_from_eigs(ev_h, theory_edges=res.edges, atom_location=res.atom_location,
                                    atom_count=n_atom, n_outliers=res.outliers.size)
        # ---- figure: density over histogram + per-class parts, and distance vs d
        fig, ax = plt.subplots(1, 3, figsize=(13, 3.6))
        keep = np.argsort(np.abs(ev_h - res.atom_location))[n_atom:] if n_atom else np.arange(ev_h.size)
        keep = np.sort(keep)[: keep.size - res.outliers.size]
        bins = np.linspace(np.log10(lam[0]), np.log10(lam[-1]), 110)
        ax[0].hist(np.log10(ev_h[keep]), bins=bins, density=True, color="0.75", label=f"GE U, d={d_hist}")
        ax[0].plot(np.log10(lam), np.log(10) * lam * res.density / res.continuous_mass, "k", lw=1.2,
                   label="theory")
        for o in res.outliers:
            ax[0].axvline(np.log10(o), color="r", ls=":", lw=1)
        ax[0].set(xlabel="log10 λ", ylabel="density of log10 λ (atom removed)", title=name,
                  xlim=(np.log10(lam[0]), np.log10(max(lam[-1], 1.5 * res.outliers.max(initial=0.0)))))
        ax[0].legend(fontsize=7)
        for c in range(mix.num_classes):
            w = cls_h[keep, c]
            ax[1].hist(np.log10(ev_h[keep]), bins=bins, weights=w / keep.size / np.diff(bins)[0]
                       / res.continuous_mass, histtype="step", color=f"C{c}")
            ax[1].plot(np.log10(lam), np.log(10) * lam * res.class_density[:, c] / res.continuous_mass,
                       color=f"C{c}", lw=1, label=f"class {c}")
        ax[1].set(xlabel="log10 λ", title="per-class parts ρ_c (lines theory, steps finite d)")
        ax[1].legend(fontsize=7)
        ax[2].loglog([r[0] for r in rows], [r[1] for r in rows], "o-", label="KS")
        ax[2].loglog([r[0] for r in rows], [r[2] for r in rows], "s-", label="W1 (log10 λ)")
        dd = np.array([r[0] for r in rows], float)
        ax[2].loglog(dd, rows[0][1] * (dd / dd[0]) ** -0.5, "k:", lw=0.8, label="∝ d^-1/2")
        ax[2].set(xlabel="d", title="distance theory vs GE U")
        ax[2].legend(fontsize=7)
        fig.tight_layout()
        png = OUT / f"{name}.png"
        fig.savefig(png, dpi=90)
        plt.close(fig)
        # ---- report
        lines += [f"## {title}", "", f"![{name}]({png.name})", "",
                  f"Theory: {lam.size}-point log grid solved in {t_th:.1f} s (incl. compile), max residual "
                  f"{res.residual.max():.1e}, atom mass {res.atom_mass:.4f} at s̄² = {res.atom_location:.5f}, "
                  f"continuous mass on the grid {res.continuous_mass:.4f} (1 − atom = {1 - res.atom_mass:.4f}).",
                  "", "| d | KS | W1 (log10 λ) |", "|---|---|---|"]
        lines += [f"| {d} | {ks:.4f} | {w1:.4f} |" for d, ks, w1, _, _ in rows]
        lines += ["", "True U (noise average exact, Mehler series) against the same theory:", "",
                  "| d | KS | W1 (log10 λ) |", "|---|---|---|"]
        lines += [f"| {d} | {ks:.4f} | {w1:.4f} |" for d, ks, w1 in true_rows]
        lines += ["",
                  f"Bulk edges, theory vs GE U at d = {d_hist} (each eigenvalue assigned to the nearest "
                  "theory interval in log λ):", "",
                  "| theory | finite d |", "|---|---|"]
        for i in range(max(len(res.edges), len(emp_edges))):
            th = f"[{res.edges[i, 0]:.4g}, {res.edges[i, 1]:.4g}]" if i < len(res.edges) else "—"
            em = f"[{emp_edges[i, 0]:.4g}, {emp_edges[i, 1]:.4g}]" if i < len(emp_edges) else "—"
            lines.append(f"| {th} | {em} |")
        if res.outliers.size:
            top = np.sort(ev_h)[-res.outliers.size:]
            lines += ["", f"Outliers at d = {d_hist}: theory {np.array2string(res.outliers, precision=4)}, "
                      f"finite d {np.array2string(top, precision=4)}, relative error "
                      f"{np.array2string(res.outliers / top - 1, precision=3)}."]
        lines.append("")
        atomic_write_text(OUT / "README.md", "\n".join(lines))
    print("wrote", OUT / "README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
