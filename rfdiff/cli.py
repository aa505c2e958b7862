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

    return parser


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
