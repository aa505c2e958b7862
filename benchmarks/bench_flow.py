"""Exact gradient-flow theory curves (``theory_curves(..., clock="flow")``): this code against a baseline tree.

    python benchmarks/bench_flow.py [--old-tree DIR] [--reps 3]

Each (tree, case) runs in its own Python process (``PYTHONPATH`` = the tree): the first call (population, compilation
of the contour solve, the solve) and the best of ``--reps`` repeated calls, wall clock and CPU time of the process
(on a shared 2-core machine the CPU time is the steadier measure); the ridge-clock curves of the same case for scale.
The parent compares the trees' curves (largest relative difference of ε where |ε| > 1e-3). Writes
``benchmarks/results/flow.md``.

Cases: the three-class weak-centroid mixture of ``validation/timescales`` on its 160-point τ grid (the issue's
"well under a second after compilation" case), ``examples/dynamics_two_class.toml`` on the CLI's 120 points, and
the relu, strong-centroid K = 4 mixture of ``benchmarks/bench_memory.py`` (1 024 shift nodes, the default).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rfdiff.io import atomic_write_text  # noqa: E402

CHILD = r"""
import json, sys, time
import numpy as np
from rfdiff import GaussianMixture, RFModel
from rfdiff.spec import load_spec
from rfdiff.theory.curves import theory_curves

case, out = sys.argv[1], sys.argv[2]
if case == "three":
    mix, model, taus = (GaussianMixture.create([0.2, 0.3, 0.5], [4.0, 2.0, 1.0]), RFModel(2.0, 1.0, 0.01, "tanh"),
                        np.logspace(-3, 6, 160))
else:
    spec = load_spec(case)
    mix, model, taus = spec.build_mixture(), spec.build_model(), np.logspace(-3, 6, 120)

def timed(clock):
    w, c = time.perf_counter(), time.process_time()
    r = theory_curves(mix, model, taus, clock=clock)
    return time.perf_counter() - w, time.process_time() - c, r

first_w, first_c, r = timed("flow")
reps = [timed("flow")[:2] for _ in range(int(sys.argv[3]))]
ridge = min(timed("ridge")[0] for _ in range(2))
np.savez(out + ".npz", eps_test=r["eps_test"], eps_train=r["eps_train"])
json.dump({"first_wall": first_w, "first_cpu": first_c, "warm_wall": min(x[0] for x in reps),
           "warm_cpu": min(x[1] for x in reps), "ridge_warm": ridge}, open(out + ".json", "w"))
"""


def run(tree: Path, case: str, reps: int, tmp: Path, label: str) -> tuple[dict, dict]:
    out = str(tmp / f"{label}_{abs(hash(case))}")
    env = {**os.environ, "PYTHONPATH": str(tree), "RFDIFF_JAX_CACHE": "0"}
    p = subprocess.run([sys.executable, "-c", CHILD, case, out, str(reps)], env=env, capture_output=True, text=True,
                       cwd=tmp)
    if p.returncode:
        raise RuntimeError(f"{label} {case}: {p.stderr[-2000:]}")
    return json.loads(Path(out + ".json").read_text()), dict(np.load(out + ".npz"))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old-tree", default=None, help="checkout of the baseline code")
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args(argv)
    git = lambda *a, cwd=ROOT: subprocess.run(["git", *a], capture_output=True, text=True, cwd=cwd).stdout.strip()  # noqa: E731
    commit = git("rev-parse", "--short", "HEAD")
    old = Path(args.old_tree) if args.old_tree else None
    old_commit = git("rev-parse", "--short", "HEAD", cwd=old) if old else None
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        from benchmarks.bench_memory import STRONG_RELU_K4

        k4 = tmp / "strong_relu_k4.toml"
        k4.write_text(STRONG_RELU_K4)
        cases = [("three classes, weak, tanh, 160 τ", "three"),
                 ("examples/dynamics_two_class.toml, 120 τ", str(ROOT / "examples" / "dynamics_two_class.toml")),
                 ("relu, strong centroids, K = 4, 1 024 nodes, 120 τ", str(k4))]
        load = os.getloadavg()
        lines = ["# Gradient-flow theory curves", "",
                 f"`python benchmarks/bench_flow.py{' --old-tree DIR' if old else ''}` at commit {commit}"
                 + (f" against {old_commit} (DIR, a worktree of that commit)" if old else "")
                 + f"; {os.cpu_count()} cores, shared; load average before the run {load[0]:.2f} {load[1]:.2f} "
                 f"{load[2]:.2f}. Each tree and case is its own process with the persistent compilation cache off; "
                 f"warm = best of {args.reps} repeated calls in that process. Seconds.", "",
                 "| case | code | first call wall | warm wall | warm CPU | ridge clock, warm wall | "
                 "max rel. difference to this code |", "|---|---|---|---|---|---|---|"]
        for name, case in cases:
            mine, cur = run(ROOT, case, args.reps, tmp, "this")
            rows = [("this", mine, 0.0)]
            if old:
                theirs, ref = run(old, case, args.reps, tmp, "old")
                diff = max(float(np.max(np.abs(cur[k] - ref[k])[np.abs(ref[k]) > 1e-3]
                                        / np.abs(ref[k])[np.abs(ref[k]) > 1e-3])) for k in cur)
                rows.append((old_commit, theirs, diff))
            for label, m, diff in rows:
                lines.append(f"| {name} | {label} | {m['first_wall']:.2f} | {m['warm_wall']:.2f} | "
                             f"{m['warm_cpu']:.2f} | {m['ridge_warm']:.2f} | {diff:.1e} |")
                print(lines[-1], flush=True)
    out = ROOT / "benchmarks" / "results" / "flow.md"
    atomic_write_text(out, "\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
