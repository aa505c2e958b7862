"""Write validation/unet/README.md and its PNGs from the protocol's run directories (see report.py).

Every number in the report is read from the runs (``rfdiff.unet.evaluate.summarise``: the theory's time
definitions on the measured curves) or computed here by the theory on the runs' class statistics
(``rfdiff.unet.theory_map``; cached in ``theory.json`` beside this script, keyed by its inputs and by a digest of
the source code that computes it, :func:`_code_digest`, so an edited solver never returns an old prediction).
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np

from rfdiff.io import atomic_write_text, content_key, load_result, save_result
from rfdiff.unet.evaluate import summarise
from rfdiff.unet.fmnist import ClassStatistics

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def _fig_module():
    spec = importlib.util.spec_from_file_location("fig_unet", ROOT / "figures" / "fig_unet.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _stats(s) -> ClassStatistics:
    st = s["stats"]
    return ClassStatistics(*(np.asarray(st[f]) for f in ClassStatistics._fields))


@functools.lru_cache(maxsize=1)  # once per process: the sources do not change while a report is written
def _code_digest() -> str:
    """sha256 of the sources a prediction depends on: the mixture and RF model, the whole theory stage and the map
    from image statistics to a mixture. Any edit there (a docstring too) is a cache miss: recomputing costs
    minutes, a stale prediction would be a wrong number."""
    pkg = ROOT / "rfdiff"
    files = sorted([*(pkg / "model").glob("*.py"), *(pkg / "theory").glob("*.py"), pkg / "precision.py",
                    pkg / "unet" / "theory_map.py", pkg / "unet" / "fmnist.py"])
    h = hashlib.sha256()
    for f in files:
        h.update(f.relative_to(ROOT).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def _cached(table: dict, key_inputs: dict, compute):
    key = content_key(**key_inputs, code=_code_digest())
    if key not in table:
        table[key] = compute()
    return table[key]


def predictions(summaries: dict, configs: dict, theory: dict, cache: Path) -> dict:
    """Theory per run: τ_gen, τ_mem (ridge clock, theory units) and orders on the moment-matched mixture;
    cached in ``cache``/theory.json."""
    from rfdiff.unet.theory_map import theory_prediction

    path = cache / "theory.json"
    table = json.loads(path.read_text()) if path.is_file() else {}
    out = {}
    for name, s in summaries.items():
        st = _stats(s)
        cfg = configs[name]
        d = (28 // cfg.downsample) ** 2
        n = int(np.sum(st.counts))
        w = None if cfg.loss_weights is None else list(cfg.loss_weights)
        inputs = {"variance": st.variance.tolist(), "gram": st.centroid_gram.tolist(),
                  "proportions": st.proportions.tolist(), "d": d, "n": n, "weights": w, **theory}

        def compute(st=st, d=d, n=n, w=w):
            p = theory_prediction(st, d=d, n=n, loss_weights=w, **theory)
            return {"tau_gen": p.tau_gen.tolist(), "tau_mem": p.tau_mem.tolist(), "order_gen": p.order_gen.tolist(),
                    "order_mem": p.order_mem.tolist()}

        out[name] = _cached(table, inputs, compute)
    atomic_write_text(path, json.dumps(table, indent=1, sort_keys=True) + "\n")
    return out


def reversal(summary, cfg, theory: dict, cache: Path) -> dict:
    """Proportion of the high-variance class at which the predicted τ_gen / τ_mem order flips (NaN: never);
    cached in ``cache``/theory.json."""
    from rfdiff.unet.theory_map import reversal_fraction

    path = cache / "theory.json"
    table = json.loads(path.read_text()) if path.is_file() else {}
    st = _stats(summary)
    d, n = (28 // cfg.downsample) ** 2, int(np.sum(st.counts))
    res = {}
    for which in ("tau_gen", "tau_mem"):
        inputs = {"variance": st.variance.tolist(), "gram": st.centroid_gram.tolist(), "d": d, "n": n,
                  "reversal": which, **theory}
        res[which] = _cached(table, inputs, lambda which=which: _or_unresolved(lambda: reversal_fraction(
            st, which, d=d, n=n, num_scan=9, **theory)))
    atomic_write_text(path, json.dumps(table, indent=1, sort_keys=True) + "\n")
    return res


def _or_unresolved(compute):
    """The reversal proportion, NaN for "no flip", or None where the theory leaves scan points unresolved (no
    finite predicted time there), which must not read as "no flip"."""
    from rfdiff.errors import ConvergenceError

    try:
        return compute()
    except ConvergenceError:
        return None


def _t(x, first):
    if x is None or np.isposinf(x):
        return "–"
    if np.isnan(x):
        return f"≤{first}"
    return f"{x:.0f}"


def _o(order, names):
    return "unresolved" if order is None else " → ".join(names[c] for c in order)


def _first(order):
    return None if order is None else order[0]


def join_early(s: dict, early_dir: Path) -> float:
    """Replace τ_gen (and its order) of summary ``s`` by the one read from the early repeat's dense evaluations
    joined to the run's own (early steps before the run's first evaluation, then the run's); returns the largest
    |Δε_te| between the two at their common steps (the same trajectory: should be float32 rounding)."""
    from rfdiff.theory.timescales import generalization_time
    from rfdiff.unet.evaluate import measured_order

    e = summarise(early_dir)["arrays"]
    m = s["arrays"]
    common, ie, im = np.intersect1d(e["step"], m["step"], return_indices=True)
    diff = float(np.max(np.abs(e["eps_test"][ie] - m["eps_test"][im]))) if common.size else float("nan")
    keep = e["step"] < m["step"][0]
    steps = np.concatenate([e["step"][keep], m["step"]]).astype(np.float64)
    eps = np.concatenate([e["eps_test"][keep], m["eps_test"]]).astype(np.float64)  # (ckpt, K, n_t)
    s["tau_gen"] = np.asarray(generalization_time(steps, np.moveaxis(eps, 0, -1)))
    s["order_gen"] = [measured_order(s["tau_gen"][:, j], s["classes"]) for j in range(eps.shape[2])]
    s["first_step"] = int(steps[0])
    return diff


def _copy_trimmed(src: Path, dst: Path) -> None:
    """config, subset and the metrics with only the last checkpoint's 16 samples (what the report draws)."""
    dst.mkdir(parents=True, exist_ok=True)
    for f in ("config.json", "subset.npz"):
        shutil.copy2(src / f, dst / f)
    arrays, attrs = load_result(src / "metrics.npz")
    arrays = {**arrays, "samples": arrays["samples"][-1:]}
    attrs = {**attrs, "note": "samples: last checkpoint only (trimmed copy of the run's metrics.npz)"}
    save_result(dst / "metrics.npz", arrays, attrs)


