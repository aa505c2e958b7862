"""Result files: every command's numbers as one labelled :class:`xarray.Dataset`, written as netCDF.

One module builds, writes and reads them (xarray is imported here only, on first use, so ``import rfdiff`` and
``rfdiff --help`` stay light). A result Dataset has

* named dimensions: ``class`` (coordinate 1..K, 1-based as σ_1, π_1 of the spec, with a string coordinate
  ``class_name``), ``tau`` (training time), ``lambda`` (eigenvalue of U), ``t`` (diffusion time), ``step``
  (optimiser step) and, in a phase diagram, the axis names themselves (``sigma_ratio``, ``pi1``, ``psi_p``, ...);
* ``long_name`` and ``units`` on every variable and coordinate (from the one table :data:`VARIABLES`;
  ``units = "1"`` means dimensionless);
* global provenance attributes :data:`PROVENANCE`: ``rfdiff_kind`` (one of :data:`KINDS`), ``rfdiff_version``,
  ``git_commit``, ``spec`` (the resolved spec *content* as JSON text), ``spec_fingerprint``, ``command_line``,
  ``created`` (ISO-8601 UTC), ``seeds`` (JSON text) and ``title``. netCDF3 attributes hold only text and numbers,
  so structures are JSON-encoded (:func:`attr_json` decodes them).

Files are netCDF3 (64-bit offset) through xarray's ``scipy`` engine (scipy is a core dependency already) and
are written atomically (:func:`rfdiff.io.atomic_write_bytes`). :func:`open_result` reads them, and also the
``.npz`` results of rfdiff ≤ 0.1 (labelled by their ``dims``/``coords`` attributes, classes renumbered from 1).

Example::

    >>> import numpy as np
    >>> ds = build("timescales", {"tau_gen": (("class",), np.array([3.0, 40.0]))},
    ...            coords=class_coords(2), attrs={"title": "demo"})
    >>> ds["tau_gen"].sel({"class": 2}).item(), ds["class_name"].values.tolist()
    (40.0, ['class 1', 'class 2'])
"""

from __future__ import annotations

import datetime
import json
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import xarray

__all__ = ["KINDS", "PROVENANCE", "VARIABLES", "describe", "class_coords", "provenance", "build", "write",
           "open_result", "from_legacy", "to_dataset", "attr_json", "convert"]

KINDS = ("spectrum", "curves", "timescales", "phase_diagram", "window", "speciation", "simulate_rf",
         "simulate_unet", "comparison", "reweight")
PROVENANCE = ("rfdiff_kind", "rfdiff_version", "git_commit", "spec", "spec_fingerprint", "command_line",
              "created", "seeds", "title")

