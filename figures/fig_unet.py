"""U-Net on class-imbalanced Fashion-MNIST: per-class learning and memorisation curves from results directories.

Reads the run directories written by ``rfdiff simulate unet`` (``metrics.npz``); by default the committed CPU
validation results under ``validation/unet/results/``. It never trains: with no results it says how to make
them and returns no figure.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RESULTS = ROOT / "validation" / "unet" / "results"
NAMES = {0: "T-shirt", 1: "Trouser", 2: "Pullover", 3: "Dress", 4: "Coat", 5: "Sandal", 6: "Shirt", 7: "Sneaker",
         8: "Bag", 9: "Ankle boot"}


def _save(fig, path: Path) -> Path:
    """PDF + 300-dpi PNG in the house style; the PNG path (what validation/unet/write_report.py links)."""
    import matplotlib.pyplot as plt

    from rfdiff.plots import save_figure

    png = save_figure(fig, path)[1]
    plt.close(fig)
    return png


def plot_runs(run_dirs: dict[str, Path], path: Path, time_index: int = 0) -> Path:
    """:func:`draw_runs` written to ``path`` (PDF + PNG); returns the PNG path."""
    from rfdiff.plots import style

    with style():
        return _save(draw_runs(run_dirs, time_index), path)


def plot_samples(run_dirs: dict[str, Path], path: Path) -> Path:
    """:func:`draw_samples` written to ``path`` (PDF + PNG); returns the PNG path."""
    from rfdiff.plots import style

    with style():
        return _save(draw_samples(run_dirs), path)


def draw_runs(run_dirs: dict[str, Path], time_index: int = 0):
    """One row per run: normalised train/test error at loss time ``time_index``, memorised fraction (95 % CI),
    classifier Fréchet distance (dotted: real-image floor at the same sample size). Classes by name, one colour
    each."""
    import matplotlib.pyplot as plt

    from rfdiff.plots import class_color, log_axis
    from rfdiff.unet.evaluate import summarise

    fig, axes = plt.subplots(len(run_dirs), 3, figsize=(11.5, 2.7 * len(run_dirs)), squeeze=False)
    for row, (name, d) in enumerate(run_dirs.items()):
        summary = summarise(d)  # arrays with Clopper–Pearson intervals from the counts
        a, attrs = summary["arrays"], summary["attrs"]
        steps, classes = a["step"], attrs["coords"]["class"]
        counts = attrs["stats"]["counts"]
        t = attrs["coords"]["time"][time_index]
        ax0, ax1, ax2 = axes[row]
        for c, lab in enumerate(classes):
            col = class_color(c)
            tag = f"{NAMES.get(lab, lab)} (n={counts[c]}, σ²={attrs['stats']['variance'][c]:.3f})"
            ax0.plot(steps, a["eps_train"][:, c, time_index], "-o", ms=3, color=col, label=f"{tag} train")
            ax0.plot(steps, a["eps_test"][:, c, time_index], "--s", ms=3, color=col, label="test")
            ax1.errorbar(steps, a["mem_fraction"][:, c],
                         yerr=[a["mem_fraction"][:, c] - a["mem_ci_low"][:, c],
                               a["mem_ci_high"][:, c] - a["mem_fraction"][:, c]],
                         fmt="-o", ms=3, color=col, capsize=2, label=NAMES.get(lab, lab))
            ax2.plot(steps, a["cfd"][:, c], "-o", ms=3, color=col, label=NAMES.get(lab, lab))
            ax2.axhline(a["cfd_reference"][c], color=col, ls=":", lw=1)
        ax0.axhline(0, color="k", lw=0.5)
        ax0.set_ylabel(f"{name}\nnormalised error ε_c at t={t:.3g}")
        ax1.set_ylabel("memorised fraction")
        ax1.set_ylim(-0.05, 1.05)
        ax2.set_ylabel("classifier Fréchet dist.")
        if np.any(np.isfinite(a["cfd"]) & (a["cfd"] > 0)):
            log_axis(ax2, "y")
        for ax in (ax0, ax1, ax2):
            log_axis(ax, "x")
        ax0.legend(fontsize=6, ncol=2)
        if row == 0:
            ax1.legend(fontsize=7)
            ax0.set_title("normalised error (solid train, dashed test)")
            ax1.set_title("d₁/d₂ < 1/3 (95 % Clopper–Pearson CI)")
            ax2.set_title("per-class CFD (dotted: real-image floor)")
    for ax in axes[-1]:
        ax.set_xlabel("Adam step")
    return fig


def draw_samples(run_dirs: dict[str, Path]):
    """The 16 DDIM samples of the last checkpoint of each run (fixed initial noise)."""
    import matplotlib.pyplot as plt

    from rfdiff.io import load_result

    fig, axes = plt.subplots(1, len(run_dirs), figsize=(2.6 * len(run_dirs), 2.9), squeeze=False)
    for ax, (name, d) in zip(axes[0], run_dirs.items()):
        a, _ = load_result(Path(d) / "metrics.npz")
        s = a["samples"][-1]
        h = s.shape[-1]
        k = int(np.ceil(np.sqrt(len(s))))  # up to 16 samples on a k × k grid, blank (−1) where fewer
        s = np.concatenate([s, -np.ones((k * k - len(s), h, h), s.dtype)])
        grid = s.reshape(k, k, h, h).transpose(0, 2, 1, 3).reshape(k * h, k * h)
        ax.imshow(grid, cmap="gray", vmin=-1, vmax=1)
        ax.set_title(f"{name}\nstep {int(a['step'][-1])}", fontsize=8)
        ax.axis("off")
    return fig


def plot_memorisation(run_dirs: dict[str, Path], path: Path) -> Path:
    """:func:`draw_memorisation` written to ``path`` (PDF + PNG); returns the PNG path."""
    from rfdiff.plots import style

    with style():
        return _save(draw_memorisation(run_dirs), path)


def plot_pilot_and_weights(run_dirs: dict[str, Path], path: Path) -> Path:
    """:func:`draw_pilot_and_weights` written to ``path`` (PDF + PNG); returns the PNG path."""
    from rfdiff.plots import style

    with style():
        return _save(draw_pilot_and_weights(run_dirs), path)


def _groups(run_dirs: dict[str, Path]) -> dict[str, dict[str, Path]]:
    """Runs named ``<group>_s<seed>`` grouped by ``<group>`` (seeds of one setting in one panel)."""
    out: dict[str, dict[str, Path]] = {}
    for name, d in run_dirs.items():
        group, _, seed = name.rpartition("_s")
        out.setdefault(group if seed.isdigit() else name, {})[name] = d
    return out


def _mem_panel(ax, runs: dict[str, Path], styles=("-", "--", ":"), label_seeds=True, alpha=1.0):
    from rfdiff.plots import class_color, log_axis
    from rfdiff.unet.evaluate import summarise

    for j, (name, d) in enumerate(runs.items()):
        a, attrs = (lambda s: (s["arrays"], s["attrs"]))(summarise(d))
        steps, classes, counts = a["step"], attrs["coords"]["class"], attrs["stats"]["counts"]
        for c, lab in enumerate(classes):
            col = class_color(c)
            ax.plot(steps, a["mem_fraction"][:, c], styles[j % len(styles)], color=col, lw=1.2, alpha=alpha,
                    label=f"{NAMES.get(lab, lab)} (n={counts[c]})" if j == 0 else None)
            ax.fill_between(steps, a["mem_ci_low"][:, c], a["mem_ci_high"][:, c], color=col, alpha=0.08 * alpha,
                            lw=0)
    ax.axhline(0.5, color="k", lw=0.5, ls=":")
    ax.set_ylim(-0.03, 1.03)
    log_axis(ax, "x")


def draw_memorisation(run_dirs: dict[str, Path]):
    """Memorised fraction f_mem,c(step) with 95 % Clopper–Pearson bands: one panel per (pair, setting), the seeds
    as solid / dashed / dotted lines, one colour per class; the dotted line is τ_mem's level 1/2."""
    import matplotlib.pyplot as plt

    groups = _groups(run_dirs)
    pairs = sorted({g.split("_")[0] for g in groups})
    settings = list(dict.fromkeys(g.split("_", 1)[1] for g in groups))
    fig, axes = plt.subplots(len(pairs), len(settings), figsize=(3.6 * len(settings), 2.8 * len(pairs)),
                             squeeze=False, sharex=True, sharey=True)
    for i, pair in enumerate(pairs):
        for j, setting in enumerate(settings):
            ax = axes[i, j]
            runs = groups.get(f"{pair}_{setting}", {})
            if runs:
                _mem_panel(ax, runs)
                ax.legend(fontsize=6, loc="upper left")
            ax.set_title(f"{pair}, {setting}", fontsize=8)
            if j == 0:
                ax.set_ylabel("memorised fraction f_mem")
            if i == len(pairs) - 1:
                ax.set_xlabel("Adam step")
    return fig


