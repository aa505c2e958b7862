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
        grid = s.reshape(4, 4, h, h).transpose(0, 2, 1, 3).reshape(4 * h, 4 * h)
        ax.imshow(grid, cmap="gray", vmin=-1, vmax=1)
        ax.set_title(f"{name}\nstep {int(a['step'][-1])}", fontsize=8)
        ax.axis("off")
    return fig


def make(quick: bool = False, results: Path = DEFAULT_RESULTS):
    """Yields ("unet_per_class", Figure) and ("unet_samples", Figure) from the committed run results."""
    runs = {p.name: p for p in sorted(Path(results).glob("*")) if (p / "metrics.npz").is_file()}
    if not runs:
        print(f"[unet] no results under {results}: run `python validation/unet/report.py` or "
              "`rfdiff simulate unet examples/unet_fmnist.toml` first; skipping")
        return
    if quick:  # the committed results are read, nothing is trained; quick just draws fewer panels
        runs = dict(list(runs.items())[:2])
    yield "unet_per_class", draw_runs(runs)
    yield "unet_samples", draw_samples(runs)
