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

Caches and checkpoints are content-addressed by :func:`content_key` (the one key function of the package):
a stored result is reused only when the sha256 of everything that determines it, plus the package version,
is unchanged. :func:`key_digests` and :func:`changed_inputs` name which input differs when it is not.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
import tempfile
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .model.mixture import GaussianMixture, proportions_long_tail, proportions_step

__all__ = [
    "content_key",
    "key_digests",
    "changed_inputs",
    "package_version",
    "load_spec",
    "mixture_from_spec",
    "atomic_write_bytes",
    "atomic_write_text",
    "save_result",
    "load_result",
]


# ---------------------------------------------------------------------------------------------- keys
def package_version() -> str:
    """Installed rfdiff version (``importlib.metadata``), else ``__version__`` read from the source text.

    Read without importing :mod:`rfdiff` (whose ``__init__`` pulls in every stage).
    """
    import importlib.metadata

    try:
        return importlib.metadata.version("rfdiff")
    except importlib.metadata.PackageNotFoundError:
        text = (Path(__file__).parent / "__init__.py").read_text()
        m = re.search(r'^__version__\s*=\s*["\']([^"\']+)["\']', text, re.M)
        if m is None:
            raise RuntimeError("rfdiff is not installed and rfdiff/__init__.py defines no __version__") from None
        return m.group(1)


def _array_token(a: np.ndarray) -> dict:
    a = np.ascontiguousarray(a)
    if a.dtype.hasobject:
        raise TypeError("content_key cannot hash object arrays")
    return {"__array__": a.dtype.str, "shape": list(a.shape), "sha256": hashlib.sha256(a.tobytes()).hexdigest()}


def _canonical(x, where: str = "input"):
    """JSON-able canonical form: numbers as float64 repr, arrays as (dtype, shape, sha256 of bytes), dicts with
    sorted keys (by ``json.dumps(sort_keys=True)``), dataclasses / eqx modules / NamedTuples by type name and
    every field (leaves and static fields alike), other pytrees by key path. Anything else is a TypeError."""
    import jax

    if x is None or isinstance(x, (bool, np.bool_, str)):
        return x.item() if isinstance(x, np.bool_) else x
    if isinstance(x, (int, np.integer)):
        x = int(x)
        # float64 repr so 2 and 2.0 (TOML, JSON) key alike; exact digits where float64 would round
        return repr(float(x)) if abs(x) <= 2**53 else f"int:{x}"
    if isinstance(x, (float, np.floating)):
        return repr(float(x)) if not math.isnan(x) else "nan"
    if isinstance(x, (complex, np.complexfloating)):
        return {"__complex__": [repr(float(x.real)), repr(float(x.imag))]}
    if isinstance(x, Path):
        return str(x)
    if isinstance(x, jax.Array):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            return {"__prng_key__": str(jax.random.key_impl(x)), "data": _array_token(np.asarray(jax.random.key_data(x)))}
        return _array_token(np.asarray(x))
    if isinstance(x, np.ndarray):
        return _array_token(x)
    if isinstance(x, Mapping):
        out = {}
        for k, v in x.items():
            if not isinstance(k, str):
                raise TypeError(f"content_key: {where} has a non-string dict key {k!r}")
            out[k] = _canonical(v, f"{where}[{k!r}]")
        return out
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return {"__type__": type(x).__qualname__,
                **{f.name: _canonical(getattr(x, f.name), f"{where}.{f.name}") for f in dataclasses.fields(x)}}
    if isinstance(x, tuple) and hasattr(x, "_fields"):  # NamedTuple
        return {"__type__": type(x).__qualname__, **{k: _canonical(v, f"{where}.{k}") for k, v in x._asdict().items()}}
    if isinstance(x, (list, tuple)):
        return [_canonical(v, f"{where}[{i}]") for i, v in enumerate(x)]
    leaves, treedef = jax.tree_util.tree_flatten_with_path(x)
    if not (len(leaves) == 1 and leaves[0][1] is x):  # a registered pytree node: its structure and leaves
        return {"__pytree__": str(treedef),
                "leaves": {jax.tree_util.keystr(p): _canonical(v, f"{where}{jax.tree_util.keystr(p)}")
                           for p, v in leaves}}
    raise TypeError(f"content_key: cannot hash {where} of type {type(x).__name__}; pass its content (arrays, "
                    "numbers, strings, dicts, dataclasses)")


def _digest(obj) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def content_key(*parts, **named) -> str:
    """sha256 (hex) of the canonical JSON of everything that determines a result, plus the package version.

    ``parts`` and ``named`` may be numbers, strings, None, numpy/jax arrays (hashed by dtype, shape and
    bytes), dicts (key order is irrelevant), lists/tuples, dataclasses, equinox modules and NamedTuples (type
    name and every field, static ones included) or other pytrees. A changed leaf, dtype, shape, field or
    :func:`package_version` changes the key; ints and floats of equal value (``2``, ``2.0``) key alike.
    Functions and other opaque objects are refused (TypeError): hash what determines them instead.

    Example::

        >>> content_key({"b": 1, "a": [2.0, "x"]}) == content_key({"a": [2, "x"], "b": 1.0})
        True
    """
    return _digest({"parts": [_canonical(p, f"part {i}") for i, p in enumerate(parts)],
                    "named": {k: _canonical(v, k) for k, v in named.items()}, "version": package_version()})


def key_digests(**named) -> dict[str, str]:
    """Per-input sha256 of the same canonical form (plus ``version``): stored beside a :func:`content_key`
    so that a mismatch can name the inputs that changed (:func:`changed_inputs`)."""
    out = {k: _digest(_canonical(v, k)) for k, v in named.items()}
    out["version"] = package_version()
    return out


def changed_inputs(stored: Mapping[str, str] | None, new: Mapping[str, str]) -> list[str]:
    """Names whose digests differ between a stored :func:`key_digests` and a new one (sorted)."""
    stored = dict(stored or {})
    return sorted(k for k in set(stored) | set(new) if stored.get(k) != new.get(k))


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
