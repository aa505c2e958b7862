"""Plots for speciation results (matplotlib, imported lazily by the CLI, figures and validation scripts)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["plot_times_vs_ratio", "plot_phi"]

_COLORS = ["C0", "C3", "C2", "C1", "C4", "C5", "C6", "C7"]


def _label(c: int, k: int) -> str:
    if k == 2:
        return ["majority", "minority"][c]
    return f"class {c}"


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
    if own:
        fig.tight_layout()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=dpi)
        plt.close(fig)
    return Path(path)


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
    if own:
        fig.tight_layout()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=dpi)
        plt.close(fig)
    return Path(path)
