"""``rfdiff reweight SPEC --target equal-gen|window|equal-mem``: class weights of the DSM loss from the theory.

Solves the d → ∞ ridge-time theory (:func:`rfdiff.theory.reweight.solve_weights`) for per-class loss weights
w_c (normalised Σ_c π_c w_c = 1) that equalise τ_gen across classes, maximise the common window
[max_c τ_gen,c, min_c τ_mem,c], or equalise τ_mem; prints the weights and the per-class times with equal weights
(the plain loss) and with the solved weights, and writes DIR/reweight.nc (dims ``weighting`` = equal | solved, ``class``). Use the weights as
``[model] loss_weights`` of the spec (``rfdiff simulate rf`` then trains on the weighted loss).
"""

from __future__ import annotations

import logging

import numpy as np

from ..results import class_coords
from ._common import load, out_dir, parse_grid, provenance, require, write_result, wrote
from .window import summary

__all__ = ["run"]

log = logging.getLogger("rfdiff")

DEFAULT_TAUS = (1e-3, 1e6, 361)  # finer than [curves]' default: the times are interpolated on this grid


def run(args) -> int:
    from ..theory.reweight import solve_weights

    spec = load(args)
    require(spec, "rfdiff reweight", "mixture", "model")
    lo, hi, num = parse_grid(args.taus, "--taus") if args.taus else DEFAULT_TAUS
    if not (0 < lo < hi and num >= 2):
        raise ValueError(f"--taus must satisfy 0 < LO < HI and NUM ≥ 2, got {args.taus!r}")
    taus = np.logspace(np.log10(lo), np.log10(hi), int(num))
    if spec.model.loss_weights is not None:
        log.info("note: [model] loss_weights of the spec are ignored; 'before' is the plain (equal-weight) loss")
    res = solve_weights(spec.build_mixture(), spec.build_model(), args.goal, taus=taus)
    K = res.weights.size
    print(f"target {args.goal}; ridge-time clock (μ = 1/τ); weights normalised Σ π_c w_c = 1; inf: never memorises")
    print("class   pi        weight    tau_gen before/after     tau_mem before/after")
    for c in range(K):
        print(f"{c + 1:5d}  {res.proportions[c]:8.4g}  {res.weights[c]:8.4g}  "
              f"{float(res.before.tau_gen[c]):10.4g} {float(res.after.tau_gen[c]):10.4g}   "
              f"{float(res.before.tau_end[c]):10.4g} {float(res.after.tau_end[c]):10.4g}")
    print("before: " + summary(res.before, "tau_mem"))
    print("after:  " + summary(res.after, "tau_mem"))
    print("loss_weights = [" + ", ".join(f"{w:.6g}" for w in res.weights) + "]")
    out = out_dir(args, "reweight")
    # one labelled result: per-class times with equal weights and with the solved ones (dim "weighting")
    both = lambda a, b: (("weighting", "class"), np.stack([np.asarray(a, float), np.asarray(b, float)]))  # noqa: E731
    data_vars = {
        "loss_weights": (("class",), np.asarray(res.weights, float)),
        "proportions": (("class",), np.asarray(res.proportions, float)),
        "tau_gen": both(res.before.tau_gen, res.after.tau_gen),
        "tau_end": both(res.before.tau_end, res.after.tau_end),
        "width_decades": (("weighting",), np.array([float(res.before.width_decades),
                                                    float(res.after.width_decades)])),
        "residual": ((), np.float64(res.residual)),
    }
    path = write_result(out / "reweight.nc", data_vars,
                        coords={"weighting": np.array(["equal", "solved"]), **class_coords(K)},
                        attrs=provenance("reweight", spec, title=f"loss weights for target {args.goal}",
                                         target=args.goal, memorisation="tau_mem",
                                         tau_grid=[float(taus[0]), float(taus[-1]), int(taus.size)],
                                         clock="ridge-time proxy mu = 1/tau"))
    wrote(path)
    return 0
