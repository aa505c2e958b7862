"""``rfdiff window SPEC``: when to stop so that every class is learned and none memorised.

Per class the interval [τ_gen,c, τ_end,c] (τ_end = τ_mem, or τ_onset with ``--memorisation tau_onset``) of the
d → ∞ theory, on the ridge-time clock μ = 1/τ (:mod:`rfdiff.theory.window`); then the common window
[max τ_gen, min τ_end] and its width in decades, or, when it is empty, the disparity: which class is already
memorising while which one has not yet generalised, and for how many decades.
"""

from __future__ import annotations

import logging

import numpy as np

from ..io import save_result
from ._common import load, out_dir, parse_grid, provenance, require, tau_grid, wrote

__all__ = ["run", "summary"]

log = logging.getLogger("rfdiff")


def summary(w, memorisation: str) -> str:
    """One line: the window and its width, or the disparity (classes and decades)."""
    end = "τ_mem" if memorisation == "tau_mem" else "τ_onset"
    width = float(w.width_decades)
    if bool(w.exists):
        return (f"window: [{float(w.lo):.4g}, {float(w.hi):.4g}] ({width:.3g} decades): stop inside it and every "
                f"class is past τ_gen, none past {end} (opened by class {int(w.last_generalising)}, closed by "
                f"class {int(w.first_memorising)})")
    return (f"no window (disparity {width:.3g} decades): class {int(w.first_memorising)} passes {end} at "
            f"{float(w.hi):.4g} before class {int(w.last_generalising)} reaches τ_gen at {float(w.lo):.4g}")


def run(args) -> int:
    from ..theory.window import MEMORISATION, disparity_window, resolve_times

    over = {"curves": {"taus": parse_grid(args.taus, "--taus") if args.taus else None}}
    spec = load(args, over, sections=("curves",))
    require(spec, "rfdiff window", "mixture", "model")
    taus = tau_grid(spec)
    w, ts = disparity_window(spec.build_mixture(), spec.build_model(), taus, memorisation=args.memorisation,
                             return_timescales=True, loss_weights=spec.model.loss_weights)
    # both ends in window conventions (inf: never memorises; NaN: not resolved by the grid, only possible for
    # the end not chosen, since disparity_window raises for the chosen one)
    ends = {m: np.asarray(resolve_times(ts.tau_gen, ts.tau_mem, ts.tau_onset, ts.eps_train_inf,
                                        memorisation=m)[1]) for m in MEMORISATION}
    K = w.tau_gen.shape[0]
    print(f"ridge-time clock (μ = 1/τ); class interval [tau_gen, {args.memorisation}]; inf: never memorises")
    print("class   tau_gen     tau_mem     tau_onset   eps_tr(inf)")
    for c in range(K):
        print(f"{c:5d}  " + "  ".join(f"{float(v[c]):10.4g}" for v in (w.tau_gen, ends["tau_mem"],
                                                                        ends["tau_onset"], ts.eps_train_inf)))
    print(summary(w, args.memorisation))
    arrays = {"tau_gen": w.tau_gen, "tau_end": w.tau_end, "tau_mem": ends["tau_mem"], "tau_onset": ends["tau_onset"],
              "eps_train_inf": ts.eps_train_inf, "lo": w.lo, "hi": w.hi, "width_decades": w.width_decades,
              "exists": w.exists, "first_memorising": w.first_memorising, "last_generalising": w.last_generalising}
    dims = {k: (["class"] if np.ndim(v) == 1 else []) for k, v in arrays.items()}
    out = out_dir(args, "window")
    path = save_result(out / "window.npz", arrays,
                       {"dims": dims, "coords": {"class": list(range(K))}, "memorisation": args.memorisation,
                        "tau_grid": [float(taus[0]), float(taus[-1]), int(taus.size)],
                        "units": {k: "training time τ" for k in ("tau_gen", "tau_end", "tau_mem", "tau_onset",
                                                                  "lo", "hi")},
                        "clock": {"theory": "ridge-time proxy μ = 1/τ"}, **provenance(spec)})
    wrote(path)
    return 0