_TAU = "training time units (GD steps x step size)"
_T = "diffusion time units"
# name -> (long_name, units); "theory_"/"finite_"/"sim_" prefixes and an "_inf" suffix are described from the
# base name (describe), so each quantity is described once
VARIABLES: dict[str, tuple[str, str]] = {
    # coordinates
    "class": ("class index c (1-based, as sigma_c and pi_c of the spec)", "1"),
    "class_name": ("class name", "1"),
    "fmnist_label": ("Fashion-MNIST label of the class (0-9)", "1"),
    "tau": ("training time tau", _TAU),
    "lambda": ("eigenvalue lambda of the feature covariance U", "1"),
    "t": ("diffusion time t", _T),
    "time_step": ("index of the diffusion time on the sampler's schedule", "1"),
    "step": ("optimiser step", "1"),
    "ratio": ("imbalance ratio pi_max/pi_min", "1"),
    "ratio_fine": ("imbalance ratio pi_max/pi_min (fine grid of the theory curve)", "1"),
    "bound": ("bound of the 95% bootstrap interval", "1"),
    "side": ("side of the bulk", "1"),
    "bulk": ("bulk index", "1"),
    "outlier": ("outlier index", "1"),
    "point": ("flat index of the grid point (C order)", "1"),
    "sigma_ratio": ("standard-deviation ratio sigma_1/sigma_2", "1"),
    "pi1": ("proportion pi_1 of class 1", "1"),
    "psi_p": ("psi_p = p/d (neurons per dimension)", "1"),
    "psi_n": ("psi_n = n/d (training points per dimension)", "1"),
    "separation": ("centroid separation ||mu_c||^2/d", "1"),
    "norm_ratio": ("centroid norm ratio ||mu_1||/||mu_2||", "1"),
    "cosine": ("cosine of the angle between the centroids mu_1 and mu_2", "1"),
    "psi_ratio": ("psi_p/psi_n = p/n (neurons per training point)", "1"),
    "input": ("input coordinate", "1"),
    "neuron": ("neuron (random feature)", "1"),
    "sample": ("generated sample", "1"),
    "row": ("image row", "1"),
    "col": ("image column", "1"),
    # spectrum
    "density": ("density of eigenvalues of U per unit lambda", "1"),
    "class_density": ("per-class spectral weight density", "1"),
    "sample_density": ("per-class density of the sample (training-point) directions", "1"),
    "residual": ("fixed-point residual of the theory's equations", "1"),
    "edges": ("edges of the continuous bulks", "1"),
    "outliers": ("outlier eigenvalues of U", "1"),
    "atom_location": ("location of the atom of the spectrum", "1"),
    "atom_mass": ("mass of the atom of the spectrum", "1"),
    "continuous_mass": ("mass of the continuous part of the spectrum", "1"),
    "seconds": ("wall-clock seconds of the computation", "s"),
    # curves and times
    "eps_train": ("normalised training error eps_train (1 untrained, 0 exact score, < 0 memorisation)", "1"),
    "eps_test": ("normalised test error eps_test (1 untrained, 0 exact score)", "1"),
    "loss_train": ("denoising score-matching loss on the training points", "1"),
    "loss_test": ("denoising score-matching loss on fresh samples", "1"),
    "signal": ("overlap of the learned readout with the class score", "1"),
    "mass": ("spectral mass of U inside the flow theory's contour (1: the contour encloses the spectrum)", "1"),
    "tau_gen": ("generalisation time tau_gen (half descent of eps_test)", _TAU),
    "tau_mem": ("memorisation time tau_mem (half the asymptotic memorisation)", _TAU),
    "tau_onset": ("onset of memorisation tau_onset", _TAU),
    "tau_gen_spec": ("spectral generalisation time: sharp-filter loss mass reaches 1/2 (clock-free)", _TAU),
    "tau_mem_spec": ("spectral memorisation time: sharp-filter loss mass reaches (1 + mass_spec)/2", _TAU),
    "tau_onset_spec": ("spectral onset time: sharp-filter loss mass reaches 2", _TAU),
    "mass_spec": ("total per-class loss mass of the spectrum (1 - mass_spec: sharp-filter plateau of eps_train)", "1"),
    "spec_error": ("largest relative mass or first-moment error of the spectral lambda grid", "1"),
    "tau_end": ("end of the class interval (tau_mem or tau_onset, as chosen)", _TAU),
    "eps_test_min": ("minimum over tau of eps_test", "1"),
    "tau_test_min": ("training time of the minimum of eps_test", _TAU),
    "lo": ("start of the common stopping window (max over classes of tau_gen)", _TAU),
    "hi": ("end of the common stopping window (min over classes of tau_end)", _TAU),
    "width_decades": ("width of the window in decades (negative: disparity)", "1"),
    "exists": ("1 if the common window is non-empty", "1"),
    "first_memorising": ("class (1-based) that closes the window", "1"),
    "last_generalising": ("class (1-based) that opens the window", "1"),
    # loss weights
    "loss_weights": ("per-class weight w_c of the DSM loss (sum_c pi_c w_c = 1)", "1"),
    "weighting": ("weights of the loss: equal (the plain loss) or solved for the target", "1"),
    # speciation
    "proportions": ("class proportions pi_c", "1"),
    "theory": ("speciation time t_S,c (theory; inf: committed from the start)", _T),
    "theory_fine": ("speciation time t_S,c on the fine ratio grid (theory)", _T),
    "sim": ("speciation time t_S,c (backward-SDE simulation)", _T),
    "se": ("bootstrap standard error of the simulated speciation time", _T),
    "ci": ("95% bootstrap interval of the simulated speciation time", _T),
    "counts": ("trajectories that commit to the class", "1"),
    "n": ("trajectories simulated", "1"),
    # RF simulation
    "train_loss": ("DSM loss on the training points (fixed evaluation noise)", "1"),
    "test_loss": ("DSM loss on fresh class samples", "1"),
    "score_error": ("(1/d) ||s_A - grad log p_t||^2 on test points", "1"),
    "bayes_drop": ("Bayes drop S_c = Delta E||s*_c||^2/d", "1"),
    "gamma2": ("noised class variance Gamma_c^2", "1"),
    "A": ("trained readout weights A", "1"),
    # U-Net metrics
    "wall": ("wall-clock training seconds", "s"),
    "train_loss_running": ("running mean of the training loss since the previous evaluation", "1"),
    "mem_fraction": ("fraction of samples that copy a training image", "1"),
    "mem_ci_low": ("lower bound of the memorised fraction's interval", "1"),
    "mem_ci_high": ("upper bound of the memorised fraction's interval", "1"),
    "mem_count": ("samples that copy a training image", "1"),
    "mem_overall": ("fraction of all samples that copy a training image", "1"),
    "cfd": ("classifier Frechet distance of the samples to the class", "1"),
    "cfd_reference": ("classifier Frechet distance between two halves of the test class", "1"),
    "samples": ("generated images", "1"),
    "s_ref": ("reference loss of the exact score per class and time", "1"),
}
_PREFIXES = {"theory_": "theory", "finite_": "finite-d closed form", "sim_": "simulation",
             "spectral_": "the simulated realisation"}


