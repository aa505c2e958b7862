"""Benchmarks of the dynamics code, each against a baseline run side by side in this process.

    python benchmarks/bench_dynamics.py [--n 64] [--nquad-b 256] [--cli] [--old-tree DIR]

1. 64 × 64 (σ_1/σ_2 × π_1) theory phase diagram, weak (regime A) and strong (||μ||²/d = 16, regime B)
   centroids: sharded/vmapped/jitted ``phase_diagram`` with the population table (``timescale_fn(grid=...)``)
   and cache-sized chunks (``chunk_size_for``), first call and warm call, vs a Python loop of the jitted
   single-point function (timed on a subset, per point). ``--cli``: the whole ``rfdiff phase-diagram`` process
   (wall time and peak RSS from ``/usr/bin/time -v``), and with ``--old-tree DIR`` the same command on the
   code checked out in DIR (the baseline; slow and memory-hungry in regime B).
2. Finite-d per-class curves at 40 times: closed form (eigh + projections + evaluation) vs iterated full-batch
   GD recording A at the same steps and evaluating the losses.

Writes ``benchmarks/results/dynamics.md`` (numbers from this run only).
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2")
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

jax.config.update("jax_enable_x64", True)  # before rfdiff is imported: the benchmark runs in float64

from rfdiff import GaussianMixture, RFModel  # noqa: E402
from rfdiff.finite.closed_form import closed_form, iterate_gd, quadratic_loss  # noqa: E402
from rfdiff.io import atomic_write_text  # noqa: E402
from rfdiff.sweep import phase_diagram  # noqa: E402
from rfdiff.theory.phase import chunk_size_for, timescale_fn  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def bench_phase(n, sep, nq):
    base = GaussianMixture.create([0.5, 0.5], [1.0, 1.0])
    axes = {"sigma_ratio": np.linspace(0.6, 2.0, n), "pi1": np.linspace(0.05, 0.95, n)}
    raw = timescale_fn(base, RFModel(2.0, 1.0, 0.01, "tanh"), n_quad=nq, grid={**axes, "separation": [sep]})
    fn = lambda q: raw({**q, "separation": sep})  # noqa: E731
    chunk = chunk_size_for(nq, 2, devices=len(jax.local_devices()))  # as the CLI does
    t0 = time.perf_counter()
    phase_diagram(fn, axes, chunk_size=chunk, progress=False)  # includes compilation
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = phase_diagram(fn, axes, chunk_size=chunk, progress=False)
    warm = time.perf_counter() - t0
    jfn = jax.jit(fn)
    jfn({"sigma_ratio": jnp.float64(1.0), "pi1": jnp.float64(0.5)})["tau_gen"].block_until_ready()
    pts = [(r, p) for r in axes["sigma_ratio"][:: max(1, n // 4)] for p in axes["pi1"][:: max(1, n // 4)]][:16]
    t0 = time.perf_counter()
    for r, p in pts:
        jfn({"sigma_ratio": jnp.float64(r), "pi1": jnp.float64(p)})["tau_gen"].block_until_ready()
    per_point = (time.perf_counter() - t0) / len(pts)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # GiB, this process so far
    return first, warm, per_point * n * n, float(np.nanmax(out["residual"])), chunk, rss


def bench_cli(n, sep, nq, tree, cache_dir):
    """Whole ``rfdiff phase-diagram`` process on the code in ``tree``: (wall s, peak RSS GiB, max residual).

    ``cache_dir``: JAX's persistent compilation cache for the command (``RFDIFF_JAX_CACHE``): an empty folder
    times a first call (compiling, filling it), the same folder again a repeated call."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "rfdiff.cli.main", "phase-diagram",
               str(ROOT / "examples" / "dynamics_two_class.toml"), "--axis", f"sigma_ratio=0.6:2:{n}",
               "--axis", f"pi1=0.05:0.95:{n}", "--fix", f"separation={sep}", "--n-quad", str(nq), "-q",
               "--out", tmp]
        env = {**os.environ, "PYTHONPATH": str(tree), "RFDIFF_JAX_CACHE": str(cache_dir)}
        env.pop("XLA_FLAGS", None)  # the command as a user runs it (the CLI chooses the host devices)
        t0 = time.perf_counter()
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tmp)
        wall = time.perf_counter() - t0
        if p.returncode:
            raise RuntimeError(f"rfdiff phase-diagram failed: {p.stderr[-2000:]}")
        rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr).group(1)) / 2**20
        # .nc from this tree, .npz from an old tree: open_result reads both
        from rfdiff.results import open_result

        res = open_result(next(Path(tmp).rglob("phase_diagram.[nN]*"))).residual.values
        return wall, rss, float(np.nanmax(res))


