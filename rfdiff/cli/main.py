"""The ``rfdiff`` command: argument parsing, logging and the error policy shared by every subcommand.

Conventions (the same for every subcommand):

* ``SPEC`` is a TOML spec file (schema: ``rfdiff schema``); command-line overrides (``--d``, ``--seed``,
  ``--axis``, ...) are written into the spec *before* it is validated, so they pass the same checks.
* ``--out DIR`` is always a directory (default ``runs/<spec name>/<command>``); results are labelled netCDF
  files (``.nc``, :mod:`rfdiff.results`; ``rfdiff.open_result`` reads them) carrying the resolved spec, the
  command line, the seeds and the rfdiff version. The exceptions are ``rfdiff merge DIR --out FILE`` and
  ``rfdiff convert OLD.npz --out FILE``: their input is not a spec, so ``--out`` names the written file.
* Classes are numbered from 1 (as σ_1, π_1 of the spec) in tables, files and messages of every command.
* Data go to stdout and files; diagnostics (progress, "wrote ...") to stderr through :mod:`logging`
  (``-q`` warnings only, ``-v`` debug and tracebacks). Progress bars only on a terminal and without ``-q``.
* Exit status: 0 success; 2 a usage or spec error (bad option, unknown key, out-of-range value, missing file);
  1 a runtime failure (no convergence, divergence, corrupt result file, out of memory). Either way one line
  on stderr, ``rfdiff <command>: error: ...``; ``-v`` adds the traceback.

This module imports neither JAX nor the science modules: each command lives in a small module of this
package, imported only when it runs, so ``rfdiff --help`` answers at once.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

__all__ = ["main", "build_parser"]

log = logging.getLogger("rfdiff")

PHASE_AXES_HELP = """\
phase-diagram parameters (axes and fixed values):
  sigma_ratio  σ_1/σ_2 > 0: class 1's standard deviation becomes sigma_ratio × class 2's
  pi1          0 < π_1 < 1: class 1's proportion; the other classes share 1 − π_1 in their spec ratios
  separation   ≥ 0: strong orthogonal centroids, ||μ_c||²/d = separation for every class (0: none)
  norm_ratio   > 0: ||μ_1||/||μ_2||; class 2's norm kept (separation or the spec's centroid Gram), cosines kept
  cosine       in [−1, 1]: cos(μ_1, μ_2), norms kept; both act on the spec's Gram (weak or strong centroids)
  psi_p, psi_n > 0: p/d and n/d of the random-features model
  psi_ratio    > 0: ψ_p/ψ_n; sets psi_p = psi_ratio × psi_n (not together with psi_p)
  t            > 0: diffusion time
outputs per class (dimension "class", numbered 1..K): tau_gen, tau_mem, tau_onset (theory times, ridge-time
clock), eps_test_min, eps_train_inf, and the fixed-point residual per point; with --spectral also the
clock-free spectral times tau_gen_spec, tau_mem_spec, tau_onset_spec and the loss mass mass_spec; written to
DIR/phase_diagram.nc (netCDF; dimensions named after the axes, then "class")."""

MERGE_HELP = """\
--shard auto reads the job-array index of the scheduler (first match wins):
  SLURM       SLURM_ARRAY_TASK_ID − SLURM_ARRAY_TASK_MIN (÷ SLURM_ARRAY_TASK_STEP); the count is
              SLURM_ARRAY_TASK_COUNT, so --num-shards may be omitted   (sbatch --array=0-3)
  SGE/UGE     (SGE_TASK_ID − SGE_TASK_FIRST) ÷ SGE_TASK_STEPSIZE; count from SGE_TASK_FIRST/LAST
                                                                       (qsub -t 1-4)
  LSF         LSB_JOBINDEX − 1 (LSF indices start at 1); give --num-shards   (bsub -J "pd[1-4]")
  PBS/Torque  PBS_ARRAY_INDEX (PBS Pro) or PBS_ARRAYID (Torque), used as is; give --num-shards
                                                                       (qsub -J 0-3 / qsub -t 0-3)
Outside a job array, --shard auto is an error. Example job-array script: examples/slurm_phase_diagram.sh."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit 2) instead of usage + error."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("rfdiff")
    except PackageNotFoundError:  # running from a source tree without installing
        from .. import __version__

        return __version__


