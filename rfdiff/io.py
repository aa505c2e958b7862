"""Input/output: atomic writes, checkpoint/cache files and content keys.

Spec files are read by the one schema, :mod:`rfdiff.spec` (``rfdiff schema`` prints it). Result files (labelled
netCDF datasets) are built, written and read by :mod:`rfdiff.results`.

Checkpoints and caches are ``.npz`` files of named arrays plus a JSON ``attrs`` entry (see :func:`save_result`;
rfdiff ≤ 0.1 wrote its results this way too, and :func:`rfdiff.results.open_result` still reads them); every
write goes to a temporary file in the same directory, is flushed and fsync'ed, then renamed into place, so a
killed run never leaves a torn file.

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
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # annotations only (jaxtyping shapes); no runtime import
    from jaxtyping import ArrayLike


__all__ = [
    "content_key",
    "key_digests",
    "changed_inputs",
    "package_version",
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
def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temp file in the same directory, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp makes the file 0600; a result file gets the permissions an ordinary open() would give
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(fd, 0o666 & ~umask)
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


def atomic_write_text(path: str | Path, text: str) -> Path:
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


def save_result(path: str | Path, arrays: Mapping[str, ArrayLike], attrs: Mapping[str, Any] | None = None) -> Path:
    """Save named arrays and JSON-able ``attrs`` to ``path`` (.npz), atomically: checkpoints and caches.

    (Results are netCDF, :func:`rfdiff.results.write`.) The old result convention, still read by
    :func:`rfdiff.results.from_legacy`: ``attrs["dims"][name]`` lists the dimension names of array ``name`` and
    ``attrs["coords"][dim]`` its coordinate values.
    """
    import io as _io

    buf = _io.BytesIO()
    payload = {k: np.asarray(v) for k, v in arrays.items()}
    payload["__attrs__"] = np.asarray(json.dumps(_jsonable(dict(attrs or {}))))
    np.savez(buf, **payload)
    return atomic_write_bytes(path, buf.getvalue())


def load_result(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Inverse of :func:`save_result`: returns (arrays, attrs).

    A missing file raises ``FileNotFoundError``; a corrupt, truncated or foreign file raises
    :class:`rfdiff.errors.ResultFileError` naming it (never a traceback from deep inside numpy or zipfile).
    """
    import zipfile

    from .errors import ResultFileError

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"result file not found: {path}")
    try:
        # our own handle, closed whatever happens (np.load leaks it when a truncated archive fails to parse)
        with open(path, "rb") as fh:
            f = np.load(fh, allow_pickle=False)
            if not hasattr(f, "files"):
                raise ResultFileError(f"{path} is a bare array, not an rfdiff result file (.npz)")
            with f:
                arrays = {k: f[k] for k in f.files if k != "__attrs__"}
                attrs = json.loads(str(f["__attrs__"])) if "__attrs__" in f.files else {}
    except ResultFileError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError, json.JSONDecodeError) as err:
        raise ResultFileError(f"{path} is not a readable rfdiff result file (corrupt or truncated?): "
                              f"{type(err).__name__}: {' '.join(str(err).split())[:160]}") from None
    return arrays, attrs
