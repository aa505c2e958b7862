"""Write validation/surrogate/README.md and surrogate_curves.png from the run directories (see report.py).

Agreement rule (stated in the README too): at a checkpoint, the per-class test error ε_c^te of the real runs
and that of the surrogate runs *agree* when their seed ranges [min over seeds, max over seeds] overlap, i.e.
``|mean_real − mean_gauss| ≤ (range_real + range_gauss)/2``; "coincide up to s" = s is the last checkpoint of
the initial stretch of agreeing checkpoints (–: they differ already at the first one).
"""

from __future__ import annotations

import datetime
import json
import shutil
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from rfdiff.io import load_result, save_result
from rfdiff.unet import evaluate as ev
from rfdiff.unet.surrogate import class_moments, sample_class_gaussians
from rfdiff.unet.training import _eval_loss, _load_state, eval_steps, prepare_data, summarise  # noqa: PLC2701
from rfdiff.unet.model import make_schedule

KINDS = ("real", "gaussian")
COLOURS = {"real": "C0", "gaussian": "C3"}


def agreement(real, gauss):
    """Per checkpoint: do the seed ranges of ``real`` and ``gauss`` (seeds, checkpoints) overlap? → (n_ckpt,)."""
    real, gauss = np.asarray(real, float), np.asarray(gauss, float)
    return (real.min(0) <= gauss.max(0)) & (gauss.min(0) <= real.max(0))


def coincide_until(steps, agree):
    """(last step of the initial run of agreeing checkpoints or None, first disagreeing step or None)."""
    bad = np.flatnonzero(~np.asarray(agree))
    if bad.size == 0:
        return int(steps[-1]), None
    return (int(steps[bad[0] - 1]) if bad[0] > 0 else None), int(steps[bad[0]])


def surrogate_test(run_dir: Path, cfg, n_per_class: int = 200) -> dict:
    """ε_c on fresh Gaussian-surrogate test draws (population moments, seed 10⁶ + cfg.seed) at every stored
    checkpoint, same OU times as the real test error; cached in ``surrogate_test.npz`` of the run directory."""
    cache = run_dir / "surrogate_test.npz"
    steps = [int(s) for s in eval_steps(cfg)]
    if cache.is_file():
        arrays, _ = load_result(cache)
        if arrays["step"].tolist() == steps:
            return arrays
    data = prepare_data(cfg)
    xa, ya = data["all_train"]
    m = class_moments(xa, ya, cfg.classes)
    y = np.repeat(np.arange(len(cfg.classes)), n_per_class)
    x = sample_class_gaussians(m, m.classes[y], seed=10**6 + cfg.seed).reshape(
        len(y), 1, cfg.image_size, cfg.image_size).astype(np.float32)
    ab = make_schedule(cfg.schedule, cfg.num_steps)
    k = np.array([int(np.argmin(np.abs(ab[1:] - a))) + 1 for a in np.exp(-2.0 * np.asarray(cfg.loss_times))])
    t = -0.5 * np.log(ab[k])
    s_ref = ev.gaussian_reference(data["cov_eigenvalues"], t)
    rng = np.random.default_rng(10**6 + cfg.seed)
    eps = rng.standard_normal((len(k),) + x.shape).astype(np.float32)
    alpha_bar = jnp.asarray(ab, dtype=jnp.float32)
    out = np.full((len(steps), len(cfg.classes), len(k)), np.nan)
    for i, s in enumerate(steps):
        path = run_dir / "ckpt" / f"step_{s:07d}.eqx"
        if not path.is_file():
            continue
        (model, *_), _ = _load_state(path, cfg)
        for j, kk in enumerate(k):
            per = np.concatenate([np.asarray(_eval_loss(model, x[a:a + 200], np.full(len(x[a:a + 200]), kk, np.int32),
                                                        eps[j, a:a + 200], alpha_bar, cfg))
                                  for a in range(0, len(x), 200)])
            out[i, :, j] = [per[y == c].mean() for c in range(len(cfg.classes))]
    arrays = {"step": np.asarray(steps), "eps_test_gaussian": ev.normalised_error(out, s_ref)}
    if np.all(np.isfinite(out)):
        save_result(cache, arrays, {"dims": {"step": ["checkpoint"], "eps_test_gaussian": ["checkpoint", "class",
                                                                                          "time"]}})
    return arrays