def _common(p: argparse.ArgumentParser, *, out: bool = True, seed: bool = False) -> None:
    if out:
        p.add_argument("--out", metavar="DIR", default=None,
                       help="output directory (default runs/<spec name>/<command>)")
    if seed:
        p.add_argument("--seed", type=int, default=None, help="random seed (overrides the spec's)")
    p.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors on stderr; no progress")
    p.add_argument("-v", "--verbose", action="store_true", help="debug messages and tracebacks on errors")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="rfdiff", description="rfdiff: class-dependent learning in diffusion models — theory and "
                                                "simulation of random-features score models on Gaussian mixtures.",
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"rfdiff {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def add(name, target, helptext, **kw):
        p = sub.add_parser(name, help=helptext, description=kw.pop("description", helptext), **kw)
        p.set_defaults(target=target)
        return p

    p = add("check", "spec_cmd:check", "validate a spec file and print the fully resolved spec (JSON)")
    p.add_argument("spec", help="TOML spec file")
    _common(p, out=False)
    p = add("schema", "spec_cmd:schema", "print the spec schema (every section and key) as Markdown")
    _common(p, out=False)

    p = add("spectrum", "spectrum:run", "asymptotic spectrum of the feature covariance U (density, per class)")
    p.add_argument("spec", help="TOML spec ([mixture], [model], optional [finite] d, [spectrum])")
    p.add_argument("--num-points", type=int, default=None, help="log-λ grid size ([spectrum] num_points)")
    p.add_argument("--lam-min", type=float, default=None, help="smallest λ ([spectrum] lam_min)")
    p.add_argument("--lam-max", type=float, default=None, help="largest λ ([spectrum] lam_max)")
    p.add_argument("--n-quad", type=int, default=None, help="shift nodes of the neuron population")
    _common(p)

    for name, target, helptext in [
        ("curves", "dynamics:curves", "per-class learning curves: d → ∞ theory and, with a finite d, the closed form"),
        ("timescales", "dynamics:timescales", "per-class tau_gen, tau_mem, tau_onset (theory; closed form at finite d)"),
    ]:
        p = add(name, target, helptext)
        p.add_argument("spec", help="TOML spec ([mixture], [model], optional [finite] d, [curves])")
        p.add_argument("--d", type=int, default=None, help="also the finite-d closed form at this d ([finite] d)")
        p.add_argument("--taus", default=None, metavar="LO,HI,NUM", help="log τ grid ([curves] taus)")
        p.add_argument("--kind", default="flow", choices=["flow", "ridge"], help="finite-d dynamics")
        p.add_argument("--clock", default=None, choices=["ridge", "flow"],
                       help="clock of the d → ∞ theory: exact gradient flow (rfdiff.theory.flow) or the ridge-time "
                            "proxy μ = 1/τ; default: the clock of --kind, so both columns share one clock (ridge "
                            "with [model] loss_weights, which the flow theory does not support yet)")
        p.add_argument("--n-quad", type=int, default=None, help="shift nodes of the neuron population")
        _common(p, seed=True)

    p = add("phase-diagram", "dynamics:phase_diagram", "per-class theory times over a parameter grid",
            description="Per-class theory times over a grid of parameters (sharded, chunked, resumable).",
            epilog=PHASE_AXES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("spec", help="TOML spec; axes may also be given in [phase_diagram] axes = {name = [lo, hi, num]}")
    p.add_argument("--axis", action="append", default=[], metavar="NAME=LO:HI:NUM", help="grid axis (repeat)")
    p.add_argument("--fix", action="append", default=[], metavar="NAME=VALUE", help="fixed parameter (repeat)")
    p.add_argument("--taus", default=None, metavar="LO,HI,NUM", help="log τ grid ([curves] taus)")
    p.add_argument("--chunk-size", type=int, default=None,
                   help="grid points per compiled batch (default: from the node count and K, "
                        "rfdiff.theory.phase.chunk_size_for, times the local devices)")
    p.add_argument("--n-quad", type=int, default=None, help="shift nodes of the neuron population")
    p.add_argument("--shard", default="0", metavar="I|auto",
                   help="this task's shard index, or 'auto': the job-array index of SLURM, SGE, LSF or PBS "
                        "(see `rfdiff merge --help`)")
    p.add_argument("--num-shards", type=int, default=None,
                   help="number of shards of the grid (default 1; with --shard auto, the array size if the "
                        "scheduler tells it: SLURM, SGE)")
    p.add_argument("--resume", action="store_true",
                   help="continue the partial result in DIR; refuse (naming what changed) if the inputs differ")
    p.add_argument("--no-plot", action="store_true",
                   help="do not draw DIR/phase_diagram.pdf/.png (drawn by default for an unsharded grid of 1-2 axes)")
    p.add_argument("--spectral", action="store_true",
                   help="also the clock-free spectral times tau_*_spec and mass_spec of the same population "
                        "(rfdiff.theory.timescales.spectral_times)")
    _common(p)

    p = add("window", "window:run", "the stopping window: every class generalised, none memorised (theory)",
            description="Per-class intervals [tau_gen, tau_mem] of the d → ∞ theory (ridge-time clock), the common "
                        "window [max tau_gen, min tau_mem] and its width in decades, or the disparity: which "
                        "class memorises before which one generalises. Writes DIR/window.nc.")
    p.add_argument("spec", help="TOML spec ([mixture], [model], optional [curves] taus)")
    p.add_argument("--taus", default=None, metavar="LO,HI,NUM", help="log τ grid ([curves] taus)")
    p.add_argument("--memorisation", default="tau_mem", choices=["tau_mem", "tau_onset"],
                   help="end of each class interval: half the asymptotic memorisation (tau_mem) or its onset")
    p.add_argument("--n-quad", type=int, default=None, help="shift nodes of the neuron population")
    _common(p)

    p = add("reweight", "reweight:run", "per-class loss weights that equalise the class times or open the window",
            description="Solve the d → ∞ theory (ridge-time clock) for class weights of the DSM loss, normalised "
                        "Σ π_c w_c = 1: equal tau_gen, the widest common window, or equal tau_mem. Prints the weights "
                        "and the per-class times before and after. Writes DIR/reweight.npz.")
    p.add_argument("spec", help="TOML spec ([mixture], [model], optional [curves] taus)")
    p.add_argument("--target", dest="goal", required=True, choices=["equal-gen", "window", "equal-mem"],
                   help="what to solve for")  # dest: "target" is the dispatch key
    p.add_argument("--taus", default=None, metavar="LO,HI,NUM", help="log τ grid (default 1e-3,1e6,361)")
    _common(p)

    p = add("merge", "merge:run", "merge the shard files of a phase diagram into one grid-shaped result",
            description="Merge DIR/phase_diagram.shard-I-of-N.nc (I = 0 .. N-1, from `rfdiff phase-diagram "
                        "--shard I --num-shards N` or `--shard auto` in a job array) into DIR/phase_diagram.nc. "
                        "Refuses, naming them, missing shards, mixed N and shards of different problems.",
            epilog=MERGE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dir", metavar="DIR", help="directory holding the shard files")
    p.add_argument("--out", metavar="FILE", default=None, help="merged result file (default DIR/phase_diagram.nc)")
    p.add_argument("--no-plot", action="store_true", help="do not draw the merged phase diagram (FILE.pdf/.png)")
    _common(p, out=False)  # its --out names a file, defined above

    p = add("convert", "merge:convert", "write an old .npz result (rfdiff <= 0.1) as a labelled .nc result",
            description="Read an old .npz result (its dims/coords labels; classes renumbered from 1) and write "
                        "the netCDF result next to it (OLD.nc) or to --out.")
    p.add_argument("file", metavar="OLD.npz", help="old result file")
    p.add_argument("--out", metavar="FILE", default=None, help="netCDF file to write (default OLD.nc)")
    _common(p, out=False)  # its --out names a file, defined above

    p = add("plot", "plot:run", "draw the standard figure of a result file (STEM.pdf and a 300-dpi STEM.png)",
            description="Draw the standard figure of any rfdiff result (.nc, or an rfdiff 0.1 .npz) with "
                        "rfdiff.plots.plot_result and write it as STEM.pdf (vector) and STEM.png (300 dpi).")
    p.add_argument("result", metavar="RESULT", help="result file written by an rfdiff command")
    p.add_argument("--out", metavar="STEM", default=None, help="output path without suffix (default: RESULT's)")
    p.add_argument("--variable", default=None, help="the one variable to draw (e.g. tau_mem of a phase diagram)")
    _common(p, out=False)  # its --out names a file, defined above

    p = add("speciation", "speciation:run", "per-class speciation times vs imbalance ratio (theory + backward SDE)",
            description="Per-class speciation times t_S,c of the backward diffusion against the imbalance ratio: "
                        "theory (rfdiff.theory.speciation) and exact-score backward-SDE simulation with bootstrap "
                        "error bars. Spec sections [mixture] and [speciation] (rfdiff schema).")
    p.add_argument("spec", help="TOML spec ([mixture] and optional [speciation])")
    p.add_argument("--ratios", default="1,10,100,1000", help="comma-separated imbalance ratios π_max/π_min ≥ 1")
    p.add_argument("--theory-only", action="store_true", help="skip the simulation")
    p.add_argument("--d", type=int, default=None, help="dimension ([speciation] d)")
    p.add_argument("--n", type=int, default=None, help="trajectories per ratio ([speciation] n_trajectories)")
    p.add_argument("--resume", action="store_true", help="continue the checkpoints in DIR; refuse if inputs changed")
    _common(p, seed=True)

    p = sub.add_parser("simulate", help="train score models on data and log per-class curves")
    sim = p.add_subparsers(dest="simulator", required=True, parser_class=_Parser)
    p = sim.add_parser("rf", help="jitted RF score model on a finite realisation of the spec's mixture")
    p.set_defaults(target="simulate:rf")
    p.add_argument("spec", help="TOML spec with [mixture], [model], [finite] and [simulate]")
    p.add_argument("--resume", action="store_true", help="continue from DIR/checkpoint (bit-identical)")
    _common(p, seed=True)
    p = sim.add_parser("unet", help="train a U-Net on class-imbalanced Fashion-MNIST, per-class metrics")
    p.set_defaults(target="simulate:unet")
    p.add_argument("spec", help="TOML spec with a [unet] section (examples/unet_fmnist.toml)")
    p.add_argument("--resume", action="store_true", help="continue the run stored in DIR")
    p.add_argument("--data", default=None, help="Fashion-MNIST directory (else $RFDIFF_FASHION_MNIST, Debian)")
    _common(p, seed=True)

    p = add("compare", "simulate:compare", "per-class τ_gen, τ_mem, τ_onset: theory curves vs a simulation log")
    p.add_argument("theory", help="curve file (tau, eps_train, eps_test[, eps_train_inf]), e.g. theory.nc")
    p.add_argument("simulation", help="simulation log (sim.nc of `rfdiff simulate rf`) or curve file")
    p.add_argument("--source", choices=("finite", "theory"), default=None,
                   help="for an `rfdiff curves` file: finite-d closed form (default if present) or d → ∞ theory")
    _common(p)
    return parser


def _configure_logging(args) -> None:
    level = logging.WARNING if args.quiet else (logging.DEBUG if args.verbose else logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False


def _classify(err: BaseException) -> int | None:
    """Exit status of an exception: 2 for usage/spec/input errors, 1 for runtime failures, None: re-raise."""
    if isinstance(err, (KeyboardInterrupt, SystemExit)):
        return None
    from ..errors import ConvergenceError, ResultFileError

    if isinstance(err, (ConvergenceError, ResultFileError)):
        return 1
    if isinstance(err, (ValueError, FileNotFoundError, IsADirectoryError, NotADirectoryError)):
        return 2  # SpecError is a ValueError: bad input, named in the message
    return 1  # runtime failures: OSError, MemoryError, XLA errors, FloatingPointError, ...


def _message(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    name = type(err).__name__
    if isinstance(err, MemoryError) or "RESOURCE_EXHAUSTED" in text or "out of memory" in text.lower():
        return f"out of memory ({text[:200]}); lower --chunk-size or the grid size"
    if isinstance(err, (ValueError, FileNotFoundError)) or name in ("ConvergenceError", "ResultFileError"):
        return text
    return f"{name}: {text}"


def _host_devices() -> None:
    """``RFDIFF_HOST_DEVICES=N`` (N > 1) gives ``phase-diagram`` N XLA host devices, whose sweep hands each its own
    block of a chunk (:func:`rfdiff.sweep.phase_diagram`): on 2 cores the regime-B 64 × 64 diagram took 14.6 s
    instead of 19.2 s (``benchmarks/results/dynamics.md``). Not the default: two host devices with 1024 regime-A
    points each deadlocked inside XLA:CPU (no progress at 0 % CPU; 512 each ran), so the command refuses more
    than 512 points a device. Only before JAX starts, and never over a device count already in ``XLA_FLAGS``."""
    flags = os.environ.get("XLA_FLAGS", "")
    want = os.environ.get("RFDIFF_HOST_DEVICES", "").strip()
    if not want or "xla_force_host_platform_device_count" in flags or "jax" in sys.modules:
        return
    if not want.isdigit() or int(want) < 1:
        raise SystemExit(f"rfdiff: error: RFDIFF_HOST_DEVICES must be a positive integer, got {want!r}")
    if int(want) > 1:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={int(want)}".strip()


def main(argv=None) -> int:
    os.environ.setdefault("MPLBACKEND", "Agg")  # an application may choose the backend; the library never does
    # JAX's persistent compilation cache (read from the environment when JAX starts): the second call of a
    # command compiles nothing. RFDIFF_JAX_CACHE=0 turns it off, RFDIFF_JAX_CACHE=DIR moves it.
    cache = os.environ.get("RFDIFF_JAX_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "rfdiff", "jax"))
    if cache != "0":
        os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", cache)
        os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
        os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args)
    if args.target == "dynamics:phase_diagram":
        _host_devices()
    command = args.command if args.command != "simulate" else f"simulate {args.simulator}"
    module, _, func = args.target.partition(":")
    try:
        fn = getattr(importlib.import_module(f"{__package__}.{module}"), func)
        return int(fn(args) or 0)
    except BaseException as err:  # noqa: BLE001 — every failure becomes one line and an exit status
        status = _classify(err)
        if status is None:
            raise
        if args.verbose:
            log.exception("traceback")
        print(f"rfdiff {command}: error: {_message(err)}", file=sys.stderr)
        return status


if __name__ == "__main__":
    raise SystemExit(main())