def draw_pilot_and_weights(run_dirs: dict[str, Path]):
    """Left: τ_mem,c against n_c (pilot, balanced Bag vs Sneaker, seed 0). Middle/right: f_mem with (solid) and
    without (faint) the theory's loss weights, at 10 % and 90 % Bag."""
    import matplotlib.pyplot as plt

    from rfdiff.plots import class_color, log_axis
    from rfdiff.unet.evaluate import summarise

    fig, axes = plt.subplots(1, 3, figsize=(11.5, 3.2))
    pil = {int(n.split("_nc")[1].split("_")[0]): d for n, d in run_dirs.items() if "_nc" in n}
    if "bag-sneaker_balanced_s0" in run_dirs:
        pil[10] = run_dirs["bag-sneaker_balanced_s0"]
    if pil:
        ncs = sorted(pil)
        tm = np.stack([summarise(pil[k])["tau_mem"] for k in ncs])
        classes = summarise(pil[ncs[0]])["classes"]
        for c, lab in enumerate(classes):
            ax = axes[0]
            ax.plot(ncs, tm[:, c], "-o", color=class_color(c), label=NAMES.get(lab, lab))
        log_axis(axes[0], "x")
        if np.any(np.isfinite(tm) & (tm > 0)):
            log_axis(axes[0], "y")
        else:  # no class memorised in any pilot run: nothing to put on a log axis
            axes[0].text(0.5, 0.5, "no τ_mem reached", transform=axes[0].transAxes, ha="center")
        axes[0].set_xlabel("training images per class n_c")
        axes[0].set_ylabel("τ_mem,c [Adam steps]")
        axes[0].legend(fontsize=7)
        axes[0].set_title("pilot: τ_mem against n_c", fontsize=8)
    for ax, setting in zip(axes[1:], ("high-minority", "high-majority")):
        w = {n: d for n, d in run_dirs.items() if n.startswith(f"bag-sneaker_{setting}_window_s")}
        u = {n: d for n, d in run_dirs.items() if n.startswith(f"bag-sneaker_{setting}_s")}
        if u:
            _mem_panel(ax, u, alpha=0.3)
        if w:
            _mem_panel(ax, w)
            ax.legend(fontsize=6, loc="upper left")
        ax.set_title(f"bag-sneaker, {setting}: weighted (solid) vs not (faint)", fontsize=8)
        ax.set_xlabel("Adam step")
    axes[1].set_ylabel("memorised fraction f_mem")
    return fig


def make(quick: bool = False, results: Path = DEFAULT_RESULTS):
    """Yields ("unet_memorisation", Figure) and ("unet_pilot_weights", Figure) from the committed run results."""
    runs = {p.name: p for p in sorted(Path(results).glob("*")) if (p / "metrics.npz").is_file()}
    if not runs:
        print(f"[unet] no results under {results}: run `python validation/unet/report.py` or "
              "`rfdiff simulate unet examples/unet_fmnist.toml` first; skipping")
        return
    main = {k: v for k, v in runs.items() if "_nc" not in k and "_window_" not in k}
    if quick:  # the committed results are read, nothing is trained; quick draws seed 0 only
        main = {k: v for k, v in main.items() if k.endswith("_s0")}
    yield "unet_memorisation", draw_memorisation(main)
    yield "unet_pilot_weights", draw_pilot_and_weights(runs)
