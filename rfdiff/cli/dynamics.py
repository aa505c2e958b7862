"""``rfdiff curves | timescales | phase-diagram SPEC``: per-class learning curves and times.

Clock and definitions: the finite-d closed form (``--d`` or ``[finite] d``) uses gradient flow (``--kind flow``, the
default) or ridge (``--kind ridge``); the d → ∞ theory uses the same clock unless ``--clock`` says otherwise (exact
flow: :mod:`rfdiff.theory.flow`; ridge-time proxy: :mod:`rfdiff.theory.curves`), except with ``[model]
loss_weights``, which only the ridge theory supports, so that is its default there. Times
are those of :func:`rfdiff.theory.timescales.curve_timescales` (half descent, half memorisation, onset);
``timescales`` adds the clock-free spectral times of :func:`rfdiff.theory.timescales.spectral_times`
(``*_spec``: the same levels on the sharp-filter curve of the per-class loss masses of U).
Results: ``curves.nc``, ``timescales.nc``, ``phase_diagram.nc`` (labelled netCDF, :mod:`rfdiff.results`;
classes numbered from 1).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

import numpy as np

from ..spec import SpecError
from ..results import class_coords
from ._common import (load, out_dir, parse_grid, progress, provenance, require, tau_grid,
                      write_result, wrote)

__all__ = ["curves", "timescales", "phase_diagram", "array_task", "resolve_shard"]

log = logging.getLogger("rfdiff")

_TIME_KEYS = ("tau_gen", "tau_mem", "tau_onset", "eps_test_min", "eps_train_inf")


def _setup(args, extra=None):
    over = {"curves": {"taus": parse_grid(args.taus, "--taus") if args.taus else None}}
    if getattr(args, "d", None) is not None or getattr(args, "seed", None) is not None:
        over["finite"] = {"d": args.d, "seed": args.seed}
    over.update(extra or {})
    spec = load(args, over, sections=("curves",))
    require(spec, f"rfdiff {args.command}", "mixture", "model")
    taus = tau_grid(spec)
    return spec, spec.build_mixture(), spec.build_model(), (spec.finite.d if spec.finite else None), taus


def _curves(args, spectral: bool = False):
    from ..theory.curves import default_clock, theory_curves

    spec, mix, model, d, taus = _setup(args)
    lw = spec.model.loss_weights  # [model] loss_weights (None: the plain loss)
    if args.clock is None:  # one clock for both columns by default (the ridge proxy's offset is not physics)
        args.clock = default_clock(lw) if lw is not None else args.kind
    theory = theory_curves(mix, model, taus, loss_weights=lw, n_quad=args.n_quad, clock=args.clock)
    arrays = {f"theory_{k}": np.asarray(v) for k, v in theory.items()}
    fc = None
    if d is not None:
        import jax

        from ..finite.closed_form import finite_curves
        from ..finite.features import population_moments, realise, train_moments

        prob = realise(jax.random.key(spec.finite.seed), mix, model, int(d))
        fc = finite_curves(prob, train_moments(prob), population_moments(prob), loss_weights=lw)
        cur, asy = fc(taus, kind=args.kind), fc.asymptote()
        arrays.update({f"finite_{k}": np.asarray(v) for k, v in cur.items()})
        arrays.update({f"finite_{k}_inf": np.asarray(v[:, 0]) for k, v in asy.items()})
    if spectral:
        arrays.update(_spectral(args, mix, model, lw, fc))
    return spec, taus, arrays, d


def _spectral(args, mix, model, lw, fc) -> dict:
    """Spectral times (theory and, with d, finite) as ``{source}_{key}`` arrays (K,); the theory part is left out,
    with a warning saying why, where its λ grid fails its checks or the loss is weighted (not implemented)."""
    from ..errors import ConvergenceError
    from ..theory.curves import theory_spectral_masses
    from ..theory.timescales import spectral_times

    out = {}
    if lw is not None:
        log.warning("spectral times: the theory's loss masses do not support [model] loss_weights; theory_*_spec "
                    "left out")
    else:
        try:
            ts = spectral_times(*theory_spectral_masses(mix, model, n_quad=args.n_quad))
            out.update({f"theory_{k}": np.asarray(v) for k, v in ts._asdict().items()})
        except ConvergenceError as err:
            log.warning("spectral times: theory left out (%s)", err)
    if fc is not None:
        ts = spectral_times(*fc.spectral_masses())
        out.update({f"finite_{k}": np.asarray(v) for k, v in ts._asdict().items()})
    return out


_CLOCKS = {"ridge": "ridge-time proxy mu = 1/tau", "flow": "exact gradient flow"}


def _clock(args) -> str:
    return f"theory: {_CLOCKS[args.clock]}; finite: {args.kind}"


def curves(args) -> int:
    from ..results import curve_vars

    spec, taus, arrays, d = _curves(args)
    out = out_dir(args, "curves")
    k = arrays["theory_eps_train"].shape[0]
    path = write_result(out / "curves.nc", curve_vars(arrays, taus.size),
                        coords={"tau": taus, **class_coords(k)},
                        attrs=provenance("curves", spec, title=f"per-class learning curves: {args.spec}",
                                         clock=_clock(args), d=d if d is not None else "none"))
    wrote(path)
    return 0


def timescales(args) -> int:
    from ..theory.timescales import SpectralTimes, curve_timescales

    spec, taus, arrays, d = _curves(args, spectral=True)
    res = {}
    sources = ["theory", "finite"] if d is not None else ["theory"]
    for src in sources:
        ts = curve_timescales(taus, arrays[f"{src}_eps_test"], arrays[f"{src}_eps_train"],
                              arrays[f"{src}_eps_train_inf"])
        for k, v in ts._asdict().items():
            res[f"{src}_{k}"] = np.asarray(v)
    K = res["theory_tau_gen"].shape[0]
    print("source   class   tau_gen     tau_mem     tau_onset   min eps_te  eps_tr(inf)")
    for src in sources:
        for c in range(K):  # classes numbered from 1, as sigma_1, pi_1 of the spec and the result file
            print(f"{src:8s} {c + 1:5d}  " + "  ".join(f"{res[f'{src}_{k}'][c]:10.4g}" for k in _TIME_KEYS))
    spec_src = [src for src in sources if f"{src}_tau_gen_spec" in arrays]
    if spec_src:
        print("source   class   tau_gen_spec tau_mem_spec tau_onset_spec mass_spec   (clock-free, spectral)")
    for src in spec_src:
        res.update({f"{src}_{k}": arrays[f"{src}_{k}"] for k in SpectralTimes._fields})
        for c in range(K):
            print(f"{src:8s} {c + 1:5d}  "
                  + "  ".join(f"{res[f'{src}_{k}'][c]:12.4g}" for k in SpectralTimes._fields))
    out = out_dir(args, "timescales")
    path = write_result(out / "timescales.nc", {k: (("class",), v) for k, v in res.items()},
                        coords=class_coords(K),
                        attrs=provenance("timescales", spec, title=f"per-class times: {args.spec}",
                                         clock=_clock(args), d=d if d is not None else "none"))
    wrote(path)
    return 0


def _parse_axis(text):
    name, sep, rng = text.partition("=")
    parts = rng.split(":")
    if not sep or len(parts) != 3:
        raise SpecError(f"--axis must look like NAME=LO:HI:NUM, got {text!r}")
    try:
        return name.strip(), [float(parts[0]), float(parts[1]), int(parts[2])]
    except ValueError:
        raise SpecError(f"--axis {name.strip()}: LO and HI must be numbers and NUM an integer, got {rng!r}") from None


def _parse_fix(text):
    name, sep, value = text.partition("=")
    if not sep:
        raise SpecError(f"--fix must look like NAME=VALUE, got {text!r}")
    try:
        return name.strip(), float(value)
    except ValueError:
        raise SpecError(f"--fix {name.strip()}: VALUE must be a number, got {value!r}") from None


def _env_int(env: Mapping[str, str], name: str) -> int:
    if name not in env:
        raise SpecError(f"--shard auto: ${name} is not set (an incomplete job-array environment)")
    try:
        return int(env[name])
    except ValueError:
        raise SpecError(f"--shard auto: ${name} must be an integer, got {env[name]!r}") from None


def array_task(env: Mapping[str, str] | None = None) -> tuple[int, int | None, str]:
    """This job-array task's 0-based index, the array size (None where the scheduler does not tell it) and the
    scheduler's name, from the environment (first match: SLURM, SGE, LSF, PBS).

    * SLURM: ``(SLURM_ARRAY_TASK_ID − SLURM_ARRAY_TASK_MIN) / SLURM_ARRAY_TASK_STEP``, size
      ``SLURM_ARRAY_TASK_COUNT``; an irregular index list (``--array=1,4,9``) is refused: no contiguous shards.
    * SGE/UGE: ``(SGE_TASK_ID − SGE_TASK_FIRST) / SGE_TASK_STEPSIZE``, size from ``SGE_TASK_FIRST``/``LAST``
      (``SGE_TASK_ID=undefined`` outside an array).
    * LSF: ``LSB_JOBINDEX − 1`` (LSF indices start at 1; 0 means no array); size unknown.
    * PBS Pro ``PBS_ARRAY_INDEX`` / Torque ``PBS_ARRAYID``, as is (submit ``-J 0-3`` / ``-t 0-3``); size unknown.

    Example::

        >>> array_task({"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_MIN": "4", "SLURM_ARRAY_TASK_COUNT": "4"})
        (1, 4, 'SLURM')
    """
    env = os.environ if env is None else env
    if env.get("SLURM_ARRAY_TASK_ID"):
        tid, lo = _env_int(env, "SLURM_ARRAY_TASK_ID"), _env_int(env, "SLURM_ARRAY_TASK_MIN")
        step = _env_int(env, "SLURM_ARRAY_TASK_STEP") if env.get("SLURM_ARRAY_TASK_STEP") else 1
        count = _env_int(env, "SLURM_ARRAY_TASK_COUNT")
        hi = _env_int(env, "SLURM_ARRAY_TASK_MAX") if env.get("SLURM_ARRAY_TASK_MAX") else lo + step * (count - 1)
        if step < 1 or (tid - lo) % step or hi != lo + step * (count - 1):
            raise SpecError(f"--shard auto: the SLURM array ({count} tasks from {lo} to {hi}, step {step}) is not "
                            "a regular range; submit with --array=0-(N-1) or give --shard I --num-shards N")
        return (tid - lo) // step, count, "SLURM"
    if env.get("SGE_TASK_ID") and env["SGE_TASK_ID"] != "undefined":
        tid, lo, hi = (_env_int(env, f"SGE_TASK_{k}") for k in ("ID", "FIRST", "LAST"))
        step = _env_int(env, "SGE_TASK_STEPSIZE") if env.get("SGE_TASK_STEPSIZE", "undefined") != "undefined" else 1
        if step < 1 or (tid - lo) % step:
            raise SpecError(f"--shard auto: SGE task {tid} is not on the range {lo}-{hi}:{step}")
        return (tid - lo) // step, (hi - lo) // step + 1, "SGE"
    if env.get("LSB_JOBINDEX") and env["LSB_JOBINDEX"] != "0":  # LSF sets 0 for a job outside an array
        return _env_int(env, "LSB_JOBINDEX") - 1, None, "LSF"
    for name in ("PBS_ARRAY_INDEX", "PBS_ARRAYID"):
        if env.get(name):
            return _env_int(env, name), None, "PBS"
    raise SpecError("--shard auto needs a job array, but none of SLURM_ARRAY_TASK_ID, SGE_TASK_ID, LSB_JOBINDEX, "
                    "PBS_ARRAY_INDEX, PBS_ARRAYID is set; give --shard I --num-shards N")


def resolve_shard(shard: str, num_shards: int | None, env: Mapping[str, str] | None = None) -> tuple[int, int]:
    """``(shard, num_shards)`` from the command line: an integer ``--shard`` (``--num-shards`` default 1) or
    ``auto`` (:func:`array_task`; ``--num-shards`` may be omitted when the scheduler gives the array size and
    must agree with it otherwise)."""
    if str(shard).strip().lower() == "auto":
        index, count, sched = array_task(env)
        if num_shards is None:
            if count is None:
                raise SpecError(f"--shard auto under {sched} needs --num-shards (the scheduler does not give the "
                                "array size)")
            num_shards = count
        elif count is not None and count != num_shards:
            raise SpecError(f"--num-shards {num_shards} disagrees with the {sched} array size {count}")
        if not 0 <= index < num_shards:
            raise SpecError(f"--shard auto: {sched} task index {index} (0-based) is outside 0..{num_shards - 1}; "
                            "number the array tasks from 0 (SLURM, PBS) or 1 (SGE, LSF)")
        return index, num_shards
    try:
        index = int(shard)
    except ValueError:
        raise SpecError(f"--shard must be an integer or 'auto', got {shard!r}") from None
    num_shards = 1 if num_shards is None else num_shards
    if num_shards < 1 or not 0 <= index < num_shards:
        raise SpecError(f"need 0 <= --shard < --num-shards, got {index} and {num_shards}")
    return index, num_shards


def phase_diagram(args) -> int:
    import jax

    from ..errors import ConvergenceError
    from ..precision import x64
    from ..sweep import phase_diagram as sweep
    from ..theory.phase import chunk_size_for, default_n_quad, timescale_fn

    if args.chunk_size is not None and args.chunk_size < 1:
        raise SpecError(f"--chunk-size must be a positive integer, got {args.chunk_size}")
    if args.n_quad is not None and args.n_quad < 1:
        raise SpecError(f"--n-quad must be a positive integer, got {args.n_quad}")
    shard, num_shards = resolve_shard(args.shard, args.num_shards)
    raw_axes = dict(_parse_axis(a) for a in args.axis)
    raw_fixed = dict(_parse_fix(f) for f in args.fix)
    spec = load(args, {"curves": {"taus": parse_grid(args.taus, "--taus") if args.taus else None}},
                sections=("curves",))
    # command-line axes and fixed values join the spec's and go through the same schema checks
    pd = spec.phase_diagram
    axes = {**(dict(pd.axes) if pd else {}), **raw_axes}
    fixed = {k: v for k, v in {**(dict(pd.fixed) if pd else {}), **raw_fixed}.items() if k not in raw_axes}
    axes = {k: v for k, v in axes.items() if k not in raw_fixed}
    from ..spec import load_spec

    spec = load_spec({**spec.to_dict(), "phase_diagram": {"axes": {k: list(v) for k, v in axes.items()},
                                                          "fixed": fixed}})
    require(spec, "rfdiff phase-diagram", "mixture", "model")
    if spec.model.loss_weights is not None:
        raise SpecError("[model] loss_weights are not supported by rfdiff phase-diagram (its grid varies π)")
    if not axes:
        raise SpecError("phase-diagram needs at least one axis (--axis NAME=LO:HI:NUM or [phase_diagram] axes)")
    mix, model = spec.build_mixture(), spec.build_model()
    if mix.num_classes < 2 and ({"sigma_ratio", "pi1"} & (set(axes) | set(fixed))):
        raise SpecError("sigma_ratio and pi1 need a mixture with at least two classes")
    taus = tau_grid(spec)
    grid = {k: np.linspace(v[0], v[1], int(v[2])) for k, v in axes.items()}
    fixed_arrays = {k: np.float64(v) for k, v in fixed.items()}
    pop_grid = {**grid, **{k: [v] for k, v in fixed_arrays.items()}}
    n_quad = args.n_quad or default_n_quad(mix, pop_grid)
    out = out_dir(args, "phase-diagram")
    name = "phase_diagram.nc" if num_shards == 1 else f"phase_diagram.shard-{shard}-of-{num_shards}.nc"
    with x64():
        base = timescale_fn(mix, model, taus=taus, n_quad=n_quad, grid=pop_grid, spectral=args.spectral)
        fn = lambda q: base({**q, **fixed_arrays})  # noqa: E731
        # cache-sized batches (< 2 GB) on each of this process's devices (one job-array task per node or GPU),
        # the list the sweep shards over
        devices = jax.local_devices()
        ndev = len(devices)
        chunk = args.chunk_size or chunk_size_for(n_quad, mix.num_classes, devices=ndev)
        if ndev > 1 and jax.default_backend() == "cpu" and -(-chunk // ndev) > 512:
            raise SpecError(f"--chunk-size {chunk} gives {-(-chunk // ndev)} points to each of {ndev} host devices; "
                            "at most 512 (XLA:CPU deadlocked at 1024 on two host devices)")
        # the spectral outputs are part of the key: a resume with the other setting is refused, not mixed
        res = sweep(fn, grid, out_dims=dict(base.out_dims), chunk_size=chunk, devices=devices,
                    path=out / name, shard=shard, num_shards=num_shards, progress=progress(args),
                    key={"spec": spec.to_dict(), "fixed": fixed, "taus": taus.tolist(), "n_quad": n_quad,
                         **({"spectral": True} if args.spectral else {})},
                    resume=True if args.resume else None,
                    out_coords=class_coords(mix.num_classes),
                    attrs={"fixed": fixed, "n_quad": n_quad, "taus": taus.tolist(),
                           "clock": "ridge-time proxy mu = 1/tau",
                           **provenance("phase_diagram", spec, title="per-class theory times over "
                                        + " x ".join(grid))})
    resid = np.asarray(res["residual"], dtype=np.float64)
    if not np.all(np.isfinite(resid)) or np.nanmax(resid) > 1e-8:
        flat = np.where(np.isfinite(resid), resid, np.inf).ravel()
        worst = int(np.argmax(flat))
        point = {k: float(np.stack(np.meshgrid(*grid.values(), indexing="ij"), -1).reshape(-1, len(grid))[worst, i])
                 for i, k in enumerate(grid)} if num_shards == 1 else {"flat_index": worst}
        (out / name).unlink(missing_ok=True)  # never leave numbers that did not converge behind
        raise ConvergenceError(f"the theory did not converge at {int(np.sum(~(flat <= 1e-8)))} grid point(s); "
                               f"worst residual {flat[worst]:.3g} at {point}", residual=float(flat[worst]),
                               point=point)
    wrote(out / name)
    if num_shards == 1 and not args.no_plot:
        draw_phase(out / name, len(grid))
    return 0


def draw_phase(path, num_axes: int) -> None:
    """The phase diagram's picture beside its file (PDF + PNG), for grids of one or two swept axes."""
    from .plot import draw

    if num_axes > 2:
        log.info("no picture for %d swept axes (draw a slice: rfdiff plot RESULT, or rfdiff.plots.plot_result)",
                 num_axes)
        return
    wrote(*draw(path))
