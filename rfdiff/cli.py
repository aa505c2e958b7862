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
    simulate = sub.add_parser("simulate", help="run a simulation (rf, unet)")
    simulate_sub = simulate.add_subparsers(dest="simulate_command", required=True)
    _add_simulate_unet(simulate_sub)

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

    from .io import atomic_write_text
    from .unet import UNetConfig, summarise, train

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
