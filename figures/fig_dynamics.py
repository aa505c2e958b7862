"""Figures of the per-class learning dynamics (asymptotic ridge-time theory, ``rfdiff.theory.curves``).

* ``dynamics_curves``        per-class ε^te, ε^tr vs τ (σ_1/σ_2 = 2, balanced) and the three times;
* ``dynamics_tau_vs_sigma``  τ_gen,c, τ_mem,c vs σ_1/σ_2 (balanced, weak centroids);
* ``dynamics_tau_vs_pi``     τ_c vs π_1 at σ_1/σ_2 = 1.1, weak vs strong (||μ||²/d = 16) centroids;
* ``dynamics_phase``         log10 τ_1/τ_2 over (σ_1/σ_2, π_1), both regimes, with the brentq reversal line;
* ``dynamics_taumem_vs_psin`` τ_mem and τ_gen vs ψ_n (one class), with local exponents;
* ``dynamics_taumem_vs_nc``  τ_mem,c vs n_c/d in a mixture: vary ψ_n at fixed π, or π at fixed ψ_n.

Classes are 1-based (class 1 = the first of the mixture) in the house colours. Each ``_name(quick)`` computes
first, then draws, and returns ``(name, Figure)``; ``make`` yields them (figures/make_figures.py saves them).
"""

from __future__ import annotations

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)

from rfdiff import GaussianMixture, RFModel  # noqa: E402
from rfdiff.theory.curves import theory_curves  # noqa: E402
from rfdiff.theory.phase import chunk_size_for, reversal_line, timescale_fn  # noqa: E402
from rfdiff.sweep import phase_diagram  # noqa: E402
from rfdiff.theory.timescales import curve_timescales, scaling_exponents  # noqa: E402

from rfdiff.plots import class_color, log_axis, plot_result  # noqa: E402

MODEL = RFModel(2.0, 1.0, 0.01, "tanh")
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


def _curves(quick):
    import matplotlib.pyplot as plt

    taus = np.logspace(-3, 6, 80 if quick else 200)
    mix = GaussianMixture.create([0.5, 0.5], [4.0, 1.0])
    th = theory_curves(mix, MODEL, taus, clock="ridge")
    ts = curve_timescales(taus, th["eps_test"], th["eps_train"], th["eps_train_inf"])
    fig, axs = plt.subplots(1, 2, figsize=(9, 3.4))
    for c in range(2):
        lab, col = f"class {c + 1} (σ={np.sqrt(float(mix.variances[c])):.0f})", class_color(c)
        axs[0].plot(taus, th["eps_test"][c], color=col, label=lab)
        axs[1].plot(taus, th["eps_train"][c], color=col, label=lab)
        axs[0].axvline(float(ts.tau_gen[c]), color=col, ls=":")
        axs[1].axvline(float(ts.tau_mem[c]), color=col, ls=":")
        axs[1].axvline(float(ts.tau_onset[c]), color=col, ls="--", lw=0.8)
    axs[0].set(xlabel="training time τ", ylabel="test error ε_c^te", title="test (dotted: τ_gen,c)", ylim=(0, 3))
    axs[1].set(xlabel="training time τ", ylabel="train error ε_c^tr",
               title="train (dotted: τ_mem,c; dashed: τ_onset,c)")
    for ax in axs:
        log_axis(ax, "x")
    axs[0].legend()
    fig.suptitle(f"ridge-time theory, tanh, ψ_p={MODEL.psi_p}, ψ_n={MODEL.psi_n}, t={MODEL.t}")
    return "dynamics_curves", fig


def _vs_sigma(quick):
    import matplotlib.pyplot as plt

    rs = np.linspace(0.5, 2.0, 8 if quick else 32)
    out = phase_diagram(_fn(0.0, 1, rs)[0], {"sigma_ratio": rs, "pi1": [0.5]}, progress=False,
                        chunk_size=chunk_size_for(1, 2))
    out = {k: v[:, 0] for k, v in out.items()}
    fig, axs = plt.subplots(1, 3, figsize=(11, 3.2))
    for i, k in enumerate(["tau_gen", "tau_mem", "tau_onset"]):
        for c in range(2):
            axs[i].plot(rs, out[k][:, c], "o-", color=class_color(c), ms=3, label=f"class {c + 1}")
        axs[i].set(xlabel="σ_1/σ_2 (class 1 over class 2)", title=_TITLES[k])
        log_axis(axs[i], "y")
    axs[0].set_ylabel("training time τ")
    axs[0].legend()
    fig.suptitle("balanced, weak centroids: the higher-variance class is learned first")
    return "dynamics_tau_vs_sigma", fig