def describe(name: str) -> tuple[str, str]:
    """``(long_name, units)`` of a variable or coordinate; ``("<name>", "unknown")`` if the table lacks it."""
    if name in VARIABLES:
        return VARIABLES[name]
    for pre, who in _PREFIXES.items():
        if name.startswith(pre):
            long, units = describe(name[len(pre):])
            if units != "unknown":
                return f"{long} ({who})", units
    if name.endswith("_inf") and name[:-4] in VARIABLES:
        long, units = VARIABLES[name[:-4]]
        return f"{long} as tau -> infinity", units
    return name, "unknown"


def class_coords(num_classes: int, names: Sequence[str] | None = None) -> dict[str, Any]:
    """The ``class`` coordinate 1..K and its ``class_name`` ("class 1", ... or ``names``)."""
    k = int(num_classes)
    names = [f"class {c}" for c in range(1, k + 1)] if names is None else [str(n) for n in names]
    if len(names) != k:
        raise ValueError(f"class names: {len(names)} given for {k} classes")
    return {"class": np.arange(1, k + 1, dtype=np.int32), "class_name": ("class", np.asarray(names, dtype=str))}


def _git_commit() -> str:
    try:
        root = Path(__file__).resolve().parents[1]
        res = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5)
        return (res.stdout.strip() or "unknown") if res.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _seeds(spec_dict: Mapping) -> dict[str, int]:
    """Every ``seed`` key of the resolved spec, by section."""
    return {sec: v["seed"] for sec, v in spec_dict.items() if isinstance(v, Mapping) and v.get("seed") is not None}


def provenance(kind: str, spec=None, *, title: str = "", seeds: Mapping | None = None,
               command_line: str | None = None) -> dict[str, Any]:
    """The global attributes :data:`PROVENANCE` of a result of ``kind`` computed from ``spec`` (a
    :class:`rfdiff.spec.Spec`, its ``to_dict()``, or None for a Python call without a spec)."""
    from .io import package_version

    if kind not in KINDS:
        raise ValueError(f"rfdiff_kind must be one of {KINDS}, got {kind!r}")
    if spec is not None and not isinstance(spec, Mapping):
        fingerprint, spec = spec.fingerprint(), spec.to_dict()
    elif spec is not None:
        from .io import content_key

        fingerprint = content_key(spec)
    else:
        fingerprint = "none"
    return {"rfdiff_kind": kind, "rfdiff_version": package_version(), "git_commit": _git_commit(),
            "spec": json.dumps(spec if spec is not None else {}, sort_keys=True, default=str),
            "spec_fingerprint": fingerprint,
            "command_line": " ".join(sys.argv) if command_line is None else command_line,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "seeds": json.dumps(dict(seeds) if seeds is not None else _seeds(spec or {}), sort_keys=True),
            "title": title}


def _attr(value):
    """A netCDF3 attribute: text or a number as is; None as "none"; anything else as JSON text."""
    if isinstance(value, bool | np.bool_):
        return int(value)
    if isinstance(value, str | int | float | np.integer | np.floating):
        return value.item() if isinstance(value, np.generic) else value
    if value is None:
        return "none"
    from .io import _jsonable  # numpy scalars and arrays as JSON numbers and lists

    return json.dumps(_jsonable(value), sort_keys=True, default=str)


