"""Regenerate every theory figure of rfdiff: ``python figures/make_figures.py [--quick] [--only NAME]``.

Each topic lives in its own module ``figures/fig_<topic>.py`` exposing ``make(outdir, quick) -> list[Path]``;
this driver discovers them, runs them in order and prints where each PNG went. ``--quick`` uses coarse grids
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
        for w in written:
            print(f"[{topic}] wrote {w}")
        print(f"[{topic}] done in {time.perf_counter() - t0:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
