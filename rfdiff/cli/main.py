"""Command-line interface: ``rfdiff <subcommand> ...``.

Each subcommand is a small function ``_cmd_<name>(args)`` registered in :func:`build_parser`; the science
lives in the library modules, the CLI only reads a spec, calls them and writes results atomically.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rfdiff", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    # Subcommands register themselves below, one block each (spectrum, curves, timescales, phase-diagram,
    # speciation, simulate, compare). Keep the blocks separate so they stay easy to read and to merge.

    # --- spectrum -------------------------------------------------------------------------------------
    p = sub.add_parser("spectrum", help="asymptotic spectrum of the feature covariance U (density, per class)")
    p.add_argument("spec", help="TOML spec ([mixture], [model], optional [finite] d and [spectrum])")
    p.add_argument("--out", default=None, help="output directory (default: next to the spec)")
    p.add_argument("--num-points", type=int, default=None, help="log-λ grid size (default 1000)")
    p.add_argument("--lam-min", type=float, default=None, help="smallest λ (default 1e-4)")
    p.add_argument("--lam-max", type=float, default=None, help="largest λ (default 1e2)")
    p.set_defaults(func=_cmd_spectrum)

    # --- curves / timescales / phase-diagram ----------------------------------------------------------
    for name, helptext, func in [
        ("curves", "per-class learning curves: asymptotic theory and, with a finite d, the exact closed form",
         _cmd_curves),
        ("timescales", "per-class tau_gen, tau_mem, tau_onset (theory and, with a finite d, closed form)",
         _cmd_timescales),
    ]:
        p = sub.add_parser(name, help=helptext)
        p.add_argument("spec", help="TOML spec ([mixture], [model], optional [finite] d, [curves])")
        p.add_argument("--out", default=None, help="result file (.npz, labelled arrays)")
        p.add_argument("--d", type=int, default=None, help="also compute the finite-d closed form at this d")
        p.add_argument("--taus", default=None, help="lo,hi,num of the log tau grid (default 1e-3,1e6,120)")
        p.add_argument("--kind", default="flow", choices=["flow", "ridge"], help="finite-d dynamics")
        p.set_defaults(func=func)
    p = sub.add_parser("phase-diagram", help="per-class theory times over a parameter grid (sharded, resumable)")
    p.add_argument("spec", help="TOML spec; axes may be given in [phase_diagram] axes = {name = [lo, hi, num]}")
    p.add_argument("--axis", action="append", default=[], metavar="NAME=LO:HI:NUM",
                   help="grid axis (sigma_ratio, pi1, separation, psi_p, psi_n, t); repeat for each axis")
    p.add_argument("--fix", action="append", default=[], metavar="NAME=VALUE", help="fixed parameter")
    p.add_argument("--out", required=True, help="result file (.npz); shards: one file per shard")
    p.add_argument("--chunk-size", type=int, default=512)
    p.add_argument("--n-quad", type=int, default=None, help="shift quadrature points per class direction")
    p.add_argument("--shard", type=int, default=0)
    p.add_argument("--num-shards", type=int, default=1)
    p.set_defaults(func=_cmd_phase_diagram)

    # --- speciation -----------------------------------------------------------------------------------
    p = sub.add_parser("speciation", help="per-class speciation times vs imbalance ratio (theory + backward SDE)",
                       description="Per-class speciation times t_S,c of the backward diffusion against the "
                                   "imbalance ratio: theory (rfdiff.speciation) and exact-score backward-SDE "
                                   "simulation with bootstrap error bars. Spec section [speciation]: d, theta, "
                                   "n_trajectories, min_minority, t_max, t_min, num_steps, method, chunk, seed.")
    p.add_argument("spec", help="TOML spec ([mixture] and optional [speciation])")
    p.add_argument("--ratios", default="1,10,100,1000", help="comma-separated imbalance ratios π_max/π_min")
    p.add_argument("--out", default="speciation.npz", help="result file (.npz); a PNG is written next to it")
    p.add_argument("--theory-only", action="store_true", help="skip the simulation")
    p.add_argument("--d", type=int, default=None, help="override [speciation] d")
    p.add_argument("--n", type=int, default=None, help="override [speciation] n_trajectories")
    p.set_defaults(func=_cmd_speciation)

    # --- simulate / compare ---------------------------------------------------------------------------
    # `simulate` is a group: `simulate rf` here; other simulators (e.g. `simulate unet`) add parsers to `sim_sub`.
    p = sub.add_parser("simulate", help="train score models on data and log per-class curves")
    sim_sub = p.add_subparsers(dest="simulator", required=True)
    p = sim_sub.add_parser("rf", help="jitted RF score model on a finite realisation of the spec's mixture")
    p.add_argument("spec", help="TOML spec with [mixture], [model], [finite] and [simulate] sections")
    p.add_argument("--out", default="runs/simulate_rf", help="output directory (sim.npz, theory.npz, checkpoint/)")
    p.add_argument("--resume", action="store_true", help="continue from out/checkpoint (bit-identical)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_cmd_simulate_rf)
    _add_simulate_unet(sim_sub)  # `simulate unet` (rfdiff/unet.py)
    p = sub.add_parser("compare", help="per-class τ_gen, τ_mem, τ_onset: theory curves vs a simulation log")
    p.add_argument("theory", help="curve file (tau, eps_train, eps_test[, eps_train_inf]), e.g. theory.npz")
    p.add_argument("simulation", help="simulation log (sim.npz of `rfdiff simulate rf`) or curve file")
    p.add_argument("--out", default=None, help="output directory (default: next to the simulation file)")
    p.add_argument("--source", choices=("finite", "theory"), default=None,
                   help="for an `rfdiff curves` file: finite-d closed form (default if present) or d → ∞ theory")
    p.set_defaults(func=_cmd_compare)

    return parser


# --- simulate unet ------------------------------------------------------------------------------------
def _add_simulate_unet(simulate_sub) -> None:
    p = simulate_sub.add_parser("unet", help="train a U-Net on class-imbalanced Fashion-MNIST, per-class metrics",
                                description="Train the U-Net of the [unet] section of SPEC (see rfdiff/unet.py) "
                                            "with log-spaced per-class evaluations; resumable.")
    p.add_argument("spec", help="TOML spec with a [unet] section (examples/unet_fmnist.toml)")
    p.add_argument("--out", default=None, help="results directory (default runs/unet/<spec name>)")
    p.add_argument("--resume", action="store_true", help="continue the run stored in --out")
    p.add_argument("--data", default=None, help="Fashion-MNIST directory (else $RFDIFF_FASHION_MNIST, Debian)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_simulate_unet)


def _cmd_simulate_unet(args) -> int:
    import dataclasses
    import json
    import tomllib
    from pathlib import Path

    from ..io import atomic_write_text
    from ..unet.training import UNetConfig, summarise, train

    path = Path(args.spec)
    if not path.is_file():
        raise FileNotFoundError(f"spec file not found: {path}")
    try:
        spec = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"spec {path} is not valid TOML: {err}") from None
    try:
        cfg = UNetConfig.from_spec(spec)
    except TypeError as err:  # wrong value types in the spec
        raise ValueError(f"[unet] {err}") from None
    if args.data:
        cfg = dataclasses.replace(cfg, data_path=args.data)
    out = Path(args.out) if args.out else Path("runs") / "unet" / path.stem
    train(cfg, out, resume=args.resume, progress=not args.quiet)
    s = summarise(out)
    keep = {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in s.items() if k not in ("arrays", "attrs")}
    atomic_write_text(out / "summary.json", json.dumps(keep, indent=1))
    print(f"predicted order {s['predicted_order']} ({s['rule']})")
    print(f"measured order: memorisation {s['order_mem']}, generalisation at t={s['times'][0]:.3g} "
          f"{s['order_gen'][0]}; results in {out}")
    return 0



def _cmd_spectrum(args) -> int:
    from .spectrum import run_spectrum

    npz, png = run_spectrum(args.spec, args.out, num_points=args.num_points, lam_min=args.lam_min,
                            lam_max=args.lam_max)
    print(f"wrote {npz}\nwrote {png}")
    return 0



def _cmd_simulate_rf(args):
    from .simulate import simulate_spec
    from ..io import load_spec

    paths = simulate_spec(load_spec(args.spec), args.out, resume=args.resume, progress=not args.no_progress)
    for path in paths:
        print(f"wrote {path}")
    return 0


def _cmd_compare(args):
    from pathlib import Path

    from ..simulate.compare import compare_timescales, load_curves, write_comparison

    for f in (args.theory, args.simulation):
        if not Path(f).is_file():
            raise FileNotFoundError(f"no such file: {f}")
    theory, sim = load_curves(args.theory, args.source), load_curves(args.simulation)
    out = Path(args.out) if args.out else Path(args.simulation).parent
    for path in write_comparison(out, compare_timescales(theory, sim), title=f"{args.theory} vs {args.simulation}"):
        print(f"wrote {path}")
    return 0


def _cmd_speciation(args) -> int:
    from pathlib import Path

    import jax
    import numpy as np

    from ..io import load_spec, mixture_from_spec, save_result
    from ..simulate.speciation import speciation_vs_ratio

    spec = load_spec(args.spec)
    cfg = dict(spec.get("speciation", {}))
    d = int(args.d if args.d is not None else cfg.get("d", spec.get("finite", {}).get("d", 1024)))
    try:
        ratios = [float(r) for r in args.ratios.split(",") if r.strip()]
    except ValueError:
        raise ValueError(f"--ratios must be comma-separated numbers, got {args.ratios!r}") from None
    out = Path(args.out)
    with jax.enable_x64(True):  # theory in float64; the simulation itself runs in float32
        mix = mixture_from_spec(spec, d)
        res = speciation_vs_ratio(
            mix, d, ratios, theta=float(cfg.get("theta", 0.9)), simulate=not args.theory_only,
            n=int(args.n if args.n is not None else cfg.get("n_trajectories", 4000)),
            min_minority=int(cfg.get("min_minority", 0)), t_max=float(cfg.get("t_max", 8.0)),
            t_min=float(cfg.get("t_min", 1e-3)), num_steps=int(cfg.get("num_steps", 300)),
            chunk=int(cfg.get("chunk", 4096)), method=str(cfg.get("method", "exponential")),
            seed=int(cfg.get("seed", spec.get("finite", {}).get("seed", 0))),
            checkpoint_dir=out.with_suffix(".ckpt"), progress=True)
    dims = {"ratio": ["ratio"], "proportions": ["ratio", "class"], "theory": ["ratio", "class"],
            "sim": ["ratio", "class"], "se": ["ratio", "class"], "ci": ["ratio", "class", "bound"],
            "counts": ["ratio", "class"], "n": ["ratio"],
            "ratio_fine": ["ratio_fine"], "theory_fine": ["ratio_fine", "class"]}
    attrs = {"dims": {k: v for k, v in dims.items() if k in res},
             "coords": {"ratio": ratios, "class": list(range(mix.num_classes)), "bound": ["2.5%", "97.5%"]},
             "d": d, "spec": spec, "units": "diffusion time t (inf: committed from the start)"}
    save_result(out, res, attrs)
    from ..plots import plot_times_vs_ratio

    png = plot_times_vs_ratio(res, out.with_suffix(".png"), title=f"d = {d}")
    for i, r in enumerate(ratios):
        line = f"ratio {r:g}: theory {np.array2string(res['theory'][i], precision=3)}"
        if "sim" in res:
            line += (f"  sim {np.array2string(res['sim'][i], precision=3)} ± "
                     f"{np.array2string(res['se'][i], precision=3)}  (counts {res['counts'][i].astype(int)})")
        print(line)
    print(f"wrote {out} and {png}")
    return 0


# --- curves / timescales / phase-diagram -------------------------------------------------------------
def _dyn_setup(args):
    import numpy as np

    from ..model.rf import RFModel
    from ..io import load_spec, mixture_from_spec

    spec = load_spec(args.spec)
    m = spec.get("model", {})
    model = RFModel(float(m.get("psi_p", 8.0)), float(m.get("psi_n", 2.0)), float(m.get("t", 0.01)),
                    str(m.get("activation", "tanh")))
    d = args.d if getattr(args, "d", None) is not None else spec.get("finite", {}).get("d")
    grid = spec.get("curves", {}).get("taus", [1e-3, 1e6, 120])
    if getattr(args, "taus", None):
        grid = [float(v) for v in args.taus.split(",")]
    if len(grid) != 3 or not 0 < grid[0] < grid[1] or int(grid[2]) < 2:
        raise ValueError(f"taus must be lo,hi,num with 0 < lo < hi and num >= 2, got {grid}")
    taus = np.logspace(np.log10(grid[0]), np.log10(grid[1]), int(grid[2]))
    return spec, mixture_from_spec(spec, d=d), model, d, taus


def _dyn_curves(args):
    import jax
    import numpy as np

    from ..theory.curves import theory_curves

    spec, mix, model, d, taus = _dyn_setup(args)
    arrays = {f"theory_{k}": v for k, v in theory_curves(mix, model, taus).items()}
    if d is not None:
        from ..finite.closed_form import finite_curves
        from ..finite.features import population_moments, realise, train_moments

        prob = realise(jax.random.key(int(spec.get("finite", {}).get("seed", 0))), mix, model, int(d))
        fc = finite_curves(prob, train_moments(prob), population_moments(prob))
        cur, asy = fc(taus, kind=args.kind), fc.asymptote()
        arrays.update({f"finite_{k}": np.asarray(v) for k, v in cur.items()})
        arrays.update({f"finite_{k}_inf": np.asarray(v[:, 0]) for k, v in asy.items()})
    return taus, arrays, d


def _cmd_curves(args):
    from ..io import save_result

    taus, arrays, d = _dyn_curves(args)
    dims = {k: (["class", "tau"] if v.ndim == 2 else ["class"] if v.ndim == 1 else []) for k, v in arrays.items()}
    out = args.out or "curves.npz"
    save_result(out, {"tau": taus, **arrays}, {"dims": {"tau": ["tau"], **dims}, "coords": {"tau": taus},
                                               "spec": args.spec, "d": d, "kind": args.kind})
    print(f"wrote {out}")


def _cmd_timescales(args):
    import numpy as np

    from ..io import save_result
    from ..theory.timescales import curve_timescales

    taus, arrays, d = _dyn_curves(args)
    res = {}
    for src in ["theory", "finite"] if d is not None else ["theory"]:
        inf = arrays[f"{src}_eps_train_inf"]
        ts = curve_timescales(taus, arrays[f"{src}_eps_test"], arrays[f"{src}_eps_train"], inf)
        for k, v in ts._asdict().items():
            res[f"{src}_{k}"] = np.asarray(v)
    K = res["theory_tau_gen"].shape[0]
    print("source   class   tau_gen     tau_mem     tau_onset   min eps_te  eps_tr(inf)")
    for src in ["theory", "finite"] if d is not None else ["theory"]:
        for c in range(K):
            print(f"{src:8s} {c:5d}  " + "  ".join(f"{res[f'{src}_{k}'][c]:10.4g}" for k in
                                                  ["tau_gen", "tau_mem", "tau_onset", "eps_test_min",
                                                   "eps_train_inf"]))
    if args.out:
        save_result(args.out, res, {"dims": {k: ["class"] for k in res}, "spec": args.spec, "d": d})
        print(f"wrote {args.out}")


def _parse_axis(text):
    import numpy as np

    try:
        name, rng = text.split("=")
        lo, hi, num = rng.split(":")
        return name.strip(), np.linspace(float(lo), float(hi), int(num))
    except ValueError:
        raise ValueError(f"--axis must look like NAME=LO:HI:NUM, got {text!r}") from None


def _cmd_phase_diagram(args):
    import jax
    import numpy as np

    from ..theory.phase import PARAMETERS, timescale_fn
    from ..sweep import phase_diagram

    spec, mix, model, _, taus = _dyn_setup(args)
    sec = spec.get("phase_diagram", {})
    axes = {k: np.linspace(float(v[0]), float(v[1]), int(v[2])) for k, v in sec.get("axes", {}).items()}
    axes.update(dict(_parse_axis(a) for a in args.axis))
    fixed = {k: float(v) for k, v in sec.get("fixed", {}).items()}
    for f in args.fix:
        k, _, v = f.partition("=")
        fixed[k.strip()] = float(v)
    if not axes:
        raise ValueError("phase-diagram needs at least one axis (--axis or [phase_diagram] axes)")
    bad = [k for k in list(axes) + list(fixed) if k not in PARAMETERS]
    if bad:
        raise ValueError(f"unknown parameter(s) {bad}; choose from {PARAMETERS}")
    sweeps_sep = "separation" in axes or fixed.get("separation", 0.0) > 0
    n_quad = args.n_quad or (256 if sweeps_sep or float(np.abs(np.asarray(mix.centroid_gram)).max()) > 0 else 1)
    base = timescale_fn(mix, model, taus=taus, n_quad=n_quad)
    fn = lambda q: base({**q, **{k: jax.numpy.float64(v) for k, v in fixed.items()}})
    with jax.enable_x64(True):
        phase_diagram(fn, axes, out_dims={k: ("class",) for k in
                                          ["tau_gen", "tau_mem", "tau_onset", "eps_test_min", "eps_train_inf"]},
                      chunk_size=args.chunk_size, path=args.out, shard=args.shard, num_shards=args.num_shards,
                      attrs={"spec": args.spec, "fixed": fixed, "n_quad": n_quad, "taus": list(taus)})
    print(f"wrote {args.out}")


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as err:  # bad spec or input: one clear line, no traceback
        print(f"rfdiff {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
