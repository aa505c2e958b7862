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

    # --- simulate / compare ---------------------------------------------------------------------------

    return parser


# --- curves / timescales / phase-diagram -------------------------------------------------------------
def _dyn_setup(args):
    import numpy as np

    from .features import RFModel
    from .io import load_spec, mixture_from_spec

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

    from .dynamics_theory import theory_curves

    spec, mix, model, d, taus = _dyn_setup(args)
    arrays = {f"theory_{k}": v for k, v in theory_curves(mix, model, taus).items()}
    if d is not None:
        from .dynamics import finite_curves
        from .features import population_moments, realise, train_moments

        prob = realise(jax.random.key(int(spec.get("finite", {}).get("seed", 0))), mix, model, int(d))
        fc = finite_curves(prob, train_moments(prob), population_moments(prob))
        cur, asy = fc(taus, kind=args.kind), fc.asymptote()
        arrays.update({f"finite_{k}": np.asarray(v) for k, v in cur.items()})
        arrays.update({f"finite_{k}_inf": np.asarray(v[:, 0]) for k, v in asy.items()})
    return taus, arrays, d


def _cmd_curves(args):
    from .io import save_result

    taus, arrays, d = _dyn_curves(args)
    dims = {k: (["class", "tau"] if v.ndim == 2 else ["class"] if v.ndim == 1 else []) for k, v in arrays.items()}
    out = args.out or "curves.npz"
    save_result(out, {"tau": taus, **arrays}, {"dims": {"tau": ["tau"], **dims}, "coords": {"tau": taus},
                                               "spec": args.spec, "d": d, "kind": args.kind})
    print(f"wrote {out}")


def _cmd_timescales(args):
    import numpy as np

    from .io import save_result
    from .timescales import curve_timescales

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

    from .phase import PARAMETERS, timescale_fn
    from .sweep import phase_diagram

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
