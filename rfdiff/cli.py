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
    p = sub.add_parser("compare", help="per-class τ_gen, τ_mem, τ_onset: theory curves vs a simulation log")
    p.add_argument("theory", help="curve file (tau, eps_train, eps_test[, eps_train_inf]), e.g. theory.npz")
    p.add_argument("simulation", help="simulation log (sim.npz of `rfdiff simulate rf`) or curve file")
    p.add_argument("--out", default=None, help="output directory (default: next to the simulation file)")
    p.set_defaults(func=_cmd_compare)

    return parser


def _cmd_simulate_rf(args):
    from .compare import simulate_spec
    from .io import load_spec

    paths = simulate_spec(load_spec(args.spec), args.out, resume=args.resume, progress=not args.no_progress)
    for path in paths:
        print(f"wrote {path}")
    return 0


def _cmd_compare(args):
    from pathlib import Path

    from .compare import compare_timescales, load_curves, write_comparison

    for f in (args.theory, args.simulation):
        if not Path(f).is_file():
            raise FileNotFoundError(f"no such file: {f}")
    theory, sim = load_curves(args.theory), load_curves(args.simulation)
    out = Path(args.out) if args.out else Path(args.simulation).parent
    for path in write_comparison(out, compare_timescales(theory, sim), title=f"{args.theory} vs {args.simulation}"):
        print(f"wrote {path}")
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
