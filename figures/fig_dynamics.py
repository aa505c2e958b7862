"""Figures of the per-class learning dynamics (asymptotic ridge-time theory, ``rfdiff.theory.curves``).

* ``dynamics_curves.png``        per-class ε^te, ε^tr vs τ (σ_1/σ_2 = 2, balanced) and the three times;
* ``dynamics_tau_vs_sigma.png``  τ_gen,c, τ_mem,c vs σ_1/σ_2 (balanced, weak centroids);
* ``dynamics_tau_vs_pi.png``     τ_c vs π_1 at σ_1/σ_2 = 1.1, weak vs strong (||μ||²/d = 16) centroids;
* ``dynamics_phase.png``         sign of log τ_1/τ_2 over (σ_1/σ_2, π_1), both regimes, with the brentq reversal line;
* ``dynamics_taumem_vs_psin.png`` τ_mem and τ_gen vs ψ_n (one class), with local exponents;
* ``dynamics_taumem_vs_nc.png``  τ_mem,c vs n_c/d in a mixture: vary ψ_n at fixed π, or π at fixed ψ_n.
"""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)

from rfdiff import GaussianMixture, RFModel  # noqa: E402
from rfdiff.theory.curves import theory_curves  # noqa: E402
from rfdiff.theory.phase import chunk_size_for, reversal_line, timescale_fn  # noqa: E402
from rfdiff.sweep import phase_diagram  # noqa: E402
from rfdiff.theory.timescales import curve_timescales, scaling_exponents  # noqa: E402

MODEL = RFModel(2.0, 1.0, 0.01, "tanh")
DPI = 100
BASE = GaussianMixture.create([0.5, 0.5], [1.0, 1.0])
_FNS: dict = {}


def _fn(sep, nq, sigmas):
    """One theory function per centroid regime and σ-ratio set, called with keys {sigma_ratio, pi1}: its neuron
    populations are built once per σ ratio (``timescale_fn(grid=...)``), not once per point."""
    key = (sep, nq, tuple(np.asarray(sigmas, dtype=float)))
    if key not in _FNS:
        raw = timescale_fn(BASE, MODEL, n_quad=nq, grid={"sigma_ratio": sigmas, "separation": [sep]})
        fn = lambda q: raw({**q, "separation": sep})  # noqa: E731
        _FNS[key] = (fn, jax.jit(fn))
    return _FNS[key]


