"""``rfdiff speciation SPEC``: per-class speciation times against the imbalance ratio (theory + backward SDE)."""

from __future__ import annotations

import logging

import numpy as np

from ..spec import SpecError
from ..results import class_coords
from ._common import load, out_dir, progress, provenance, require, write_result, wrote

__all__ = ["run"]

log = logging.getLogger("rfdiff")


def _ratios(text: str) -> list[float]:
    try:
        r = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise SpecError(f"--ratios must be comma-separated numbers, got {text!r}") from None
    if not r or any(not np.isfinite(x) or x < 1 for x in r):
        raise SpecError(f"--ratios must be finite imbalance ratios π_max/π_min ≥ 1, got {text!r}")
    return r


def run(args) -> int:
    from ..precision import x64

    from ..plots import plot_times_vs_ratio
    from ..simulate.speciation import speciation_vs_ratio

    ratios = _ratios(args.ratios)
    spec = load(args, {"speciation": {"d": args.d, "n_trajectories": args.n, "seed": args.seed}},
                sections=("speciation",))
    require(spec, "rfdiff speciation", "mixture")
    cfg = spec.speciation
    out = out_dir(args, "speciation")
    with x64():  # theory in float64; the simulation itself runs in float32
        mix = spec.build_mixture(cfg.d)
        res = speciation_vs_ratio(
            mix, cfg.d, ratios, theta=cfg.theta, simulate=not args.theory_only, n=cfg.n_trajectories,
            min_minority=cfg.min_minority, t_max=cfg.t_max, t_min=cfg.t_min, num_steps=cfg.num_steps,
            chunk=cfg.chunk, method=cfg.method, seed=cfg.seed, checkpoint_dir=out / "checkpoint",
            resume=True if args.resume else None,
            progress=progress(args))
    dims = {"proportions": ("ratio", "class"), "theory": ("ratio", "class"), "sim": ("ratio", "class"),
            "se": ("ratio", "class"), "ci": ("ratio", "class", "bound"), "counts": ("ratio", "class"),
            "n": ("ratio",), "theory_fine": ("ratio_fine", "class")}
    coords = {"ratio": np.asarray(res["ratio"]), "ratio_fine": np.asarray(res["ratio_fine"]),
              **class_coords(mix.num_classes)}
    if "ci" in res:
        coords["bound"] = np.array(["2.5%", "97.5%"])
    npz = write_result(out / "speciation.nc", {k: (v, res[k]) for k, v in dims.items() if k in res},
                       coords=coords, attrs=provenance("speciation", spec, title=f"speciation times, d = {cfg.d}",
                                                       d=cfg.d))
    png = plot_times_vs_ratio(res, out / "speciation.png", title=f"d = {cfg.d}")
    for i, r in enumerate(ratios):
        line = f"ratio {r:g}: theory {np.array2string(res['theory'][i], precision=3)}"
        if "sim" in res:
            line += (f"  sim {np.array2string(res['sim'][i], precision=3)} ± "
                     f"{np.array2string(res['se'][i], precision=3)}  (counts {res['counts'][i].astype(int)})")
        print(line)
    wrote(npz, png)
    return 0
