"""Peak memory and wall time of every ``rfdiff`` command at its defaults, each a fresh process, as a user runs it.

    python benchmarks/bench_memory.py [--only NAME ...] [--budget-gb 2]

Each command of the README (and the heavy cases the speed issue named: the 64 × 64 phase diagram in both centroid
regimes, relu curves with strong centroids and K = 4) runs as its own process; its peak resident set size comes
from the kernel (``os.wait4`` → ``ru_maxrss`` of that child alone), its wall time from the clock around it. The
persistent compilation cache is switched off (``RFDIFF_JAX_CACHE=0``) so every process compiles what it
needs, as a first call does. The ``simulate unet`` example (20 000 Adam steps) is left out: its memory is that of
the U-Net protocol, measured in ``validation/unet/``.

Writes ``benchmarks/results/memory.md`` (numbers from this run only): machine, load, commit, one row per command
with its peak and whether it stays under the budget (2 GB, the speed issue's bound).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EX = ROOT / "examples"

STRONG_RELU_K4 = """# relu, strong centroids, K = 4 (the case that once asked for one 8–16 GB allocation)
[mixture]
variances = [4.0, 2.0, 1.0, 0.5]
proportions = [0.1, 0.2, 0.3, 0.4]
centroid_sq_norms = [16.0, 16.0, 16.0, 16.0]
[model]
activation = "relu"
psi_p = 4.0
psi_n = 2.0
t = 0.01
[curves]
taus = [1e-3, 1e6, 120]
"""


def commands(tmp: Path) -> dict[str, list[str]]:
    """name → argv (after ``rfdiff``), in the order they run (``compare`` and ``plot`` read earlier outputs)."""
    k4 = tmp / "strong_relu_k4.toml"
    k4.write_text(STRONG_RELU_K4)
    dyn = str(EX / "dynamics_two_class.toml")
    return {
        "--help": ["--help"],
        "check": ["check", dyn],
        "spectrum (two-level, 400 points)": ["spectrum", str(EX / "spectrum_two_level.toml"), "--out",
                                             str(tmp / "spec1"), "-q"],
        "spectrum (strong, imbalanced)": ["spectrum", str(EX / "spectrum_strong_imbalanced.toml"), "--out",
                                          str(tmp / "spec2"), "-q"],
        "curves": ["curves", dyn, "--out", str(tmp / "curves"), "-q"],
        "curves (relu, strong, K = 4)": ["curves", str(k4), "--out", str(tmp / "curves4"), "-q"],
        "timescales": ["timescales", dyn, "--out", str(tmp / "ts"), "-q"],
        "timescales (relu, strong, K = 4)": ["timescales", str(k4), "--out", str(tmp / "ts4"), "-q"],
        "phase-diagram 64×64, regime A": ["phase-diagram", dyn, "--axis", "sigma_ratio=0.6:2:64", "--axis",
                                          "pi1=0.05:0.95:64", "--out", str(tmp / "pdA"), "-q"],
        "phase-diagram 64×64, regime B (separation = 16)": [
            "phase-diagram", dyn, "--axis", "sigma_ratio=0.6:2:64", "--axis", "pi1=0.05:0.95:64", "--fix",
            "separation=16", "--out", str(tmp / "pdB"), "-q"],
        "window": ["window", dyn, "--out", str(tmp / "window"), "-q"],
        "reweight": ["reweight", dyn, "--target", "window", "--out", str(tmp / "rw"), "-q"],
        "speciation (ratios 1,10,100,1000)": ["speciation", str(EX / "speciation.toml"), "--ratios", "1,10,100,1000",
                                              "--out", str(tmp / "sp"), "-q"],
        "simulate rf": ["simulate", "rf", str(EX / "simulate_rf.toml"), "--out", str(tmp / "sim"), "-q"],
        "compare": ["compare", str(tmp / "sim" / "theory.nc"), str(tmp / "sim" / "sim.nc"), "--out",
                    str(tmp / "cmp"), "-q"],
        "plot": ["plot", str(tmp / "pdA" / "phase_diagram.nc"), "-q"],
    }


def run(argv: list[str]) -> tuple[int, float, float, str]:
    """(exit code, wall s, peak RSS GB, last stderr line) of ``rfdiff argv`` as a child process."""
    env = {**os.environ, "RFDIFF_JAX_CACHE": "0", "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([sys.executable, "-m", "rfdiff", *argv], stdout=subprocess.DEVNULL, stderr=err,
                                env=env, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        lines = [ln for ln in err.read().decode(errors="replace").splitlines() if ln.strip()]
    return proc.returncode, wall, usage.ru_maxrss / 2**20, lines[-1] if lines else ""  # ru_maxrss: KiB


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", default=None, help="names (substrings) of the commands to run")
    ap.add_argument("--budget-gb", type=float, default=2.0)
    args = ap.parse_args(argv)
    load = os.getloadavg()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=ROOT).stdout.strip()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, cmd in commands(Path(tmp)).items():
            if args.only and not any(o in name for o in args.only):
                continue
            rc, wall, gb, last = run(cmd)
            shown = " ".join(c.replace(tmp, "OUT").replace(str(ROOT) + "/", "") for c in cmd)
            rows.append((name, shown, rc, wall, gb, last))
            print(f"{name:55s} rc={rc} {wall:7.1f} s {gb:6.2f} GB", flush=True)
    over = [r for r in rows if r[4] > args.budget_gb or r[2] != 0]
    lines = [
        "# Peak memory of every command at its defaults", "",
        f"Generated by `python benchmarks/bench_memory.py` at commit {commit} on {platform.machine()} "
        f"({os.cpu_count()} cores, shared; load average before the run {' '.join(f'{x:.2f}' for x in load)}). "
        "Each command is a fresh process with the persistent compilation cache off; peak = the kernel's maximum "
        "resident set size of that process (`os.wait4`), wall = its whole run including imports and compilation "
        "(on a shared machine: compare memory, not seconds).", "",
        "| command | arguments (after `rfdiff`) | exit | wall [s] | peak RSS [GB] |", "|---|---|---|---|---|"]
    for name, shown, rc, wall, gb, _ in rows:
        lines.append(f"| {name} | `{shown}` | {rc} | {wall:.1f} | {gb:.2f} |")
    lines += ["", (f"Every command ran and stayed under {args.budget_gb:g} GB (largest: "
                   f"{max(rows, key=lambda r: r[4])[0]}, {max(r[4] for r in rows):.2f} GB)." if rows and not over else
                   "Over the budget or failed: " + "; ".join(f"{r[0]} (exit {r[2]}, {r[4]:.2f} GB: {r[5]})"
                                                             for r in over) + "."), ""]
    if not args.only:
        out = ROOT / "benchmarks" / "results" / "memory.md"
        tmp_path = out.with_suffix(".md.tmp")
        tmp_path.write_text("\n".join(lines))
        tmp_path.replace(out)
        print(f"wrote {out}")
    else:
        print("\n".join(lines))


if __name__ == "__main__":
    main()
