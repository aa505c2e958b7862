"""Figures drawn from plain arrays (the in-memory results of the theory and simulation functions).

Each function draws into ``ax`` (or makes its own figure in the house style) and returns the Figure; given a
``path`` it also writes ``path`` as PDF + 300-dpi PNG (:func:`save_figure`), closes a figure it made, and returns
the PNG path (the PDF lies beside it). Classes are shown 1-based (``class 1`` …) or by the ``labels`` given, in
the fixed per-class colours of :func:`class_color`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._base import axes_for, class_color, class_names, log_axis, save_figure, styled

__all__ = ["draw_times_vs_ratio", "plot_times_vs_ratio", "plot_phi", "plot_spectrum", "plot_comparison",
           "plot_order_pairs"]


def _done(fig, path, own: bool):
    if path is None:
        return fig
    png = save_figure(fig, Path(path))[1]
    if own:
        import matplotlib.pyplot as plt

        plt.close(fig)
    return png


def draw_times_vs_ratio(ax, ratio, theory, *, sim=None, se=None, ratio_fine=None, theory_fine=None,
                        labels=None) -> None:
    """Draw t_S,c against the imbalance ratio into ``ax``: theory curve (``theory_fine`` (R', K) on
    ``ratio_fine``), theory at the simulated ratios (open circles, ``theory`` (R, K)), simulation ± standard error
    (filled squares, ``sim``/``se`` (R, K)). Infinite simulated times (class committed from the start) are
    up-triangles on the top edge, explained in the legend."""
    ratio, theory = np.asarray(ratio, float), np.asarray(theory, float)
    k = theory.shape[1]
    names = class_names(k, labels)
    finite = [v for a in (theory_fine, sim) if a is not None for v in np.ravel(a) if np.isfinite(v)]
    top = max(finite) + 0.15 if finite else 1.0
    any_inf = False
    for c in range(k):
        col = class_color(c)
        if theory_fine is not None:
            ax.plot(ratio_fine, np.asarray(theory_fine)[:, c], color=col, label=f"{names[c]} theory")
        ax.plot(ratio, np.where(np.isfinite(theory[:, c]), theory[:, c], np.nan), "o", mfc="none", color=col, ms=6,
                label=None if theory_fine is not None else f"{names[c]} theory")
        if sim is not None:
            s = np.asarray(sim, float)[:, c]
            fin = np.isfinite(s)
            ax.errorbar(ratio[fin], s[fin], yerr=None if se is None else np.asarray(se, float)[fin, c], fmt="s",
                        ms=4, color=col, label=f"{names[c]} simulation")
            inf = np.isinf(s)
            if inf.any():
                any_inf = True
                ax.plot(ratio[inf], np.full(inf.sum(), top), "^", color=col, ms=6)
    if any_inf:
        ax.plot([], [], "^", color="0.4", label="t_S = ∞ (committed from the start)")
    ax.set_xlabel("imbalance ratio π_max / π_min")
    ax.set_ylabel("speciation time t_S,c")
    ax.set_ylim(top=top + 0.05)
    if ratio.size and np.nanmax(ratio) / max(np.nanmin(ratio), 1e-300) >= 10:
        log_axis(ax, "x")
    ax.legend()


def plot_times_vs_ratio(res: dict, path=None, title: str = "", ax=None, labels=None):
    """t_S,c against the imbalance ratio from :func:`rfdiff.simulate.speciation.speciation_vs_ratio`'s dict
    (``ratio``, ``theory`` and optionally ``ratio_fine``/``theory_fine``, ``sim``/``se``); see
    :func:`draw_times_vs_ratio`."""
    with styled(ax):
        fig, (a,) = axes_for(ax, 1, size=(5.0, 3.6))
        draw_times_vs_ratio(a, res["ratio"], res["theory"], sim=res.get("sim"), se=res.get("se"),
                            ratio_fine=res.get("ratio_fine"), theory_fine=res.get("theory_fine"), labels=labels)
        a.set_title(title)
        return _done(fig, path, ax is None)


def plot_phi(t, phi_theory, path=None, clone: dict | None = None, labels=None, title: str = "", ax=None):
    """φ_c(t) per class: theory curves (``phi_theory`` (T, K) on times ``t``) and cloning points ± SE
    (``clone`` with ``t``, ``phi``, ``se``)."""
    phi_theory = np.asarray(phi_theory)
    names = class_names(phi_theory.shape[1], labels)
    with styled(ax):
        fig, (a,) = axes_for(ax, 1, size=(5.0, 3.6))
        for c in range(phi_theory.shape[1]):
            col = class_color(c)
            a.plot(t, phi_theory[:, c], color=col, label=f"{names[c]} theory")
            if clone is not None:
                a.errorbar(clone["t"], clone["phi"][:, c], yerr=clone["se"][:, c], fmt="s", ms=4, color=col,
                           label=f"{names[c]} cloning")
        a.set_xlabel("backward time t")
        a.set_ylabel("φ_c(t) = P(clones agree | one ends in c)")
        a.set_title(title)
        a.legend()
        return _done(fig, path, ax is None)


def plot_spectrum(res, path=None, title: str = "", ax=None, labels=None):
    """λρ(λ) of a :class:`rfdiff.theory.spectrum.SpectrumResult` and its per-class parts on a log-λ axis; the
    atom (grey, dotted) and outliers (red, dotted) marked."""
    k = res.class_density.shape[1]
    names = class_names(k, labels)
    with styled(ax):
        fig, (a,) = axes_for(ax, 1, size=(5.5, 3.6))
        a.plot(res.lam, res.lam * res.density, "k", label="λρ(λ)")
        for c in range(k):
            a.plot(res.lam, res.lam * res.class_density[:, c], lw=1, ls="--", color=class_color(c),
                   label=f"{names[c]} part")
        if res.atom_mass > 0:
            a.axvline(res.atom_location, color="0.5", ls=":", lw=1, label=f"atom (mass {res.atom_mass:.3g})")
        for i, o in enumerate(np.ravel(res.outliers)):
            a.axvline(o, color="r", ls=":", lw=1, label="outliers" if i == 0 else None)
        log_axis(a, "x")
        a.set(xlabel="eigenvalue λ of U", ylabel="λ ρ(λ)", title=title)
        a.legend()
        return _done(fig, path, ax is None)


def plot_comparison(cmp: dict, path=None, axes=None, labels=None):
    """Per-class test and train ε_c(τ): theory lines and simulation points from
    :func:`rfdiff.simulate.compare.compare_timescales`; dotted verticals at the theory τ_gen (test panel) and
    τ_mem (train panel) where finite. ``axes``: two Axes, or None for a new figure."""
    k = np.asarray(cmp["eps_train_theory"]).shape[0]
    names = class_names(k, labels)
    with styled(axes):
        fig, axs = axes_for(axes, 2, size=(8.5, 3.3), what="plot_comparison")
        for c in range(k):
            col = class_color(c)
            for a, key, tkey in zip(axs, ("eps_test", "eps_train"), ("tau_gen", "tau_mem")):
                a.plot(cmp["tau_theory"], cmp[f"{key}_theory"][c], color=col, label=f"{names[c]} theory")
                a.plot(cmp["tau_sim"], cmp[f"{key}_sim"][c], "o", color=col, ms=3, label=f"{names[c]} simulation")
                tt = cmp.get("theory", {}).get(tkey)
                if tt is not None and np.isfinite(tt[c]):
                    a.axvline(tt[c], color=col, ls=":", lw=0.8)
        for a, name in zip(axs, ("test error ε_c^te (dotted: τ_gen,c)", "train error ε_c^tr (dotted: τ_mem,c)")):
            a.axhline(0, color="k", lw=0.4)
            log_axis(a, "x")
            a.set_xlabel("training time τ")
            a.set_title(name)
        axs[0].set_ylabel("normalised error ε_c")
        axs[0].legend()
        return _done(fig, path, axes is None)


def plot_order_pairs(xs, ys, pairs, *, names, xlabel: str, ylabel: str, path=None, lim: float = 1.0):
    """log10(τ_1/τ_2) maps of pairs of definitions: threshold (top row) and spectral (bottom row) times.

    ``pairs`` is a list of ``(tau_a, tau_b)``, each (len(ys), len(xs), 2) (classes last); one column per pair,
    titled by ``names``. Colour: log10(τ_1/τ_2) clipped at ±``lim`` (blue: class 1 first); grey: neither class
    reaches the level; black crosses on the bottom row: the two definitions order the classes differently.
    Returns the Figure (or the PNG path with ``path``).
    """
    import matplotlib.pyplot as plt

    def ratio(t):
        with np.errstate(divide="ignore", invalid="ignore"):
            lr = np.log10(t[..., 0] / t[..., 1])
        return np.where(np.isinf(t[..., 0]) & np.isinf(t[..., 1]), np.nan, lr)

    with styled(None):
        fig, axs = plt.subplots(2, len(pairs), figsize=(4.2 * len(pairs), 7), sharex=True, sharey=True,
                                squeeze=False)
        X, Y = np.meshgrid(xs, ys)
        for j, ((ta, tb), name) in enumerate(zip(pairs, names)):
            ra, rb = ratio(np.asarray(ta)), ratio(np.asarray(tb))
            for i, (r, kind) in enumerate(((ra, "threshold"), (rb, "spectral"))):
                ax = axs[i, j]
                im = ax.pcolormesh(xs, ys, np.clip(r, -lim, lim), cmap="RdBu_r", vmin=-lim, vmax=lim,
                                   shading="nearest")
                if np.isnan(r).any():
                    ax.pcolormesh(xs, ys, np.where(np.isnan(r), 1.0, np.nan), cmap="Greys", vmin=0, vmax=2,
                                  shading="nearest")
                ax.axhline(1.0, color="k", ls="--", lw=0.8)
                log_axis(ax, "x")
                log_axis(ax, "y")
                ax.set_title(f"{name} ({kind})")
            differ = np.isfinite(ra) & np.isfinite(rb) & (np.sign(ra) != np.sign(rb))
            axs[1, j].plot(X[differ], Y[differ], "x", color="k", ms=5)
            axs[1, j].set_xlabel(xlabel)
        for i in range(2):
            axs[i, 0].set_ylabel(ylabel)
        fig.colorbar(im, ax=axs.ravel().tolist()).set_label(f"log10(τ_1/τ_2)  (clipped at ±{lim:g})")
    return _done(fig, path, True)