def bench_closed_form(p=600, d=300, T=40):
    rng = np.random.default_rng(0)
    phi = rng.normal(size=(2 * p, p)) / np.sqrt(p) + 0.3 * rng.normal(size=(1, p)) / np.sqrt(p)
    U = phi.T @ phi / 2.0
    V = rng.normal(size=(p, d)) / np.sqrt(d) * 0.1
    U_X, V_X = jnp.stack([U, 0.9 * U]), jnp.stack([V, 1.1 * V])
    eta = 0.9 / float(np.linalg.eigvalsh(U).max())
    steps = np.unique(np.round(np.logspace(0, 4, T)).astype(int))
    t0 = time.perf_counter()
    cf = closed_form(U, V, U_X, V_X, delta=0.02, d=d)
    L_cf = np.asarray(cf(steps * eta, kind="gd", step=eta))
    t_cf = time.perf_counter() - t0
    t0 = time.perf_counter()
    A = iterate_gd(U, V, eta, steps, delta=0.02, p=p)
    L_gd = np.array([[float(quadratic_loss(a, U_X[x], V_X[x], delta=0.02, p=p, d=d)) for a in A] for x in range(2)])
    t_gd = time.perf_counter() - t0
    return t_cf, t_gd, float(np.max(np.abs(L_cf / L_gd - 1))), int(steps[-1]), len(steps)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--nquad-b", type=int, default=256)
    ap.add_argument("--cli", action="store_true", help="also time the whole rfdiff phase-diagram process")
    ap.add_argument("--old-tree", default=None, help="checkout of the baseline code for the CLI comparison")
    args = ap.parse_args(argv)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=ROOT).stdout.strip()
    lines = ["# Dynamics benchmarks", "", f"`python benchmarks/bench_dynamics.py --n {args.n} --nquad-b {args.nquad_b}"
             f"{' --cli' if args.cli else ''}` at commit {commit} on {len(jax.devices())} CPU devices "
             f"({os.cpu_count()} cores, shared machine: absolute times are indicative). Load before: "
             f"`{os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}`.", "",
             f"## {args.n} × {args.n} theory phase diagram (64 τ points per curve, per-class times)", "",
             "| regime | shift nodes | chunk | first call (incl. compile) [s] | warm call [s] | loop of jitted points "
             "(extrapolated) [s] | speed-up | max residual | peak RSS so far [GiB] |",
             "|---|---|---|---|---|---|---|---|---|"]
    regimes = [("A (weak centroids)", 0.0, 1), ("B (||μ||²/d = 16)", 16.0, args.nquad_b)]
    for name, sep, nq in regimes:
        first, warm, loop, res, chunk, rss = bench_phase(args.n, sep, nq)
        lines.append(f"| {name} | {nq} | {chunk} | {first:.1f} | {warm:.1f} | {loop:.1f} | {loop / warm:.1f}× "
                     f"| {res:.1e} | {rss:.2f} |")
        print(lines[-1], flush=True)
    if args.cli:
        lines += ["", f"## Whole `rfdiff phase-diagram` process ({args.n} × {args.n}, the CLI's default 120 τ points, "
                  "as a user runs it: no XLA_FLAGS, the CLI's default host devices)",
                  "",
                  "First call: an empty compilation cache (everything compiled); repeated: the same command again "
                  "with the cache the first call filled (what a user's second call pays).", "",
                  "| regime | shift nodes | code | call | wall [s] | peak RSS [GiB] | max residual |",
                  "|---|---|---|---|---|---|---|"]
        trees = [("this", ROOT)] + ([("old", Path(args.old_tree))] if args.old_tree else [])
        for name, sep, nq in regimes:
            for label, tree in trees:
                with tempfile.TemporaryDirectory() as cache:
                    for call in ("first", "repeated"):
                        wall, rss, res = bench_cli(args.n, sep, nq, tree, cache)
                        lines.append(f"| {name} | {nq} | {label} | {call} | {wall:.1f} | {rss:.2f} | {res:.1e} |")
                        print(lines[-1], flush=True)
    t_cf, t_gd, err, smax, ns = bench_closed_form()
    lines += ["", f"## Finite-d curves: closed form vs iterated GD (p = 600, d = 300, {ns} record points up to "
              f"{smax} steps, 2 losses)", "", "| closed form [s] | iterated GD [s] | speed-up | max rel. difference |",
              "|---|---|---|---|", f"| {t_cf:.2f} | {t_gd:.2f} | {t_gd / t_cf:.1f}× | {err:.1e} |", ""]
    print(lines[-2], flush=True)
    out = ROOT / "benchmarks" / "results" / "dynamics.md"
    atomic_write_text(out, "\n".join(lines))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