def _vs_pi(quick):
    import matplotlib.pyplot as plt

    pis = np.linspace(0.05, 0.95, 7 if quick else 25)
    regimes = [(0.0, 1), (16.0, 32 if quick else 256)]
    outs = []
    for sep, nq in regimes:
        out = phase_diagram(_fn(sep, nq, [1.1])[0], {"sigma_ratio": [1.1], "pi1": pis}, progress=False,
                            chunk_size=chunk_size_for(nq, 2))
        outs.append({k: v[0] for k, v in out.items()})
    fig, axs = plt.subplots(2, 3, figsize=(11, 5.6), sharex=True)
    for row, ((sep, _), out) in enumerate(zip(regimes, outs)):
        for i, k in enumerate(["tau_gen", "tau_mem", "tau_onset"]):
            for c in range(2):
                axs[row, i].plot(pis, out[k][:, c], "o-", color=class_color(c), ms=3, label=f"class {c + 1}")
            axs[row, i].set_title(f"{_TITLES[k]}, ||μ||²/d = {sep:g}")
            log_axis(axs[row, i], "y")
        axs[row, 0].set_ylabel("training time τ")
    for i in range(3):
        axs[1, i].set_xlabel("π_1 (class 1 = higher variance, σ_1/σ_2 = 1.1)")
    axs[0, 0].legend()
    return "dynamics_tau_vs_pi", fig


_TITLES = {"tau_gen": "generalisation time τ_gen", "tau_mem": "memorisation time τ_mem",
           "tau_onset": "onset of memorisation τ_onset"}


def _phase_dataset(out, rs, pis, sep):
    """The phase-diagram arrays as a labelled result Dataset (the contract of rfdiff.plots.plot_result)."""
    import xarray as xr

    ds = xr.Dataset({k: (("sigma_ratio", "pi1", "class"), out[k]) for k in _TITLES},
                    coords={"sigma_ratio": rs, "pi1": pis, "class": [1, 2], "class_name": ("class", ["class 1",
                                                                                                     "class 2"])})
    for k, long in _TITLES.items():
        ds[k].attrs.update(long_name=long, units="τ (ridge-time clock)")
    ds["sigma_ratio"].attrs.update(long_name="σ_1/σ_2", units="1")
    ds["pi1"].attrs.update(long_name="π_1 (class 1's proportion)", units="1")
    ds.attrs.update(rfdiff_kind="phase_diagram", title=f"||μ||²/d = {sep:g}")
    return ds


