"""Input/output: TOML specs, atomic writes, labelled-array result files.

Spec schema (TOML; every CLI subcommand reads the same file and takes the sections it needs)::

    [mixture]
    variances   = [1.0, 4.0]          # σ_c², one per class (required)
    proportions = [0.5, 0.5]          # π_c, sum to 1; or give [mixture.imbalance] instead
    # centroids, one of:
    centroid_gram = [[0, 0], [0, 0]]  # M_cc' = μ_c·μ_c'/d
    centroid_sq_norms = [16.0, 16.0]  # with centroid_scaling = "strong" (||μ||²/d) or "weak" (||μ||², needs d)
    centroid_cosines  = [[1, 0], [0, 1]]
    centroid_scaling  = "strong"
    levels = [[1.0, 4.0], [1.0, 4.0]] # optional covariance levels (K, L), relative to σ_c²
    level_weights = [0.9, 0.1]        # fraction of coordinates at each level

    [mixture.imbalance]               # alternative to proportions
    profile = "long_tail"             # or "step"
    ratio = 100.0                     # long_tail: n_max/n_min;  step: minority_fraction = ..., num_minority = ...

    [model]
    activation = "tanh"               # tanh, relu, erf, sigmoid, silu, linear
    psi_p = 8.0                       # p/d
    psi_n = 2.0                       # n/d
    t = 0.01                          # diffusion time

    [finite]                          # finite-d realisation (validation, simulation)
    d = 500
    seed = 0

Further sections (``[spectrum]``, ``[curves]``, ``[speciation]``, ``[simulate]``, ...) belong to the
subcommand of that name and are documented there.

Results are written as ``.npz`` files of named arrays plus a JSON ``attrs`` entry holding dimension names,
coordinates and provenance (see :func:`save_result`); every write goes to a temporary file in the same
directory, is flushed and fsync'ed, then renamed into place, so a killed run never leaves a torn file.
"""

from __future__ import annotations

import json
import os
import tempfile
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .model.mixture import GaussianMixture, proportions_long_tail, proportions_step

__all__ = [
    "load_spec",
    "mixture_from_spec",
    "atomic_write_bytes",
    "atomic_write_text",
    "save_result",
    "load_result",
]


# ---------------------------------------------------------------------------------------------- atomic
def atomic_write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temp file in the same directory, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode())


def _jsonable(x):
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return x


def save_result(path, arrays: Mapping[str, Any], attrs: Mapping[str, Any] | None = None) -> Path:
    """Save named arrays and JSON-able ``attrs`` (dims, coords, spec, provenance) to ``path`` (.npz), atomically.

    Convention for labelled arrays: ``attrs["dims"][name]`` lists the dimension names of array ``name`` and
    ``attrs["coords"][dim]`` its coordinate values, so a file is self-describing.
    """
    import io as _io

    buf = _io.BytesIO()
    payload = {k: np.asarray(v) for k, v in arrays.items()}
    payload["__attrs__"] = np.asarray(json.dumps(_jsonable(dict(attrs or {}))))
    np.savez(buf, **payload)
    return atomic_write_bytes(path, buf.getvalue())


def load_result(path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Inverse of :func:`save_result`: returns (arrays, attrs)."""
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files if k != "__attrs__"}
        attrs = json.loads(str(f["__attrs__"])) if "__attrs__" in f.files else {}
    return arrays, attrs


# ---------------------------------------------------------------------------------------------- specs
def load_spec(path) -> dict[str, Any]:
    """Read a TOML spec file into a dict (see module docstring for the schema)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"spec file not found: {path}")
    with open(path, "rb") as fh:
        try:
            spec = tomllib.load(fh)
        except tomllib.TOMLDecodeError as err:
            raise ValueError(f"spec {path} is not valid TOML: {err}") from None
    if "mixture" not in spec:
        raise ValueError(f"spec {path} has no [mixture] section")
    return spec


def _require(section: Mapping, key: str, where: str):
    if key not in section:
        raise ValueError(f"[{where}] needs '{key}'")
    return section[key]


def mixture_from_spec(spec: Mapping[str, Any], d: int | None = None) -> GaussianMixture:
    """Build a :class:`GaussianMixture` from the ``[mixture]`` section of a spec (``d`` for weak centroids)."""
    m = spec["mixture"] if "mixture" in spec else spec
    variances = _require(m, "variances", "mixture")
    k = len(variances)
    if "proportions" in m and "imbalance" in m:
        raise ValueError("[mixture] give either 'proportions' or [mixture.imbalance], not both")
    if "imbalance" in m:
        imb = m["imbalance"]
        profile = _require(imb, "profile", "mixture.imbalance")
        if profile == "long_tail":
            props = proportions_long_tail(k, float(_require(imb, "ratio", "mixture.imbalance")))
        elif profile == "step":
            props = proportions_step(k, float(_require(imb, "minority_fraction", "mixture.imbalance")),
                                     int(imb.get("num_minority", 1)))
        else:
            raise ValueError(f"[mixture.imbalance] profile must be 'long_tail' or 'step', got {profile!r}")
    else:
        props = m.get("proportions", [1.0 / k] * k)
    if len(props) != k:
        raise ValueError(f"[mixture] proportions has {len(props)} entries but variances has {k}")
    mix = GaussianMixture.create(props, variances, centroid_gram=m.get("centroid_gram"),
                                 levels=m.get("levels"), level_weights=m.get("level_weights"))
    if "centroid_sq_norms" in m:
        if "centroid_gram" in m:
            raise ValueError("[mixture] give either 'centroid_gram' or 'centroid_sq_norms', not both")
        scaling = m.get("centroid_scaling", "strong")
        if scaling == "strong":
            mix = mix.with_strong_centroids(m["centroid_sq_norms"], m.get("centroid_cosines"))
        elif scaling == "weak":
            if d is None:
                d = spec.get("finite", {}).get("d")
            if d is None:
                raise ValueError("[mixture] centroid_scaling = 'weak' needs a dimension: set [finite] d")
            mix = mix.with_weak_centroids(m["centroid_sq_norms"], int(d), m.get("centroid_cosines"))
        else:
            raise ValueError(f"[mixture] centroid_scaling must be 'strong' or 'weak', got {scaling!r}")
    return mix