def attr_json(ds, name: str):
    """A global attribute decoded from JSON text (``spec``, ``seeds``, ...); plain text/numbers as they are."""
    value = ds.attrs[name]
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _netcdf3(a: np.ndarray, name: str) -> np.ndarray:
    """netCDF3 has no 64-bit integers and no booleans: int32 (range-checked), bool as int8."""
    a = np.asarray(a)
    if a.dtype == bool:
        return a.astype(np.int8)
    if a.dtype.kind in "iu" and a.dtype.itemsize > 4 or a.dtype.kind == "u":
        info = np.iinfo(np.int32)
        if a.size and (a.min() < info.min or a.max() > info.max):
            raise ValueError(f"{name}: integers outside the int32 range cannot be stored in netCDF3")
        return a.astype(np.int32)
    if a.dtype == np.float16:
        return a.astype(np.float32)
    return a


def build(kind_or_attrs, data_vars: Mapping[str, tuple], *, coords: Mapping[str, Any] | None = None,
          attrs: Mapping[str, Any] | None = None) -> "xarray.Dataset":
    """A result Dataset: ``data_vars`` {name: (dims, array)}, ``coords`` {name: values or (dim(s), values)},
    ``long_name``/``units`` from :data:`VARIABLES` (unless given in a variable's own attrs) and the global
    ``attrs`` (JSON-encoded where not text or a number). ``kind_or_attrs``: a kind of :data:`KINDS` (then
    provenance without a spec is added for the keys ``attrs`` lacks) or None (``attrs`` taken as they are)."""
    import xarray as xr

    coords = dict(coords or {})
    cvals = {}
    for name, v in coords.items():
        if isinstance(v, tuple):
            dims, vals = v[0], v[1]
            cvals[name] = (dims, _netcdf3(np.asarray(vals), name))
        else:
            cvals[name] = ((name,), _netcdf3(np.asarray(v), name))
    dvars = {}
    for name, (dims, arr) in data_vars.items():
        dims = (dims,) if isinstance(dims, str) else tuple(dims)
        a = _netcdf3(np.asarray(arr), name)
        if a.ndim != len(dims):
            raise ValueError(f"result variable {name!r}: {len(dims)} dims {dims} for an array of shape {a.shape}")
        dvars[name] = (dims, a)
    ds = xr.Dataset(dvars, coords=cvals)
    for name in list(ds.variables):
        long, units = describe(str(name))
        ds[name].attrs.setdefault("long_name", long)
        ds[name].attrs.setdefault("units", units)
    g = dict(attrs or {})
    if kind_or_attrs is not None:
        g = {**provenance(kind_or_attrs, title=str(g.get("title", ""))), **g}
    ds.attrs = {str(k): _attr(v) for k, v in g.items()}
    return ds


def write(path, ds: "xarray.Dataset") -> Path:
    """Write ``ds`` to ``path`` (.nc: netCDF3 64-bit offset, scipy engine) atomically; returns the path."""
    from .io import atomic_write_bytes

    path = Path(path)
    if path.suffix != ".nc":
        raise ValueError(f"result files end in .nc, got {path}")
    missing = [k for k in PROVENANCE if k not in ds.attrs]
    if missing:
        raise ValueError(f"result {path.name} lacks the provenance attribute(s) {missing}")
    return atomic_write_bytes(path, bytes(ds.to_netcdf(engine="scipy", format="NETCDF3_64BIT")))


# --------------------------------------------------------------------------------------------- reading
def open_result(path) -> "xarray.Dataset":
    """The result Dataset of ``path``: a ``.nc`` result, or an old ``.npz`` result converted on the fly
    (:func:`from_legacy`). Loaded into memory (the file is closed). A missing file raises FileNotFoundError; a
    corrupt, truncated or foreign file :class:`rfdiff.errors.ResultFileError` naming it, in one line."""
    import xarray as xr

    from .errors import ResultFileError

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"result file not found: {path}")
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic[:2] == b"PK":
        from .io import load_result

        arrays, attrs = load_result(path)
        return from_legacy(arrays, attrs, name=path.name)
    if magic[:3] != b"CDF":
        raise ResultFileError(f"{path} is not a readable rfdiff result file (neither netCDF3 nor .npz)")
    try:
        with xr.open_dataset(path, engine="scipy") as ds:
            ds = ds.load()
    except Exception as err:  # noqa: BLE001 — scipy/xarray raise many types for a damaged file
        raise ResultFileError(f"{path} is not a readable rfdiff result file (corrupt or truncated?): "
                              f"{type(err).__name__}: {' '.join(str(err).split())[:160]}") from None
    if "rfdiff_kind" not in ds.attrs:
        raise ResultFileError(f"{path} is a netCDF file but not an rfdiff result (no rfdiff_kind attribute)")
    return ds


