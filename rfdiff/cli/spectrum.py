"""``rfdiff spectrum SPEC``: solve the spectrum of U for a spec file, save a labelled .npz and a PNG.

Spec sections used: ``[mixture]``, ``[model]``, optional ``[finite] d`` (locates outliers; needed for weak
centroids) and ``[spectrum]`` (``lam_min``, ``lam_max``, ``num_points``, ``centroids`` = auto/weak/strong);
command-line flags override ``[spectrum]``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..model.rf import RFModel
from ..io import load_spec, mixture_from_spec, save_result
from ..plots import plot_spectrum
from ..theory.spectrum import spectral_density

__all__ = ["run_spectrum"]


def _model_from_spec(spec) -> RFModel:
    m = spec.get("model")
    if not isinstance(m, dict):
        raise ValueError("spec needs a [model] section with psi_p, psi_n, t (and activation)")
    for key in ("psi_p", "psi_n", "t"):
        if key not in m:
            raise ValueError(f"[model] is missing {key!r}")
    return RFModel(psi_p=float(m["psi_p"]), psi_n=float(m["psi_n"]), t=float(m["t"]),
                   activation=str(m.get("activation", "tanh")))


def run_spectrum(spec_path, out_dir=None, *, num_points=None, lam_min=None, lam_max=None) -> tuple[Path, Path]:
    spec = load_spec(spec_path)
    sec = dict(spec.get("spectrum", {}))
    d = spec.get("finite", {}).get("d")
    mix = mixture_from_spec(spec, d)
    model = _model_from_spec(spec)
    lo = float(lam_min if lam_min is not None else sec.get("lam_min", 1e-4))
    hi = float(lam_max if lam_max is not None else sec.get("lam_max", 1e2))
    n = int(num_points if num_points is not None else sec.get("num_points", 1000))
    if not (0 < lo < hi) or n < 2:
        raise ValueError(f"need 0 < lam_min < lam_max and num_points ≥ 2, got {lo}, {hi}, {n}")
    t0 = time.perf_counter()
    res = spectral_density(mix, model, np.geomspace(lo, hi, n), d=None if d is None else int(d),
                           centroids=str(sec.get("centroids", "auto")))
    out = Path(out_dir) if out_dir is not None else Path(spec_path).with_suffix("")
    stem = Path(spec_path).stem
    k = mix.num_classes
    npz = save_result(out / f"{stem}_spectrum.npz", {
        "density": res.density, "class_density": res.class_density, "sample_density": res.sample_density,
        "residual": res.residual, "edges": res.edges, "outliers": res.outliers,
    }, {"dims": {"density": ["lam"], "class_density": ["lam", "class"], "sample_density": ["lam", "class"],
                 "residual": ["lam"], "edges": ["bulk", "side"], "outliers": ["outlier"]},
        "coords": {"lam": res.lam.tolist(), "class": list(range(k)), "side": ["lower", "upper"]},
        "atom_location": res.atom_location, "atom_mass": res.atom_mass, "continuous_mass": res.continuous_mass,
        "spec": spec, "seconds": time.perf_counter() - t0})
    png = plot_spectrum(res, out / f"{stem}_spectrum.png", title=stem)
    return npz, png