def _phase(quick):
    import matplotlib.pyplot as plt

    n = 8 if quick else 48
    rs, pis = np.linspace(0.7, 1.6, n), np.linspace(0.05, 0.95, n)
    rows = []
    for sep, nq in [(0.0, 1), (16.0, 32 if quick else 256)]:
        fn, jfn = _fn(sep, nq, rs)  # the reversal lines below use a subset of rs: in the table
        out = phase_diagram(fn, {"sigma_ratio": rs, "pi1": pis}, progress=False, chunk_size=chunk_size_for(nq, 2))
        lines = {k: reversal_line(BASE, MODEL, rs[:: 3 if quick else 4], which=k, fn=jfn,
                                  bracket=(pis[0], pis[-1]), num_scan=7 if quick else 13) for k in _TITLES}
        rows.append((sep, out, lines))
    fig, axs = plt.subplots(2, 3, figsize=(12, 6.8), sharex=True, sharey=True)
    for row, (sep, out, lines) in enumerate(rows):
        ds = _phase_dataset(out, rs, pis, sep)
        for i, k in enumerate(_TITLES):
            ax = axs[row, i]
            plot_result(ds, ax=ax, variable=k)  # log10 τ_1/τ_2 map, level-0 contour, labelled colour bar
            if ax.get_legend() is not None:  # one legend for the figure, below
                ax.get_legend().remove()
            ax.plot(lines[k], rs[:: 3 if quick else 4], "k.", ms=4)
            ax.set_title(f"{_TITLES[k]}, ||μ||²/d = {sep:g}")
            if row == 0:
                ax.set_xlabel("")
            if i:
                ax.set_ylabel("")
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [Line2D([], [], color="k", label="level 0 (order reverses)"),
               Line2D([], [], color="k", marker=".", ls="none", label="brentq reversal π_1")]
    if any(not np.isfinite(out[k]).all() for _, out, _ in rows for k in _TITLES):  # grey cells exist
        handles.append(Patch(facecolor="0.8", label="not finite (τ = ∞)"))
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles))
    fig.suptitle("log10 τ_1/τ_2 over (π_1, σ_1/σ_2): red, class 1 slower; blue, class 2 slower")
    return "dynamics_phase", fig


def _taumem_vs_psin(quick):
    import matplotlib.pyplot as plt

    psin = np.logspace(np.log10(0.5), np.log10(32), 6 if quick else 14)
    ts = [0.01, 0.05]
    fn = timescale_fn(GaussianMixture.create([1.0], [1.0]), RFModel(32.0, 2.0, 0.01, "tanh"), n_quad=1,
                      taus=np.logspace(-3, 7, 120), grid={"t": ts})
    out = phase_diagram(fn, {"t": ts, "psi_n": psin}, progress=False, chunk_size=chunk_size_for(1, 1))
    fig, axs = plt.subplots(1, 2, figsize=(9, 3.4))
    for j, (t, col) in enumerate(zip(ts, ["k", "0.55"])):  # one class: diffusion times in grey levels
        tm, tg = out["tau_mem"][j, :, 0], out["tau_gen"][j, :, 0]
        local, slope = scaling_exponents(psin, tm)
        axs[0].plot(psin, tm, "o-", color=col, ms=3, label=f"τ_mem, t={t} (fit slope {slope:.2f})")
        axs[0].plot(psin, tg, "s--", color=col, ms=3, label=f"τ_gen, t={t}")
        axs[1].plot(psin, local, "o-", color=col, ms=3, label=f"t={t}")
    log_axis(axs[0], "x")
    log_axis(axs[0], "y")
    log_axis(axs[1], "x")
    axs[0].set(xlabel="ψ_n = n/d", ylabel="training time τ", title="one class, ψ_p = 32")
    axs[0].legend(fontsize=7)
    axs[1].axhline(1.0, color="k", ls=":")
    axs[1].set(xlabel="ψ_n = n/d", ylabel="d log τ_mem / d log ψ_n", title="local exponent (1 = τ_mem ∝ n)")
    axs[1].legend()
    return "dynamics_taumem_vs_psin", fig


def _taumem_vs_nc(quick):
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
        ax.plot(nc_a, out["tau_mem"][:m, -1, c], mk + "-", color=class_color(c), ms=3,
                label=f"class {c + 1}: vary ψ_n (π=½)")
        pic = pis if c == 0 else 1 - pis
        ax.plot(2.0 * pic, out["tau_mem"][-1, :m, c], mk + "--", color=class_color(c), ms=3, mfc="none",
                label=f"class {c + 1}: vary π_1 (ψ_n=2)")
    log_axis(ax, "x")
    log_axis(ax, "y")
    ax.set(xlabel="n_c / d", ylabel="memorisation time τ_mem,c", title="σ = (2, 1), weak centroids, ψ_p = 8")
    ax.legend(fontsize=7)
    return "dynamics_taumem_vs_nc", fig


def make(quick: bool = False):
    """Yields (name, Figure) for the six dynamics figures, each computed then drawn."""
    with jax.enable_x64(True):
        for one in (_curves, _vs_sigma, _vs_pi, _phase, _taumem_vs_psin, _taumem_vs_nc):
            yield one(quick)
