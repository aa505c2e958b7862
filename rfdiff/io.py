"""Input/output: atomic writes and labelled-array result files.

Spec files are read by the one schema, :mod:`rfdiff.spec` (``rfdiff schema`` prints it).

Results are written as ``.npz`` files of named arrays plus a JSON ``attrs`` entry holding dimension names,
coordinates and provenance (see :func:`save_result`); every write goes to a temporary file in the same
directory, is flushed and fsync'ed, then renamed into place, so a killed run never leaves a torn file.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np


__all__ = [
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
        with np.load(path, allow_pickle=False) as f:
            if not hasattr(f, "files"):
                raise ResultFileError(f"{path} is a bare array, not an rfdiff result file (.npz)")
            arrays = {k: f[k] for k in f.files if k != "__attrs__"}
            attrs = json.loads(str(f["__attrs__"])) if "__attrs__" in f.files else {}
    except ResultFileError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError, json.JSONDecodeError) as err:
        raise ResultFileError(f"{path} is not a readable rfdiff result file (corrupt or truncated?): "
                              f"{type(err).__name__}: {' '.join(str(err).split())[:160]}") from None
    return arrays, attrs