_LEGACY_KIND = {"spectrum": "spectrum", "curves": "curves", "timescales": "timescales",
                "phase_diagram": "phase_diagram", "window": "window", "speciation": "speciation",
                "sim": "simulate_rf", "theory": "simulate_rf", "comparison": "comparison", "metrics": "simulate_unet"}
_LEGACY_DIM = {"lam": "lambda", "log": "step", "checkpoint": "step", "time": "t", "d": "input", "p": "neuron"}


def from_legacy(arrays: Mapping[str, np.ndarray], attrs: Mapping[str, Any], *, name: str = "result.npz"):
    """A Dataset from the arrays and attrs of an rfdiff ≤ 0.1 ``.npz`` result (``attrs["dims"]`` and
    ``attrs["coords"]``): old dimension names renamed (lam → lambda, checkpoint/log → step, time → t), the
    0-based class coordinate renumbered 1..K, the kind guessed from the file name, other attrs kept as JSON."""
    from .errors import ResultFileError

    dims = attrs.get("dims")
    if not isinstance(dims, Mapping) or not dims:
        raise ResultFileError(f"{name} is an .npz file without labelled dimensions: not an rfdiff result")
    stem = re.sub(r"\.shard-\d+-of-\d+$", "", Path(name).name.removesuffix(".npz"))
    kind = _LEGACY_KIND.get(stem)
    if kind is None:
        raise ResultFileError(f"{name}: cannot tell which rfdiff result this is from its name (expected one of "
                              f"{sorted(_LEGACY_KIND)}.npz)")
    coords_in = dict(attrs.get("coords") or {})
    data_vars, sizes = {}, {}
    for k, v in arrays.items():
        d = [_LEGACY_DIM.get(x, x) for x in (dims.get(k) or [f"{k}_dim{i}" for i in range(np.ndim(v))])]
        if len(d) != np.ndim(v):
            raise ResultFileError(f"{name}: array {k!r} has {np.ndim(v)} dims but its label lists {len(d)}")
        data_vars[k] = (tuple(d), np.asarray(v))
        sizes.update(zip(d, np.shape(v)))
    coords: dict[str, Any] = {}
    for dim, vals in coords_in.items():
        dim = _LEGACY_DIM.get(dim, dim)
        if dim == "class":
            continue
        if dim in sizes and len(vals) == sizes[dim] and dim not in data_vars:
            coords[dim] = np.asarray(vals)
    if "class" in sizes:
        coords.update(class_coords(sizes["class"]))
        old = coords_in.get("class")
        if old is not None and list(old) != list(range(sizes["class"])):
            coords["fmnist_label"] = ("class", np.asarray(old))  # U-Net: the data set's own labels
    if "time_step" in coords_in and len(coords_in["time_step"]) == sizes.get("t", -1):  # U-Net: schedule index of t
        coords["time_step"] = ("t", np.asarray(coords_in["time_step"]))
    for k in [k for k in data_vars if k in sizes and data_vars[k][0] == (k,) and k not in coords]:
        coords[k] = data_vars.pop(k)[1]  # a 1-d array named like its dimension is its coordinate (tau, lam)
    if "lam" in data_vars and data_vars["lam"][0] == ("lambda",):
        coords["lambda"] = data_vars.pop("lam")[1]
    spec = attrs.get("spec")
    prov = {"rfdiff_kind": kind, "rfdiff_version": attrs.get("rfdiff_version", "unknown"),
            "git_commit": attrs.get("git_commit") or "unknown",
            "spec": json.dumps(spec, sort_keys=True) if isinstance(spec, Mapping) else str(spec or "{}"),
            "spec_fingerprint": attrs.get("spec_fingerprint", "unknown"),
            "command_line": attrs.get("command_line", "unknown"), "created": attrs.get("created", "unknown"),
            "seeds": json.dumps(_seeds(spec) if isinstance(spec, Mapping) else {}),
            "title": attrs.get("title", stem), "converted_from": name}
    rest = {k: v for k, v in attrs.items() if k not in ("dims", "coords", *prov)}
    return build(None, data_vars, coords=coords, attrs={**prov, **rest})


