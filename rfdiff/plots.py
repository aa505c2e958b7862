"""One plotting module: the standard figures of rfdiff results (matplotlib, object-oriented).

Every function draws into a given ``ax`` (or makes its own figure) and never switches the matplotlib backend:
that choice belongs to the caller (scripts set ``MPLBACKEND=Agg`` or call ``matplotlib.use`` themselves).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["plot_times_vs_ratio", "plot_phi", "plot_spectrum", "plot_comparison"]

_COLORS = ["C0", "C3", "C2", "C1", "C4", "C5", "C6", "C7"]


def _label(c: int, k: int) -> str:
    if k == 2:
        return ["majority", "minority"][c]
    return f"class {c}"

def _finish(fig, path, own: bool, dpi: int):
    """Save ``fig`` to ``path`` (parents created) and close it if this module made it; the path, or None."""
    import matplotlib.pyplot as plt

    if path is None:
        return None
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    if own:
        plt.close(fig)
    return path



def plot_times_vs_ratio(res: dict, path, title: str = "", ax=None, dpi: int = 100) -> Path:
    """t_S,c against the imbalance ratio: theory curves (``ratio_fine``/``theory_fine``), theory values at the
    simulated ratios (open circles) and simulation points with bootstrap standard errors (filled). Infinite
    times (class committed from the start, π_c ≥ θ) are drawn as up-triangles on the top edge."""
    import matplotlib.pyplot as plt

    own = ax is None
    if own:
        fig, ax = plt.subplots(figsize=(5.0, 3.6))
    k = res["theory"].shape[1]
    finite = [v for key in ("theory_fine", "sim") if key in res for v in np.ravel(res[key]) if np.isfinite(v)]
    top = max(finite) + 0.15 if finite else 1.0
    for c in range(k):
        col = _COLORS[c % len(_COLORS)]
        if "theory_fine" in res:
            ax.plot(res["ratio_fine"], res["theory_fine"][:, c], color=col, lw=1.5, label=f"{_label(c, k)} theory")
        ax.plot(res["ratio"], np.where(np.isfinite(res["theory"][:, c]), res["theory"][:, c], np.nan), "o",
                mfc="none", color=col, ms=7)
        if "sim" in res:
            fin = np.isfinite(res["sim"][:, c])
            ax.errorbar(res["ratio"][fin], res["sim"][fin, c], yerr=res["se"][fin, c], fmt="s", ms=4, color=col,
                        capsize=3, label=f"{_label(c, k)} simulation")
            inf = np.isinf(res["sim"][:, c])
            if inf.any():
                ax.plot(res["ratio"][inf], np.full(inf.sum(), top), "^", color=col, ms=6)
    ax.set_xscale("log")
    ax.set_xlabel("imbalance ratio π_max / π_min")
    ax.set_ylabel("speciation time t_S,c")
    ax.set_ylim(top=top + 0.05)
    ax.set_title(title + ("  (▲: t_S = ∞)" if "sim" in res and np.isinf(res["sim"]).any() else ""), fontsize=9)
    ax.legend(fontsize=7)
    return _finish(ax.figure, path, own, dpi)


def plot_phi(t, phi_theory, path, clone: dict | None = None, labels=None, title: str = "", ax=None,
             dpi: int = 100) -> Path:
    """φ_c(t) per class: theory curves (``phi_theory`` (T, K) on times ``t``) and cloning points ± SE."""
    import matplotlib.pyplot as plt

    own = ax is None
    if own:
        fig, ax = plt.subplots(figsize=(5.0, 3.6))
    k = phi_theory.shape[1]
    for c in range(k):
        col = _COLORS[c % len(_COLORS)]
        lab = labels[c] if labels is not None else _label(c, k)
        ax.plot(t, phi_theory[:, c], color=col, label=f"{lab} theory")
        if clone is not None:
            ax.errorbar(clone["t"], clone["phi"][:, c], yerr=clone["se"][:, c], fmt="s", ms=4, color=col,
                        capsize=3, label=f"{lab} cloning")
    ax.set_xlabel("backward time t")
    ax.set_ylabel("φ_c(t) = P(clones agree | one ends in c)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    return _finish(ax.figure, path, own, dpi)


def plot_spectrum(res, path=None, title: str = "", ax=None, dpi: int = 100):
    """λρ(λ) of a :class:`rfdiff.theory.spectrum.SpectrumResult` and its per-class parts on a log-λ axis,
    atom and outliers marked. Draws into ``ax`` (a new figure otherwise); saves to ``path`` when given and
    returns the path, else the axes."""
    import matplotlib.pyplot as plt

    own = ax is None
    if own:
        fig, ax = plt.subplots(figsize=(6, 3.6))
    else:
        fig = ax.figure
    ax.plot(res.lam, res.lam * res.density, "k", lw=1.4, label="λρ(λ)")
    for c in range(res.class_density.shape[1]):
        ax.plot(res.lam, res.lam * res.class_density[:, c], lw=1, ls="--", label=f"class {c}")
    if res.atom_mass > 0:
        ax.axvline(res.atom_location, color="0.5", ls=":", lw=1)
        ax.text(res.atom_location, ax.get_ylim()[1] * 0.9, f" atom {res.atom_mass:.3f}", fontsize=7)
    for o in res.outliers:
        ax.axvline(o, color="r", ls=":", lw=1)
    ax.set_xscale("log")
    ax.set(xlabel="λ", ylabel="λ ρ(λ)", title=title)
    ax.legend(fontsize=7)
    return ax if path is None else _finish(fig, path, own, dpi)


def plot_comparison(cmp: dict, path=None, axes=None, dpi: int = 100):
    """Per-class test and train ε_c(τ): theory lines and simulation points from
    :func:`rfdiff.simulate.compare.compare_timescales`. Draws into ``axes`` (two axes) or a new figure;
    saves to ``path`` when given."""
    import matplotlib.pyplot as plt

    own = axes is None
    if own:
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    else:
        fig = axes[0].figure
    for c in range(cmp["eps_train_theory"].shape[0]):
        for ax, key in zip(axes, ("eps_test", "eps_train")):
            ax.plot(cmp["tau_theory"], cmp[f"{key}_theory"][c], color=f"C{c}", label=f"class {c} theory")
            ax.plot(cmp["tau_sim"], cmp[f"{key}_sim"][c], "o", color=f"C{c}", ms=3, label=f"class {c} sim")
    for ax, name in zip(axes, ("test ε_c", "train ε_c")):
        ax.set_xscale("log")
        ax.set_xlabel("τ")
        ax.set_title(name, fontsize=9)
    axes[0].legend(fontsize=7)
    return axes if path is None else _finish(fig, path, own, dpi)
