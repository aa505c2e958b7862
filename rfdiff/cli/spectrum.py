"""``rfdiff spectrum SPEC``: the asymptotic spectrum of U for a spec, as a labelled netCDF result
(``spectrum.nc``, :mod:`rfdiff.results`) and a PNG.

Spec sections used: ``[mixture]``, ``[model]``, optional ``[finite] d`` (locates outliers; needed for weak
centroids) and ``[spectrum]`` (``lam_min``, ``lam_max``, ``num_points``, ``centroids``); the flags
``--lam-min``, ``--lam-max``, ``--num-points`` override ``[spectrum]``.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from ..plots import plot_spectrum
from ..errors import SpecError
from ..results import class_coords
from ._common import load, out_dir, provenance, require, write_result, wrote

__all__ = ["run"]

log = logging.getLogger("rfdiff")


def run(args) -> int:
    spec = load(args, {"spectrum": {"lam_min": args.lam_min, "lam_max": args.lam_max,
                                    "num_points": args.num_points}}, sections=("spectrum",))
    require(spec, "rfdiff spectrum", "mixture", "model")
    if spec.model.loss_weights is not None:
        raise SpecError("[model] loss_weights are not supported by rfdiff spectrum (the spectrum of the plain U)")
    sec = spec.spectrum
    from ..theory.spectrum import spectral_density

    d = spec.finite.d if spec.finite else None
    mix, model = spec.build_mixture(), spec.build_model()
    t0 = time.perf_counter()
    res = spectral_density(mix, model, np.geomspace(sec.lam_min, sec.lam_max, sec.num_points), d=d,
                           centroids=sec.centroids, n_quad=args.n_quad)
    seconds = time.perf_counter() - t0
    out = out_dir(args, "spectrum")
    k = mix.num_classes
    from ..results import spectrum_vars

    npz = write_result(out / "spectrum.nc", spectrum_vars(res),
                       coords={"lambda": res.lam, **class_coords(k), "side": np.array(["lower", "upper"])},
                       attrs=provenance("spectrum", spec, title=f"spectrum of U: {args.spec}", seconds=seconds,
                                        d=d if d is not None else "none"))
    png = plot_spectrum(res, out / "spectrum.png", title=str(args.spec))
    log.info("atom %.4g at λ = %.4g, continuous mass %.4f, %d outlier(s); %.1f s", res.atom_mass,
             res.atom_location, res.continuous_mass, res.outliers.size, seconds)
    wrote(npz, png)
    return 0