def _curves(outdir, quick):
    import matplotlib.pyplot as plt

    taus = np.logspace(-3, 6, 80 if quick else 200)
    mix = GaussianMixture.create([0.5, 0.5], [4.0, 1.0])
    th = theory_curves(mix, MODEL, taus)
    ts = curve_timescales(taus, th["eps_test"], th["eps_train"], th["eps_train_inf"])
    fig, axs = plt.subplots(1, 2, figsize=(9, 3.4))
    for c in range(2):
        lab = f"class {c} (σ={np.sqrt(float(mix.variances[c])):.0f})"
        axs[0].semilogx(taus, th["eps_test"][c], f"C{c}", label=lab)
        axs[1].semilogx(taus, th["eps_train"][c], f"C{c}", label=lab)
        axs[0].axvline(float(ts.tau_gen[c]), color=f"C{c}", ls=":")
        axs[1].axvline(float(ts.tau_mem[c]), color=f"C{c}", ls=":")
        axs[1].axvline(float(ts.tau_onset[c]), color=f"C{c}", ls="--", lw=0.8)
    axs[0].set(xlabel="τ", ylabel="ε_c^te", title="test (dotted: τ_gen,c)", ylim=(0, 3))
    axs[1].set(xlabel="τ", ylabel="ε_c^tr", title="train (dotted: τ_mem,c; dashed: τ_onset,c)")
    axs[0].legend(fontsize=8)
    fig.suptitle(f"ridge-time theory, tanh, ψ_p={MODEL.psi_p}, ψ_n={MODEL.psi_n}, t={MODEL.t}", fontsize=9)
    fig.tight_layout()
    path = outdir / "dynamics_curves.png"
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def _vs_sigma(outdir, quick):
    import matplotlib.pyplot as plt

    rs = np.linspace(0.5, 2.0, 8 if quick else 32)
    out = phase_diagram(_fn(0.0, 1, rs)[0], {"sigma_ratio": rs, "pi1": [0.5]}, progress=False,
                        chunk_size=chunk_size_for(1, 2))
    out = {k: v[:, 0] for k, v in out.items()}
    fig, axs = plt.subplots(1, 3, figsize=(11, 3.2))
    for i, k in enumerate(["tau_gen", "tau_mem", "tau_onset"]):
        for c in range(2):
            axs[i].semilogy(rs, out[k][:, c], f"C{c}o-", ms=3, label=f"class {c}")
        axs[i].set(xlabel="σ_1/σ_2 (class 0 over class 1)", title=k)
    axs[0].legend(fontsize=8)
    fig.suptitle("balanced, weak centroids: the higher-variance class is learned first", fontsize=9)
    fig.tight_layout()
    path = outdir / "dynamics_tau_vs_sigma.png"
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def _vs_pi(outdir, quick):
    import matplotlib.pyplot as plt

    pis = np.linspace(0.05, 0.95, 7 if quick else 25)
    fig, axs = plt.subplots(2, 3, figsize=(11, 5.6), sharex=True)
    for row, (sep, nq) in enumerate([(0.0, 1), (16.0, 32 if quick else 256)]):
        out = phase_diagram(_fn(sep, nq, [1.1])[0], {"sigma_ratio": [1.1], "pi1": pis}, progress=False,
                            chunk_size=chunk_size_for(nq, 2))
        out = {k: v[0] for k, v in out.items()}
        for i, k in enumerate(["tau_gen", "tau_mem", "tau_onset"]):
            for c in range(2):
                axs[row, i].semilogy(pis, out[k][:, c], f"C{c}o-", ms=3, label=f"class {c}")
            axs[row, i].set_title(f"{k}, ||μ||²/d = {sep:g}", fontsize=9)
        axs[row, 0].set_ylabel("τ")
    for i in range(3):
        axs[1, i].set_xlabel("π_1 (class 0 = higher variance, σ_1/σ_2 = 1.1)")
    axs[0, 0].legend(fontsize=8)
    fig.tight_layout()
    path = outdir / "dynamics_tau_vs_pi.png"
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def _phase(outdir, quick):
    import matplotlib.pyplot as plt

    n = 8 if quick else 48
    rs, pis = np.linspace(0.7, 1.6, n), np.linspace(0.05, 0.95, n)
    fig, axs = plt.subplots(2, 3, figsize=(11, 6.4), sharex=True, sharey=True)
    for row, (sep, nq) in enumerate([(0.0, 1), (16.0, 32 if quick else 256)]):
        fn, jfn = _fn(sep, nq, rs)  # the reversal lines below use a subset of rs: in the table
        out = phase_diagram(fn, {"sigma_ratio": rs, "pi1": pis}, progress=False, chunk_size=chunk_size_for(nq, 2))
        for i, k in enumerate(["tau_gen", "tau_mem", "tau_onset"]):
            lr = np.log(out[k][..., 0] / out[k][..., 1])
            lim = np.nanmax(np.abs(lr[np.isfinite(lr)])) if np.isfinite(lr).any() else 1.0
            im = axs[row, i].pcolormesh(pis, rs, lr, cmap="RdBu_r", vmin=-lim, vmax=lim, shading="nearest")
            fig.colorbar(im, ax=axs[row, i], fraction=0.046)
            line = reversal_line(BASE, MODEL, rs[:: 3 if quick else 4], which=k, fn=jfn,
                                 bracket=(pis[0], pis[-1]), num_scan=7 if quick else 13)
            axs[row, i].plot(line, rs[:: 3 if quick else 4], "k.-", label="brentq reversal")
            axs[row, i].set_title(f"log τ_0/τ_1: {k}, ||μ||²/d={sep:g}", fontsize=8)
        axs[row, 0].set_ylabel("σ_1/σ_2")
    for i in range(3):
        axs[1, i].set_xlabel("π_1")
    axs[1, 0].legend(fontsize=7)
    fig.suptitle("red: class 0 slower. Black: root-found π_1 where the order flips (absent: no flip)", fontsize=9)
    fig.tight_layout()
    path = outdir / "dynamics_phase.png"
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def _taumem_vs_psin(outdir, quick):
    import matplotlib.pyplot as plt

    psin = np.logspace(np.log10(0.5), np.log10(32), 6 if quick else 14)
    fig, axs = plt.subplots(1, 2, figsize=(9, 3.4))
    ts = [0.01, 0.05]
    fn = timescale_fn(GaussianMixture.create([1.0], [1.0]), RFModel(32.0, 2.0, 0.01, "tanh"), n_quad=1,
                      taus=np.logspace(-3, 7, 120), grid={"t": ts})
    out = phase_diagram(fn, {"t": ts, "psi_n": psin}, progress=False, chunk_size=chunk_size_for(1, 1))
    for j, (t, col) in enumerate(zip(ts, ["C0", "C3"])):
        tm, tg = out["tau_mem"][j, :, 0], out["tau_gen"][j, :, 0]
        local, slope = scaling_exponents(psin, tm)
        axs[0].loglog(psin, tm, col + "o-", ms=3, label=f"τ_mem, t={t} (fit slope {slope:.2f})")
        axs[0].loglog(psin, tg, col + "s--", ms=3, label=f"τ_gen, t={t}")
        axs[1].semilogx(psin, local, col + "o-", ms=3, label=f"t={t}")
    axs[0].set(xlabel="ψ_n = n/d", ylabel="τ", title="one class, ψ_p = 32")
    axs[0].legend(fontsize=7)
    axs[1].axhline(1.0, color="k", ls=":")
    axs[1].set(xlabel="ψ_n", ylabel="d log τ_mem / d log ψ_n", title="local exponent (1 = τ_mem ∝ n)")
    axs[1].legend(fontsize=8)
    fig.tight_layout()
    path = outdir / "dynamics_taumem_vs_psin.png"
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def _taumem_vs_nc(outdir, quick):
    """Does τ_mem,c depend on the class count n_c = π_c n alone? Vary ψ_n at π = ½, and π_1 at fixed ψ_n."""
    import matplotlib.pyplot as plt

    fn = timescale_fn(GaussianMixture.create([0.5, 0.5], [4.0, 1.0]), RFModel(8.0, 2.0, 0.01, "tanh"), n_quad=1,
                      taus=np.logspace(-3, 7, 100), grid={})  # one population: no population axis
    m = 5 if quick else 12
    psin = np.logspace(np.log10(0.25), np.log10(8), m)
    pis = np.linspace(0.1, 0.9, m)
    out = phase_diagram(fn, {"psi_n": np.concatenate([psin, [2.0]]), "pi1": np.concatenate([pis, [0.5]])},
                        progress=False, chunk_size=chunk_size_for(1, 2))
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    for c, mk in [(0, "o"), (1, "s")]:
        nc_a = psin * 0.5
        ax.loglog(nc_a, out["tau_mem"][:m, -1, c], f"C{c}{mk}-", ms=3, label=f"class {c}: vary ψ_n (π=½)")
        pic = pis if c == 0 else 1 - pis
        ax.loglog(2.0 * pic, out["tau_mem"][-1, :m, c], f"C{c}{mk}--", ms=3, mfc="none",
                  label=f"class {c}: vary π_1 (ψ_n=2)")
    from matplotlib.ticker import NullFormatter

    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set(xlabel="n_c / d", ylabel="τ_mem,c", title="σ = (2, 1), weak centroids, ψ_p = 8")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = outdir / "dynamics_taumem_vs_nc.png"
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def make(outdir: Path, quick: bool) -> list[Path]:
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    with jax.enable_x64(True):
        return [_curves(outdir, quick), _vs_sigma(outdir, quick), _vs_pi(outdir, quick), _phase(outdir, quick),
                _taumem_vs_psin(outdir, quick), _taumem_vs_nc(outdir, quick)]
