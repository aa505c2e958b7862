"""``rfdiff window SPEC``: when to stop so that every class is learned and none memorised.

Per class the interval [τ_gen,c, τ_end,c] (τ_end = τ_mem, or τ_onset with ``--memorisation tau_onset``) of the
d → ∞ theory, on the ridge-time clock μ = 1/τ (:mod:`rfdiff.theory.window`); then the common window
[max τ_gen, min τ_end] and its width in decades, or, when it is empty, the disparity: which class is already
memorising while which one has not yet generalised, and for how many decades. Classes are numbered from 1
(as σ_1, π_1 of the spec) on stdout and in ``window.nc``.
"""

from __future__ import annotations

import logging

import numpy as np

from ..results import class_coords
from ._common import load, out_dir, parse_grid, provenance, require, tau_grid, write_result, wrote

__all__ = ["run", "summary"]

log = logging.getLogger("rfdiff")


def summary(w, memorisation: str) -> str:
    """One line: the window and its width, or the disparity (classes, numbered from 1, and decades)."""
    end = "τ_mem" if memorisation == "tau_mem" else "τ_onset"
    width = float(w.width_decades)
    if bool(w.exists):
        return (f"window: [{float(w.lo):.4g}, {float(w.hi):.4g}] ({width:.3g} decades): stop inside it and every "
                f"class is past τ_gen, none past {end} (opened by class {int(w.last_generalising) + 1}, closed by "
                f"class {int(w.first_memorising) + 1})")
    return (f"no window (disparity {width:.3g} decades): class {int(w.first_memorising) + 1} passes {end} at "
            f"{float(w.hi):.4g} before class {int(w.last_generalising) + 1} reaches τ_gen at {float(w.lo):.4g}")


def run(args) -> int:
    from ..theory.window import MEMORISATION, disparity_window, resolve_times

    over = {"curves": {"taus": parse_grid(args.taus, "--taus") if args.taus else None}}
    spec = load(args, over, sections=("curves",))
    require(spec, "rfdiff window", "mixture", "model")
    taus = tau_grid(spec)
    w, ts = disparity_window(spec.build_mixture(), spec.build_model(), taus, memorisation=args.memorisation,
                             return_timescales=True, loss_weights=spec.model.loss_weights,
                             n_quad=args.n_quad)
    # both ends in window conventions (inf: never memorises; NaN: not resolved by the grid, only possible for
    # the end not chosen, since disparity_window raises for the chosen one)
    ends = {m: np.asarray(resolve_times(ts.tau_gen, ts.tau_mem, ts.tau_onset, ts.eps_train_inf,
                                        memorisation=m)[1]) for m in MEMORISATION}
    K = w.tau_gen.shape[0]
    print(f"ridge-time clock (μ = 1/τ); class interval [tau_gen, {args.memorisation}]; inf: never memorises")
    print("class   tau_gen     tau_mem     tau_onset   eps_tr(inf)")
    for c in range(K):
        print(f"{c + 1:5d}  " + "  ".join(f"{float(v[c]):10.4g}" for v in (w.tau_gen, ends["tau_mem"],
                                                                        ends["tau_onset"], ts.eps_train_inf)))
    print(summary(w, args.memorisation))
    arrays = {"tau_gen": w.tau_gen, "tau_end": w.tau_end, "tau_mem": ends["tau_mem"], "tau_onset": ends["tau_onset"],
              "eps_train_inf": ts.eps_train_inf, "lo": w.lo, "hi": w.hi, "width_decades": w.width_decades,
              "exists": w.exists,
              # class labels in the file are 1-based like the class coordinate
              "first_memorising": np.asarray(w.first_memorising) + 1,
              "last_generalising": np.asarray(w.last_generalising) + 1}
    out = out_dir(args, "window")
    path = write_result(out / "window.nc", {k: (("class",) if np.ndim(v) == 1 else (), np.asarray(v))
                                            for k, v in arrays.items()},
                        coords=class_coords(K),
                        attrs=provenance("window", spec, title=f"stopping window: {args.spec}",
                                         memorisation=args.memorisation,
                                         tau_grid=[float(taus[0]), float(taus[-1]), int(taus.size)],
                                         clock="theory: ridge-time proxy mu = 1/tau"))
    wrote(path)
    return 0
