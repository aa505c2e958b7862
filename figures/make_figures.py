"""Regenerate every theory figure of rfdiff: ``python figures/make_figures.py [--quick] [--only NAME]``.

Each topic lives in its own module ``figures/fig_<topic>.py`` whose ``make(quick)`` yields ``(name, Figure)``
pairs (compute, then draw; nothing saved there). This driver discovers the modules, runs them in order inside
the house style (``rfdiff.plots.style()``), writes each figure as ``<outdir>/<name>.pdf`` (vector) and
``<name>.png`` (300 dpi) with ``rfdiff.plots.save_figure``, closes it, and prints one progress line per figure:
name, seconds since the previous figure (its computation included), the peak resident memory of the process so
far, and the files. It alone picks the matplotlib backend (Agg); the library never does. ``--quick`` uses
coarse grids (seconds instead of minutes) and is what the tests exercise.
"""

from __future__ import annotations

import argparse
import importlib.util
import resource
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


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, MiB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--outdir", type=Path, default=HERE / "output")
    ap.add_argument("--quick", action="store_true", help="coarse grids, for smoke tests")
    ap.add_argument("--only", action="append", default=[], help="topic name(s), e.g. spectrum")
    args = ap.parse_args(argv)
    topics = {p.stem.removeprefix("fig_"): p for p in discover()}
    unknown = [t for t in args.only if t not in topics]
    if unknown:
        ap.error(f"--only: unknown topic(s) {unknown}; choose from {sorted(topics)}")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rfdiff.plots import save_figure, style

    args.outdir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    count = 0
    for topic, path in topics.items():
        if args.only and topic not in args.only:
            continue
        t0 = time.perf_counter()
        with style():
            for name, fig in load(path).make(quick=args.quick):
                written = save_figure(fig, args.outdir / name)
                plt.close(fig)
                count += 1
                now = time.perf_counter()
                print(f"{name}: {now - t0:.1f} s, peak RSS {peak_rss_mb():.0f} MiB -> "
                      f"{', '.join(p.name for p in written)}", flush=True)  # one progress line per figure
                t0 = now
        if "jax" in sys.modules:  # a topic's compiled programs are not reused by the next: free them (peak memory)
            import gc

            sys.modules["jax"].clear_caches()
            gc.collect()
    print(f"{count} figure(s) in {time.perf_counter() - start:.1f} s, peak RSS {peak_rss_mb():.0f} MiB, "
          f"under {args.outdir}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