def write_report(protocol, runs_dir: Path, out: Path, runs: dict, data_path=None) -> Path:
    """The report of ``protocol`` (the module report.py: its grid, settings, theory and cache folder, passed in
    rather than imported back, so the two scripts do not import each other) from the finished runs of ``runs``."""
    names = protocol.NAMES
    results = out / "results"
    from rfdiff.unet.training import eval_steps, target_step

    done, configs, summaries, early_diff, extending = {}, {}, {}, {}, []
    for name, cfg in runs.items():
        src = Path(runs_dir) / name
        if not (src / "metrics.npz").is_file():
            continue
        s = summarise(src)
        if int(s["arrays"]["step"][-1]) < cfg.train_steps:
            continue  # unfinished: reported once it ends
        if int(s["arrays"]["step"][-1]) < target_step(cfg, s["arrays"]["step"], s["arrays"]["mem_fraction"]):
            extending.append(name)  # past train_steps and still going on: reported at its last evaluation
        ed = Path(runs_dir) / "early" / name
        if (ed / "metrics.npz").is_file() and int(summarise(ed)["arrays"]["step"][-1]) == protocol.EARLY["train_steps"]:
            early_diff[name] = join_early(s, ed)
            _copy_trimmed(ed, results / "early" / name)
        _copy_trimmed(src, results / name)
        done[name], configs[name], summaries[name] = results / name, cfg, s
    if not done:  # before any pruning: a wrong --runs-dir must not empty the committed results
        raise SystemExit(f"no finished runs under {runs_dir}")
    # prune the copies of runs no longer in the protocol; a protocol run unfinished in this runs_dir keeps its copy
    for old in [*results.glob("*"), *(results / "early").glob("*")]:
        if old.is_dir() and old.name not in runs and old.name != "early":
            shutil.rmtree(old)
    pred = predictions(summaries, configs, protocol.THEORY, protocol.CACHE)
    fig = _fig_module()
    main = {k: v for k, v in done.items() if "_nc" not in k and protocol.WEIGHT_TARGET not in k}
    fig.plot_memorisation(main, out / "memorisation.png")
    fig.plot_pilot_and_weights(done, out / "pilot_and_weights.png")
    seed0 = {k: v for k, v in main.items() if k.endswith("_s0")}
    fig.plot_runs(seed0, out / "per_class_curves.png")  # errors, f_mem and CFD of every seed-0 run
    fig.plot_samples(seed0, out / "samples.png")

    provs = {n: json.loads((d / "config.json").read_text())["provenance"] for n, d in done.items()}
    commits = sorted({p["commit"] for p in provs.values()})
    wall = sum(float(s["arrays"]["wall"][-1]) for s in summaries.values())
    wall_early = sum(float(load_result(results / "early" / n / "metrics.npz")[0]["wall"][-1]) for n in early_diff)
    p0, c0 = next(iter(provs.values())), protocol.BASE
    last = {n: int(summaries[n]["arrays"]["step"][-1]) for n in done}
    extended = [n for n in done if last[n] > configs[n].train_steps]
    ext_grid = [int(v) for v in eval_steps(c0, extended=True) if v > c0.train_steps]
    ext_commits = sorted({e["commit"] for pr in provs.values() for e in pr.get("extensions", [])})
    lines = [
        "# U-Net per-class learning and memorisation on Fashion-MNIST: the CPU protocol",
        "",
        f"Written by `validation/unet/report.py` on {datetime.date.today().isoformat()} from {len(done)} of "
        f"{len(runs)} runs. Device: {p0['device']} (2 cores shared with other jobs, one core per run); jax "
        f"{p0['jax']}; code commit(s) at the start of the runs: {', '.join(f'`{c}`' for c in commits)} (a worker "
        "process imports the code once, so a later label is the checkout's state when that run started, not a "
        f"change of the code that ran it). Training + evaluation wall time summed over the runs: {wall / 60:.0f} min, "
        f"plus {wall_early / 60:.0f} min for the early repeats (two runs at a time, each on one core shared with other "
        "jobs). **The GPU run is still owed** (no GPU was lent to this session; `validation/gpu/` holds the prepared "
        "command).",
        "",
        f"Protocol (theory_notes/07_unet.md §8): {28 // c0.downsample}×{28 // c0.downsample} images, U-Net "
        f"channels {list(c0.channels)}, batch {c0.batch_size}, Adam lr {c0.lr:g}, {c0.train_steps} steps, "
        f"{c0.n_eval} log-spaced evaluations from step {c0.first_eval}, {c0.n_samples} DDIM samples "
        f"({c0.sample_steps} steps) per evaluation, {c0.n_test_per_class} test images per class; n = "
        f"{sum(next(iter(protocol.SETTINGS.values())))} training images per run (pilot: other n_c); seeds "
        f"{', '.join(map(str, protocol.SEEDS))} (subset, initial weights and training stream).",
        "",
        f"Step budget: a run in which some class has not reached f_mem ≥ 1/2 at any evaluation by step "
        f"{c0.train_steps} goes on along the continued log grid (evaluations at steps "
        f"{', '.join(map(str, ext_grid))}) until every class has, up to {c0.max_train_steps} steps "
        "(`UNetConfig.max_train_steps`, `rfdiff.unet.training.target_step`). τ_mem is a first crossing, so going on "
        "changes no time already measured; runs made before the cap existed were continued exactly from their "
        f"last checkpoint (checkout labels when the continuations started, read as above: "
        f"{', '.join(f'`{c}`' for c in ext_commits) or 'none'}). "
        f"Extended: {len(extended)} of {len(done)} runs"
        + (f" ({', '.join(f'{n} → {last[n]}' for n in extended)})" if extended else "")
        + (f"; still running: {', '.join(extending)}" if extending else "") + ".",
        "",
        "Definitions (the theory's, `rfdiff.theory.timescales`, clock = Adam steps): τ_gen — half of the achievable "
        "descent of the normalised test error ε_te at the smallest loss time t₀; τ_onset — ε_tr ≤ −1 at t₀; τ_mem "
        "— half of the class's generated samples memorised (d₁/d₂ < 1/3 against the whole training set); "
        "'≤ s': reached at the first evaluation s, '–': not reached. Predicted: the random-features theory on the "
        "moment-matched mixture (`rfdiff.unet.theory_map`: π_c = n_c/n, σ_c² = Tr Cov_c/d, M = μ_c·μ_c'/d from all "
        f"training images of the class, ψ_n = n/d, ψ_p = {protocol.THEORY['psi_p']:g}, t = {protocol.THEORY['t']:g}, "
        f"{protocol.THEORY['activation']}; ridge clock), in theory units beside the measured steps.",
        "",
        (f"τ_gen falls within the first few Adam steps, before the first evaluation of the main grid (step "
         f"{c0.first_eval}); each main-grid and weighted run was therefore repeated up to step "
         f"{protocol.EARLY['train_steps']} with evaluations from step 1 (same seed, so the same initial weights, "
         f"minibatches and noise) and τ_gen is read from the joined curves ({len(early_diff)} runs joined; largest "
         f"|Δε_te| between a repeat and its run at their common steps: "
         f"{max(early_diff.values()) if early_diff else float('nan'):.1e})." if early_diff else
         "τ_gen is read from the runs' own evaluations (no early repeats found)."),
        "",
        "![per-class memorised fraction](memorisation.png)",
        "",
        "## Measured vs predicted order, per run",
        "",
        "| run | counts | σ² | steps | τ_gen (t₀) | τ_onset (t₀) | τ_mem | measured order: gen; mem | predicted τ_gen; "
        "τ_mem | predicted order: gen; mem | agree (gen, mem) | final f_mem [95 % CP] | final CFD (floor) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    agree: dict[str, list] = {}
    for name in done:
        s, p = summaries[name], pred[name]
        a, st, cl = s["arrays"], s["stats"], s["classes"]
        s1 = int(a["step"][0])
        pair = lambda arr, first=s1: " / ".join(_t(v, first) for v in arr)  # noqa: E731
        og, om = s["order_gen"][0], s["order_mem"]
        ag = None if og is None else _first(og) == p["order_gen"][0]
        am = None if om is None else _first(om) == p["order_mem"][0]
        agree[name] = [ag, am]
        yn = lambda v: "–" if v is None else ("yes" if v else "**no**")  # noqa: E731
        mem = " / ".join(f"{a['mem_fraction'][-1, c]:.2f} [{a['mem_ci_low'][-1, c]:.2f}, {a['mem_ci_high'][-1, c]:.2f}]"
                         for c in range(len(cl)))
        cfd = " / ".join(f"{a['cfd'][-1, c]:.1f} ({a['cfd_reference'][c]:.1f})" for c in range(len(cl)))
        lines.append(
            f"| {name} | {', '.join(str(v) for v in st['counts'])} | "
            f"{', '.join(f'{v:.3f}' for v in st['variance'])} | {last[name]} | "
            f"{pair(s['tau_gen'][:, 0], s.get('first_step', s1))} | "
            f"{pair(s['tau_onset'][:, 0])} | {pair(s['tau_mem'])} | {_o(og, names)}; {_o(om, names)} | "
            f"{' / '.join(f'{v:.3g}' for v in p['tau_gen'])}; {' / '.join(f'{v:.3g}' for v in p['tau_mem'])} | "
            f"{_o(p['order_gen'], names)}; {_o(p['order_mem'], names)} | {yn(ag)}, {yn(am)} | {mem} | {cfd} |")
    lines += ["", "Classes are listed high-variance first in every cell (a / b = first class / second class).", ""]

    # ---- summary per (pair, setting)
    lines += ["## Summary over seeds", "",
              "| pair | setting | runs | every class memorised | measured first (gen) | measured first (mem) "
              "| predicted first (gen; mem) | agreement gen | agreement mem |", "|---|---|---|---|---|---|---|---|---|"]
    for pair in protocol.PAIRS:
        for setting in list(protocol.SETTINGS) + [f"{k}_{protocol.WEIGHT_TARGET}" for k in protocol.WEIGHTED]:
            group = [n for n in done if n.startswith(f"{pair}_{setting}_s")]
            if not group:
                continue
            allmem = sum(bool(np.all(np.isfinite(summaries[n]["tau_mem"]))) for n in group)
            fg = [names[_first(summaries[n]["order_gen"][0])] if summaries[n]["order_gen"][0] else "unres."
                  for n in group]
            fm = [names[_first(summaries[n]["order_mem"])] if summaries[n]["order_mem"] else "unres." for n in group]
            pg, pm = names[pred[group[0]]["order_gen"][0]], names[pred[group[0]]["order_mem"][0]]
            cnt = lambda j: f"{sum(agree[n][j] is True for n in group)}/{len(group)}"  # noqa: E731
            lines.append(f"| {pair} | {setting} | {len(group)} | {allmem}/{len(group)} | {', '.join(fg)} | "
                         f"{', '.join(fm)} | {pg}; {pm} | {cnt(0)} | {cnt(1)} |")

    # ---- reversal boundary
    lines += ["", "## Where the theory puts the reversal", ""]
    rev_all, pilot_slopes = {}, {}
    for pair, cls in protocol.PAIRS.items():
        ref = next((n for n in done if n.startswith(f"{pair}_balanced_s")), None)
        if ref is None:
            continue
        rv = rev_all[pair] = reversal(summaries[ref], configs[ref], protocol.THEORY, protocol.CACHE)
        txt = {k: ("unresolved (the theory gives no finite time at some π of the scan)" if v is None else
                   "no flip for π ∈ [0.02, 0.98]" if not np.isfinite(v) else f"π_{names[cls[0]]} = {v:.3f}")
               for k, v in rv.items()}
        lines.append(f"* {pair}: predicted order of τ_gen flips at {txt['tau_gen']}; of τ_mem at {txt['tau_mem']} "
                     f"(n = {int(np.sum(summaries[ref]['stats']['counts']))}, "
                     f"d = {(28 // configs[ref].downsample) ** 2}).")

    # ---- pilot: τ_mem,c against n_c
    from rfdiff.theory.timescales import scaling_exponents

    cand = ["bag-sneaker_balanced_s0"] + [f"bag-sneaker_nc{nc}_s0" for nc in protocol.PILOT]
    pilot = dict(sorted((int(summaries[n]["stats"]["counts"][0]), n) for n in cand if n in done))
    if len(pilot) >= 2:
        ncs = np.array(list(pilot))
        tm = np.stack([summaries[n]["tau_mem"] for n in pilot.values()])  # (N, K)
        tg = np.stack([summaries[n]["tau_gen"][:, 0] for n in pilot.values()])
        lines += ["", "## Pilot: τ_mem,c against n_c (Bag vs Sneaker, balanced, seed 0)", "",
                  "| n_c | steps | τ_gen (t₀) Bag / Sneaker | τ_mem Bag / Sneaker | final f_mem Bag / Sneaker |",
                  "|---|---|---|---|---|"]
        for (nc, n), g, m in zip(pilot.items(), tg, tm):
            a = summaries[n]["arrays"]
            lines.append(f"| {nc} | {last[n]} | {' / '.join(_t(v, int(a['step'][0])) for v in g)} | "
                         f"{' / '.join(_t(v, 0) for v in m)} | "
                         f"{' / '.join(f'{v:.2f}' for v in a['mem_fraction'][-1])} |")
        slopes = [scaling_exponents(ncs, tm[:, c])[1] if np.isfinite(tm[:, c]).sum() >= 2 else np.nan
                  for c in range(tm.shape[1])]
        pilot_slopes = dict(zip((names[c] for c in protocol.PAIRS["bag-sneaker"]), slopes))
        lines += ["", "Log–log slope of τ_mem,c against n_c (finite times only; '–': fewer than two): " + ", ".join(
            f"{names[c]} {'–' if np.isnan(v) else f'{v:.2f}'}" for c, v in zip(protocol.PAIRS['bag-sneaker'], slopes))
            + "."]

    # ---- weighted runs
    wpath = protocol.CACHE / "weights.json"
    wjson = json.loads(wpath.read_text()) if wpath.is_file() else {}
    wrows = []
    for setting in protocol.WEIGHTED:
        e = wjson.get(f"bag-sneaker/{setting}")
        for seed in protocol.SEEDS:
            wn, un = f"bag-sneaker_{setting}_{protocol.WEIGHT_TARGET}_s{seed}", f"bag-sneaker_{setting}_s{seed}"
            if wn in done and un in done and e is not None:
                wrows.append((setting, seed, e, summaries[un], summaries[wn]))
    if wrows:
        lines += ["", f"## Loss weights from the theory (target \"{protocol.WEIGHT_TARGET}\") on the U-Net", "",
                  "| setting | seed | weights Bag / Sneaker | predicted τ_gen before → after | predicted τ_mem "
                  "before → after | measured τ_gen (t₀) unweighted → weighted | measured τ_mem unweighted → weighted |",
                  "|---|---|---|---|---|---|---|"]
        for setting, seed, e, su, sw in wrows:
            s1, s2 = su.get("first_step", int(su["arrays"]["step"][0])), sw.get("first_step", int(sw["arrays"]["step"][0]))
            f = lambda a, b: " / ".join(f"{_t(x, s1)} → {_t(y, s2)}" for x, y in zip(a, b))  # noqa: E731
            g = lambda a, b: " / ".join(f"{x:.3g} → {y:.3g}" for x, y in zip(a, b))  # noqa: E731
            lines.append(f"| {setting} | {seed} | {' / '.join(f'{w:.3g}' for w in e['weights'])} | "
                         f"{g(e['tau_gen_before'], e['tau_gen_after'])} | {g(e['tau_mem_before'], e['tau_mem_after'])} "
                         f"| {f(su['tau_gen'][:, 0], sw['tau_gen'][:, 0])} | {f(su['tau_mem'], sw['tau_mem'])} |")

    lines += ["", "![pilot and weights](pilot_and_weights.png)", "",
              "Per-class normalised train/test errors at t₀, memorised fraction and classifier Fréchet distance of "
              "the seed-0 runs, and their last samples:", "", "![per-class curves](per_class_curves.png)", "",
              "![samples](samples.png)", "", "## Reading (generated from the tables above)", ""]
    lines += _reading(done, summaries, pred, agree, names, protocol, wrows, rev_all, pilot_slopes, last)
    path = out / "README.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    print(f"wrote {path}")
    return path


def _reading(done, summaries, pred, agree, names, protocol, wrows, rev_all, pilot_slopes, last) -> list[str]:
    main = [n for n in done if "_nc" not in n and protocol.WEIGHT_TARGET not in n]
    out = []
    allmem = [n for n in main if np.all(np.isfinite(summaries[n]["tau_mem"]))]
    out.append(f"* Every class reached memorisation (f_mem ≥ 1/2) in {len(allmem)} of {len(main)} main-grid runs"
               + ("." if len(allmem) == len(main) else
                  f"; not in: {', '.join(n for n in main if n not in allmem)}."))
    for j, what in ((0, "τ_gen"), (1, "τ_mem")):
        res = [agree[n][j] for n in main]
        out.append(f"* {what}: the measured first class agrees with the theory's in {sum(r is True for r in res)} "
                   f"of {len(res)} runs, disagrees in {sum(r is False for r in res)}, unresolved in "
                   f"{sum(r is None for r in res)}.")
    hv_first = [n for n in main if summaries[n]["order_mem"] is not None
                and summaries[n]["order_mem"][0] == summaries[n]["classes"][0]]
    out.append(f"* The high-variance class memorised first in {len(hv_first)} of "
               f"{sum(summaries[n]['order_mem'] is not None for n in main)} runs with a resolved τ_mem order.")
    for setting in protocol.SETTINGS:
        grp = [n for n in main if f"_{setting}_s" in n]
        mins = [summaries[n]["order_mem"] for n in grp if summaries[n]["order_mem"] is not None]
        minority_first = sum(o[0] == summaries[n]["classes"][int(np.argmin(summaries[n]["stats"]["counts"]))]
                             for n, o in zip(grp, [summaries[n]["order_mem"] for n in grp]) if o is not None)
        if setting != "balanced" and mins:
            out.append(f"* {setting}: the minority class memorised first in {minority_first} of {len(mins)} runs "
                       "with a resolved order.")
        if setting == "high-majority" and mins and minority_first > len(mins) / 2:
            flips = [p for p, r in rev_all.items() if r["tau_mem"] is not None and not np.isfinite(r["tau_mem"])]
            ratio = [pred[n]["tau_mem"][0] / pred[n]["tau_mem"][1] for n in grp]
            out.append(
                f"  Here measurement and theory disagree: the low-variance minority ({min(protocol.SETTINGS[setting])} "
                "images) memorises first, while "
                f"the theory predicts the high-variance class first (predicted τ_mem ratio high/low {min(ratio):.2f}–"
                f"{max(ratio):.2f}; no τ_mem reversal for π ∈ [0.02, 0.98] for {', '.join(flips) or 'no pair'}). "
                "Reason, from the pilot: the U-Net's τ_mem,c grows with the number of images of the class (log–log "
                "slope over the n_c with a finite τ_mem " + ", ".join(f"{k} {v:.2f}" for k, v in pilot_slopes.items() if np.isfinite(v)) + "), so a "
                "class of a few images copies early whatever its variance; in the moment-matched theory at ψ_n = n/d ≈ 0.1 "
                "the class proportion moves τ_mem only weakly. The random-features model at this ψ_n does not "
                "capture the U-Net's per-class capacity to copy a handful of images.")
    if wrows:
        moved = []
        for setting, seed, e, su, sw in wrows:
            pred_dir = np.sign(np.log(np.asarray(e["tau_mem_after"]) / np.asarray(e["tau_mem_before"])))
            meas = np.sign(np.log(np.asarray(sw["tau_mem"]) / np.asarray(su["tau_mem"])))
            moved.append(bool(np.all(pred_dir[np.isfinite(meas)] == meas[np.isfinite(meas)])))
        out.append(f"* Loss weights: the measured τ_mem of both classes moved in the predicted direction in "
                   f"{sum(moved)} of {len(moved)} (setting, seed) pairs.")
        lost = sum(bool(np.isposinf(sw["tau_mem"][0]) and np.isfinite(su["tau_mem"][0])) for _, _, _, su, sw in wrows)
        flipped = sum(sw["order_mem"] is not None and su["order_mem"] is not None
                      and sw["order_mem"][0] != su["order_mem"][0] for _, _, _, su, sw in wrows)
        out.append(f"  The theory's weights aim to equalise τ_mem (predicted ratio Bag/Sneaker → "
                   f"{np.mean([e['tau_mem_after'][0] / e['tau_mem_after'][1] for _, _, e, _, _ in wrows]):.2f}); on the "
                   f"U-Net the down-weighted Bag did not reach f_mem = 1/2 by the last evaluation in {lost} of "
                   f"{len(wrows)} runs (last steps "
                   f"{', '.join(str(last[f'bag-sneaker_{st}_{protocol.WEIGHT_TARGET}_s{sd}']) for st, sd, _, su, sw in wrows if np.isposinf(sw['tau_mem'][0]) and np.isfinite(su['tau_mem'][0]))}"
                   f") and the memorisation order flipped in {flipped}: the U-Net's "
                   "per-class times respond to the weights far more strongly than the RF theory's, so these weights "
                   "overshoot.")
    return out


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit("run validation/unet/report.py")