def _fmt(x, first=None):
    if x is None or np.isposinf(x):
        return "–"
    if np.isnan(x):
        return f"≤{first}" if first is not None else "–"
    return f"{x:.0f}"


def _plot(curves, steps, times, classes, names, taus, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rfdiff.plots import save_figure

    fig = draw(curves, steps, times, classes, names, taus)
    save_figure(fig, path)
    plt.close(fig)


def draw(curves, steps, times, classes, names, taus):
    """Per class (columns) and OU time (rows): ε_c^te of the real- and surrogate-trained runs (thin: seeds, thick:
    mean; solid: real test images, dashed: Gaussian test draws), τ_gen of the real runs, last agreeing checkpoint."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(times), len(classes), figsize=(4.2 * len(classes), 2.6 * len(times)),
                             squeeze=False, sharex=True)
    for j, t in enumerate(times):
        for c, cls in enumerate(classes):
            ax = axes[j, c]
            for kind in KINDS:
                y = curves[kind]["real_test"][:, :, c, j]  # (seeds, ckpt)
                for s in range(len(y)):
                    ax.plot(steps, y[s], color=COLOURS[kind], lw=0.7, alpha=0.5, marker=".")
                ax.plot(steps, y.mean(0), color=COLOURS[kind], lw=2, label=f"trained on {kind}, real test")
                g = curves[kind]["gauss_test"][:, :, c, j]
                ax.plot(steps, g.mean(0), color=COLOURS[kind], lw=1.2, ls="--",
                        label=f"trained on {kind}, Gaussian test")
            tg = taus["tau_gen"][c, j]
            if np.isfinite(tg):
                ax.axvline(tg, color="k", ls=":", lw=1, label="τ_gen (real runs, seed mean)")
            ta = taus["until"][c][j]
            if ta is not None:
                ax.axvline(ta, color="grey", lw=3, alpha=0.3, label="last agreeing checkpoint")
            ax.axhline(0, color="k", lw=0.5)
            ax.set_xscale("log")
            ax.set_title(f"{names[cls]} ({cls}), t = {t:.3g}", fontsize=9)
            if c == 0:
                ax.set_ylabel("per-class ε (test)")
            if j == len(times) - 1:
                ax.set_xlabel("Adam step")
    axes[0, 0].legend(fontsize=6, loc="upper right")
    fig.tight_layout()
    return fig


def load_curves(done: dict[str, Path]):
    """From finished run folders (``<kind>_seed<k>`` with metrics.npz and surrogate_test.npz): (summaries, steps,
    times, classes, curves, τ_gen of the real runs (K, T), until (K lists of T))."""
    summ = {n: summarise(d) for n, d in done.items()}
    first = summ[next(iter(done))]
    steps = first["arrays"]["step"].astype(np.int64)
    for n, s in summ.items():
        if s["arrays"]["step"].tolist() != steps.tolist():
            raise SystemExit(f"run {n} stopped at step {int(s['arrays']['step'][-1])} (unfinished); rerun report.py")
    classes, times = first["classes"], first["times"]
    curves = {kind: {"real_test": np.stack([summ[n]["arrays"]["eps_test"] for n in done if n.startswith(kind)]),
                     "gauss_test": np.stack([load_result(done[n] / "surrogate_test.npz")[0]["eps_test_gaussian"]
                                             for n in done if n.startswith(kind)])} for kind in KINDS}
    tau = {kind: np.stack([summ[n]["tau_gen"] for n in done if n.startswith(kind)]) for kind in KINDS}  # (S, K, T)
    until, first_diff = [], []
    for c in range(len(classes)):
        u, f = zip(*[coincide_until(steps, agreement(curves["real"]["real_test"][:, :, c, j],
                                                     curves["gaussian"]["real_test"][:, :, c, j]))
                     for j in range(len(times))])
        until.append(list(u))
        first_diff.append(list(f))
    # τ_gen of the real runs: the mean over seeds where every seed resolved it (NaN: reached at the first
    # checkpoint in some seed; inf: not reached)
    return summ, steps, times, classes, curves, tau, tau["real"].mean(0), until, first_diff


def figure_from_results(results: Path, names: dict):
    """The report's figure from committed results (``validation/surrogate/results``); None if there are none."""
    done = {p.name: p for p in sorted(Path(results).glob("*")) if (p / "surrogate_test.npz").is_file()}
    if not done:
        return None
    _, steps, times, classes, curves, _, tau_real, until, _ = load_curves(done)
    return draw(curves, steps, times, classes, names, {"tau_gen": tau_real, "until": until})


def write_report(runs_dir: Path, out: Path, runs: dict, names: dict) -> Path:
    results = out / "results"
    done = {}
    for name in runs:
        src = Path(runs_dir) / name
        if not (src / "metrics.npz").is_file():
            continue
        dst = results / name
        dst.mkdir(parents=True, exist_ok=True)
        if src.resolve() != dst.resolve():
            for f in ("metrics.npz", "config.json", "subset.npz"):
                shutil.copy2(src / f, dst / f)
            if (src / "ckpt").is_dir():
                surrogate_test(src, runs[name])
                shutil.copy2(src / "surrogate_test.npz", dst / "surrogate_test.npz")
        done[name] = dst
    missing = [n for n in runs if n not in done]
    if missing:
        raise SystemExit(f"runs not finished under {runs_dir}: {missing}")
    summ, steps, times, classes, curves, tau, tau_real, until, first_diff = load_curves(
        {n: done[n] for n in runs})
    first = summ[next(iter(done))]
    _plot(curves, steps, times, classes, names, {"tau_gen": tau_real, "until": until}, out / "surrogate_curves")

    cfgs = {n: json.loads((d / "config.json").read_text()) for n, d in done.items()}
    c0 = cfgs[next(iter(done))]["config"]
    prov = cfgs[next(iter(done))]["provenance"]
    commits = ", ".join(f"{n}: `{c['provenance']['commit']}`" for n, c in cfgs.items())
    walls = {n: float(s["arrays"]["wall"][-1]) for n, s in summ.items()}
    # do the runs' commits hold the same training code? (rfdiff/unet/ minus the package's export list)
    import subprocess

    revs = sorted({c["provenance"]["commit"].removesuffix("-dirty") for c in cfgs.values()})
    dirty = any(c["provenance"]["commit"].endswith("-dirty") for c in cfgs.values())
    try:
        same = not dirty and all(subprocess.run(
            ["git", "diff", "--quiet", revs[0], r, "--", "rfdiff/unet", ":(exclude)rfdiff/unet/__init__.py"],
            cwd=Path(__file__).resolve().parents[2], timeout=30).returncode == 0 for r in revs[1:])
    except (OSError, subprocess.SubprocessError):
        same = False
    code_note = ("rfdiff/unet/ (bar its `__init__` export list) is identical at these commits"
                 if same else "the code may differ between these commits (not checked or not equal)")
    # the d → ∞ theory's orders for these classes, as training records them now (runs written before carry a
    # retired heuristic instead)
    from rfdiff.unet.fmnist import ClassStatistics
    from rfdiff.unet.training import prediction

    theory = prediction(runs[next(iter(done))], ClassStatistics(**{k: np.asarray(v) for k, v in first["stats"].items()}))
    pred = theory["predicted_order_gen"]
    var = first["stats"]["variance"]
    s1 = int(steps[0])
    order_real = [summ[n]["order_gen"] for n in runs if n.startswith("real")]  # per seed: per loss time
    L = [
        "# Gaussian-surrogate check of the theory's premise (U-Net, Fashion-MNIST, CPU, reduced size)",
        "",
        f"Written by `validation/surrogate/report.py` on {datetime.date.today().isoformat()}. Device: "
        f"{prov['device']}; jax {prov['jax']}; code commit at the start of each run: {commits}. "
        f"{code_note}. Wall = training + evaluation seconds of a run ({', '.join(f'{n} {w:.0f} s' for n, w in walls.items())}; "
        "2 cores shared with other jobs).",
        "",
        "**Question** (issue #15 item 3). The theory treats each class as a Gaussian. Replace every training image "
        "of the U-Net protocol by a draw from its class's Gaussian (population mean and covariance of all "
        "training images of the class at 14×14, sampled exactly, same indices and per-class counts, pixels not "
        "clipped; `UNetConfig(data=\"gaussian\")`, `rfdiff/unet/surrogate.py`) and compare the per-class test "
        "errors of networks trained on real and on surrogate data: up to which training step do they coincide, "
        "and is that before or after the per-class τ_gen?",
        "",
        f"**Protocol.** Bag (8) vs Sneaker (7), counts {tuple(c0['counts'])}, {28 // c0['downsample']}×"
        f"{28 // c0['downsample']} images, U-Net channels {c0['channels']}, batch {c0['batch_size']}, Adam lr "
        f"{c0['lr']}, {c0['train_steps']} steps, {c0['schedule']} schedule T={c0['num_steps']}, "
        f"{len(steps)} log-spaced evaluations ({', '.join(map(str, steps.tolist()))}), seeds "
        f"{sorted({c['config']['seed'] for c in cfgs.values()})}; real vs surrogate = 4 runs. A seed fixes the "
        "subset, the initial weights and the minibatch/noise stream, so the real and surrogate runs of one seed "
        "differ only in their training images. **Test set of the comparison: the real test images** "
        f"({c0['n_test_per_class']} per class, the same for all runs): how well does a network trained on the "
        "surrogate denoise real images of the class? Also recorded (dashed): ε on fresh Gaussian-surrogate test "
        "draws (200 per class), from the stored checkpoints. ε_c = [L_c − (1 − S_c)]/S_c with S_c the class's "
        "Gaussian reference (1: predicts zero; 0: the class's Gaussian denoiser; < 0: beats it). An affine "
        "denoiser's error depends only on the first two moments, so the Gaussian denoiser scores 0 on real and "
        "surrogate test data alike, and only a network that uses more than pair-wise statistics can go below 0 "
        "on real test images.",
        "",
        "**Agreement rule.** At a checkpoint, real and surrogate runs agree for class c at OU time t when the "
        "ranges [min, max] of ε_c^te over the seeds overlap (|mean_real − mean_gauss| ≤ (range_real + "
        "range_gauss)/2). *Coincide up to s*: s is the last checkpoint of the initial stretch of agreeing "
        f"checkpoints ('–': they differ already at the first, step {s1}); *first difference*: the next checkpoint. "
        "With two seeds a range is a weak estimate of the spread, so the rule is lenient where the two seeds "
        "happen to differ much and strict where they happen to agree.",
        "",
        "![per-class test errors, real vs surrogate](surrogate_curves.png)",
        "",
        "| class | σ² | OU time t | coincide up to | first difference | τ_gen real (seeds) | τ_gen surrogate (seeds) "
        "| agreement ends | final ε^te real | final ε^te surrogate | final ε on Gaussian test: real-trained / "
        "surrogate-trained |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    verdicts = []
    for c, cls in enumerate(classes):
        for j, t in enumerate(times):
            tr = tau["real"][:, c, j]
            tgs = tau["gaussian"][:, c, j]
            u, f = until[c][j], first_diff[c][j]
            # τ_gen bounds over seeds: NaN = reached at the first checkpoint (≤ s1), +inf = not reached
            hi = np.max(np.where(np.isnan(tr), s1, tr))
            lo = np.min(np.where(np.isnan(tr), 0.0, tr))
            if f is None:
                v = "agree to the end"
            elif u is None and hi <= s1:
                v = f"undecided (both by the first checkpoint, step {s1})"
            elif u is not None and u >= hi:
                v = "after τ_gen"
            elif f <= lo:
                v = "before τ_gen"
            else:
                v = "at τ_gen (within the seeds' values and the checkpoint spacing)"
            verdicts.append((cls, t, u, f, tr, v))
            fr = curves["real"]["real_test"][:, -1, c, j]
            fg = curves["gaussian"]["real_test"][:, -1, c, j]
            gr = curves["real"]["gauss_test"][:, -1, c, j]
            gg = curves["gaussian"]["gauss_test"][:, -1, c, j]
            L.append(f"| {names[cls]} ({cls}) | {var[c]:.3f} | {t:.3g} | {_fmt(u)} | {_fmt(f)} | "
                     f"{' / '.join(_fmt(x, s1) for x in tr)} | {' / '.join(_fmt(x, s1) for x in tgs)} | {v} | "
                     f"{fr.mean():+.3f} ± {np.ptp(fr) / 2:.3f} | {fg.mean():+.3f} ± {np.ptp(fg) / 2:.3f} | "
                     f"{gr.mean():+.3f} / {gg.mean():+.3f} |")
    L += [
        "",
        "Times are Adam steps; τ_gen = first step with ε^te ≤ (1 + min ε^te)/2 (`rfdiff.unet.evaluate.summarise` → "
        f"`rfdiff.theory.timescales`), '≤{s1}': already reached at the first evaluation, '–': not reached. "
        "Final values: seed mean ± half the seed range. σ² = Tr Cov_c/d, population, at 14×14. "
        f"The theory's τ_gen order (`rfdiff.unet.training.prediction`, {theory['rule']}): "
        f"{'unresolved' if pred is None else ' before '.join(names[c] for c in pred)}; measured τ_gen order of the real runs per loss time and "
        f"seed: {'; '.join(f'seed {i}: ' + ', '.join(f't = {t:.3g} ' + ('unresolved' if o is None else ' before '.join(names[c] for c in o)) for t, o in zip(times, og)) for i, og in enumerate(order_real))}.",
        "",
        "## Reading (generated from the numbers above)",
        "",
    ]
    for cls, t, u, f, tr, v in verdicts:
        L.append(f"* {names[cls]}, t = {t:.3g}: real and surrogate test errors coincide up to step {_fmt(u)}"
                 f"{'' if f is None else f' (first difference at {f})'}; τ_gen of the real runs "
                 f"{' / '.join(_fmt(x, s1) for x in tr)} → {v}.")
    j0 = 0
    for c, cls in enumerate(classes):
        best = {}
        for kind in KINDS:
            for test in ("real_test", "gauss_test"):
                m = curves[kind][test][:, :, c, j0].mean(0)  # seed mean over checkpoints
                best[kind, test] = (m.min(), int(steps[np.argmin(m)]), m[-1])
        L.append(
            f"* {names[cls]}, t = {times[j0]:.3g}, seed means: lowest ε on real test images "
            f"{best['real', 'real_test'][0]:+.3f} (step {best['real', 'real_test'][1]}) trained on real vs "
            f"{best['gaussian', 'real_test'][0]:+.3f} (step {best['gaussian', 'real_test'][1]}) trained on the "
            f"surrogate; on Gaussian test draws {best['real', 'gauss_test'][0]:+.3f} (step "
            f"{best['real', 'gauss_test'][1]}) vs {best['gaussian', 'gauss_test'][0]:+.3f} (step "
            f"{best['gaussian', 'gauss_test'][1]}); at the last step ({int(steps[-1])}) on real test images "
            f"{best['real', 'real_test'][2]:+.3f} vs {best['gaussian', 'real_test'][2]:+.3f}."
            + (" Only the real-trained networks go below 0 (beat the class's Gaussian denoiser) on real images."
               if best['real', 'real_test'][0] < 0 <= best['gaussian', 'real_test'][0] else ""))
    ends = sorted(range(len(classes)), key=lambda c: (first_diff[c][j0] is None, first_diff[c][j0] or 0))
    L.append(f"* Order in which real and surrogate stop agreeing at t = {times[j0]:.3g} (first first, by the first "
             f"differing checkpoint): {', '.join(f'{names[classes[c]]} ({_fmt(first_diff[c][j0])})' for c in ends)}; "
             f"the theory's τ_gen order: {'unresolved' if pred is None else ' before '.join(names[c] for c in pred)}; "
             "measured at this t: "
             f"{'; '.join('unresolved' if og[j0] is None else ' before '.join(names[c] for c in og[j0]) for og in order_real)}"
             " (one entry per seed).")
    L += [
        "",
        "Not established here: the CPU protocol is small (n = 80, 3000 steps, two seeds); the evaluation grid "
        "(log-spaced checkpoints) bounds every time to the checkpoint spacing; the GPU-size protocol "
        "(examples/unet_fmnist.toml) is the run that could make the comparison quantitative.",
        "",
    ]
    (out / "README.md").write_text("\n".join(L))
    return out / "README.md"