def convert(path, out=None) -> Path:
    """Write the ``.nc`` of an old ``.npz`` result (default: next to it, same stem)."""
    path = Path(path)
    ds = open_result(path)
    return write(Path(out) if out is not None else path.with_suffix(".nc"), ds)


# ------------------------------------------------------------------------------------------ Python API
def to_dataset(result, *, taus=None, class_names: Sequence[str] | None = None, spec=None,
               title: str = "") -> "xarray.Dataset":
    """The labelled Dataset of a Python result, with the same names as the command's file:

    * a :class:`rfdiff.theory.timescales.Timescales` (arrays (K,)) → kind ``timescales``;
    * a dict of per-class curves (``theory_curves`` or ``finite_curves(...)(taus)``: arrays (K, T), (K,) and
      scalars; ``taus`` (T,) required) → kind ``curves``;
    * a :class:`rfdiff.theory.spectrum.SpectrumResult` → kind ``spectrum``.

    ``spec`` (optional) is recorded as provenance. Example::

        >>> ts = curve_timescales(taus, cur["eps_test"], cur["eps_train"], cur["eps_train_inf"])  # doctest: +SKIP
        >>> to_dataset(ts)["tau_gen"].sel({"class": 1})                                              # doctest: +SKIP
    """
    if type(result).__name__ == "Timescales" and hasattr(result, "_asdict"):
        arrays = {k: np.asarray(v) for k, v in result._asdict().items()}
        k = arrays["tau_gen"].shape[0]
        dv = {n: (("class",) if v.ndim == 1 else (), v) for n, v in arrays.items()}
        return build(None, dv, coords=class_coords(k, class_names),
                     attrs=provenance("timescales", spec, title=title))
    if hasattr(result, "class_density") and hasattr(result, "lam"):
        return build(None, spectrum_vars(result), coords={"lambda": np.asarray(result.lam),
                                                          **class_coords(np.shape(result.class_density)[1],
                                                                         class_names),
                                                          "side": np.array(["lower", "upper"])},
                     attrs=provenance("spectrum", spec, title=title))
    if isinstance(result, Mapping):
        if taus is None:
            raise ValueError("to_dataset of a dict of curves needs taus= (the τ grid, shape (T,))")
        taus = np.asarray(taus, np.float64)
        dv = curve_vars(result, taus.size)
        k = next(v[1].shape[0] for v in dv.values() if v[0] and v[0][0] == "class")
        return build(None, dv, coords={"tau": taus, **class_coords(k, class_names)},
                     attrs=provenance("curves", spec, title=title))
    raise TypeError(f"to_dataset: no labelled form for a {type(result).__name__} (expected Timescales, "
                    "SpectrumResult or a dict of per-class curves)")


def curve_vars(arrays: Mapping[str, Any], num_taus: int) -> dict[str, tuple]:
    """Per-class curves → data_vars: (K, T) on (class, tau), (K,) on class, scalars as 0-d."""
    out = {}
    for name, v in arrays.items():
        v = np.asarray(v)
        if v.ndim == 2:
            if v.shape[1] != num_taus:
                raise ValueError(f"curve {name!r} has {v.shape[1]} times for a τ grid of {num_taus}")
            out[name] = (("class", "tau"), v)
        elif v.ndim == 1:
            out[name] = (("class",), v)
        elif v.ndim == 0:
            out[name] = ((), v)
        else:
            raise ValueError(f"curve {name!r} has {v.ndim} dims; expected (K, T), (K,) or a scalar")
    return out


def spectrum_vars(res) -> dict[str, tuple]:
    """A :class:`~rfdiff.theory.spectrum.SpectrumResult` → data_vars on (lambda, class, ...)."""
    return {"density": (("lambda",), res.density), "class_density": (("lambda", "class"), res.class_density),
            "sample_density": (("lambda", "class"), res.sample_density), "residual": (("lambda",), res.residual),
            "edges": (("bulk", "side"), np.asarray(res.edges).reshape(-1, 2)),
            "outliers": (("outlier",), np.asarray(res.outliers).ravel()),
            "atom_location": ((), res.atom_location), "atom_mass": ((), res.atom_mass),
            "continuous_mass": ((), res.continuous_mass)}
