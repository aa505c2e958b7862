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

    return parser


def _cmd_speciation(args) -> int:
    from pathlib import Path

    import jax
    import numpy as np

    from .io import load_spec, mixture_from_spec, save_result
    from .speciation_sim import speciation_vs_ratio

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
    from .speciation_plot import plot_times_vs_ratio

    png = plot_times_vs_ratio(res, out.with_suffix(".png"), title=f"d = {d}")
    for i, r in enumerate(ratios):
        line = f"ratio {r:g}: theory {np.array2string(res['theory'][i], precision=3)}"
        if "sim" in res:
            line += (f"  sim {np.array2string(res['sim'][i], precision=3)} ± "
                     f"{np.array2string(res['se'][i], precision=3)}  (counts {res['counts'][i].astype(int)})")
        print(line)
    print(f"wrote {out} and {png}")
    return 0


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
