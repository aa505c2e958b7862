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

    # --- speciation -----------------------------------------------------------------------------------

    # --- simulate / compare ---------------------------------------------------------------------------

    return parser


def _cmd_spectrum(args) -> int:
    from .spectrum_cli import run_spectrum

    npz, png = run_spectrum(args.spec, args.out, num_points=args.num_points, lam_min=args.lam_min,
                            lam_max=args.lam_max)
    print(f"wrote {npz}\nwrote {png}")
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
