"""Regenerate every theory figure of rfdiff: ``python figures/make_figures.py [--quick] [--only NAME]``.

Each topic lives in its own module ``figures/fig_<topic>.py`` exposing ``make(outdir, quick) -> list[Path]``;
this driver discovers them, runs them in order and prints one progress line per figure module (name, seconds,
the PNGs it wrote). It alone picks the matplotlib backend (Agg); the library never does. ``--quick`` uses coarse grids
(seconds instead of minutes) and is what the tests exercise.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def discover():
    return sorted(HERE.glob("fig_*.py"))


def load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--outdir", type=Path, default=HERE / "output")
    ap.add_argument("--quick", action="store_true", help="coarse grids, for smoke tests")
    ap.add_argument("--only", action="append", default=[], help="topic name(s), e.g. spectrum")
    args = ap.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    args.outdir.mkdir(parents=True, exist_ok=True)
    for path in discover():
        topic = path.stem.removeprefix("fig_")
        if args.only and topic not in args.only:
            continue
        t0 = time.perf_counter()
        written = load(path).make(args.outdir, quick=args.quick)
        names = ", ".join(str(w) for w in written)
        print(f"{topic}: {time.perf_counter() - t0:.1f} s -> {names}", flush=True)  # one progress line each
    return 0


if __name__ == "__main__":
    sys.exit(main())
