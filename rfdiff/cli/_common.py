"""What every subcommand shares: the spec with its command-line overrides, the output directory, provenance
and the progress-bar policy."""

from __future__ import annotations

import logging
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..spec import Spec, SpecError

log = logging.getLogger("rfdiff")

__all__ = ["load", "require", "out_dir", "provenance", "write_result", "progress", "parse_grid", "tau_grid",
           "wrote"]


def _read_raw(path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"spec file not found: {path}")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise SpecError(f"spec {path} is not valid TOML: {err}") from None
    except UnicodeDecodeError:
        raise SpecError(f"spec {path} is not a text (UTF-8) file") from None


def load(args, overrides: Mapping[str, Mapping[str, Any]] | None = None, *, sections: tuple[str, ...] = ()) -> Spec:
    """The spec of ``args.spec`` with ``overrides`` ({section: {key: value}}, None values skipped) written into
    it before validation, so a command-line value passes exactly the checks a spec value does. ``sections``
    that the file lacks are added empty, so the command reads their resolved defaults from the schema."""
    raw = _read_raw(args.spec)
    for section in sections:
        raw.setdefault(section, {})
    for section, values in (overrides or {}).items():
        values = {k: v for k, v in values.items() if v is not None}
        if not values:
            continue
        sec = raw.get(section, {})
        if not isinstance(sec, dict):
            raise SpecError(f"[{section}] must be a table, got {type(sec).__name__}")
        raw[section] = {**sec, **values}
    from ..spec import load_spec

    spec = load_spec(raw)
    log.debug("resolved spec fingerprint %s", spec.fingerprint())
    return spec


def require(spec: Spec, command: str, *sections: str) -> None:
    """A one-line error naming the sections a command needs and the spec lacks."""
    missing = [s for s in sections if getattr(spec, s) is None]
    if missing:
        raise SpecError(f"{command} needs the section(s) {', '.join(f'[{s}]' for s in missing)} in the spec")


def out_dir(args, command: str) -> Path:
    """``--out`` (a directory) or ``runs/<spec stem>/<command>``; created, and refused if it is a file."""
    out = Path(args.out) if args.out else Path("runs") / Path(getattr(args, "spec", "run")).stem / command
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out must be a directory, but {out} is a file")
    out.mkdir(parents=True, exist_ok=True)
    return out


def provenance(kind: str, spec: Spec | None = None, *, title: str = "", **extra) -> dict[str, Any]:
    """Global attributes of a result file (:func:`rfdiff.results.provenance`: kind, version, commit, the resolved
    spec's content, fingerprint, command line, date, seeds, title) plus ``extra`` (JSON-encoded on write)."""
    from ..results import provenance as _provenance

    return {**_provenance(kind, spec, title=title), **extra}


def write_result(path, data_vars, *, coords=None, attrs=None) -> Path:
    """Build the labelled Dataset (:func:`rfdiff.results.build`) and write it atomically to ``path`` (.nc)."""
    from ..results import build, write

    return write(path, build(None, data_vars, coords=coords, attrs=attrs))


def progress(args) -> bool:
    """One policy: progress bars only on a terminal and without ``-q``."""
    return not args.quiet and sys.stderr.isatty()


def parse_grid(text: str, option: str) -> list[float]:
    """``LO,HI,NUM`` → [lo, hi, num] (validated later by the schema)."""
    try:
        lo, hi, num = (s.strip() for s in text.split(","))
        return [float(lo), float(hi), int(num)]
    except ValueError:
        raise SpecError(f"{option} must look like LO,HI,NUM (e.g. 1e-3,1e6,120), got {text!r}") from None


def tau_grid(spec: Spec):
    """The log τ grid of the spec's ``[curves] taus`` (load with ``sections=("curves",)`` so the schema's default
    is resolved there, not repeated here)."""
    import numpy as np

    lo, hi, num = spec.curves.taus
    return np.logspace(np.log10(lo), np.log10(hi), int(num))


def wrote(*paths) -> None:
    for p in paths:
        log.info("wrote %s", p)
