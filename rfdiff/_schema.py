"""Generic machinery of the spec schema (:mod:`rfdiff.spec`): one error type, value converters, table parsing.

A section is a frozen dataclass whose fields carry a converter in their metadata (see :func:`key`); a converter
``conv(value, section, name)`` checks the type and range of one TOML value and returns its canonical Python
form (tuples, not lists; floats, not ints) or raises :class:`SpecError` naming ``[section] name`` and the bad
value. :func:`parse_table` rejects unknown keys (with the closest valid one), reports missing required keys and
fills in defaults. Pure Python (no numpy, no jax) so that parsing a spec stays cheap.

Example::

    >>> POSITIVE = Float(lo=0.0, lo_open=True)
    >>> POSITIVE(2, "model", "t")
    2.0
    >>> POSITIVE(-1.0, "model", "t")
    Traceback (most recent call last):
    ...
    rfdiff.errors.SpecError: [model] t must be a float > 0, got -1.0
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import numbers
import types
import typing
from collections.abc import Mapping

from .errors import SpecError

__all__ = ["SpecError", "Float", "Int", "Bool", "Str", "Choice", "Seq", "Opt", "Grid", "TABLE", "key",
           "unknown_key", "parse_table", "section_keys", "fields_of", "dump", "from_hint", "fail", "check_sym_psd",
           "markdown_table"]

REQUIRED = dataclasses.MISSING




def fail(section: str, name: str, what: str, value) -> SpecError:
    """``[section] name <what>, got <value>`` (the value in plain lists, so it reads like the TOML)."""
    return SpecError(f"[{section}] {name} {what}, got {dump(value)!r}")


_bad = fail


class Float:
    """A finite real number (ints are accepted and converted; bools and strings are not), optionally bounded."""

    def __init__(self, lo=None, hi=None, lo_open=False, hi_open=False):
        self.lo, self.hi, self.lo_open, self.hi_open = lo, hi, lo_open, hi_open

    @property
    def text(self) -> str:
        lo, hi = self.lo, self.hi
        if lo is not None and hi is not None:
            return f"float in {'(' if self.lo_open else '['}{lo:g}, {hi:g}{')' if self.hi_open else ']'}"
        if lo is not None:
            return f"float {'>' if self.lo_open else '≥'} {lo:g}"
        if hi is not None:
            return f"float {'<' if self.hi_open else '≤'} {hi:g}"
        return "float"

    def __call__(self, v, section, name):
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise _bad(section, name, f"must be a {self.text}", v)
        v = float(v)
        if not math.isfinite(v):
            raise _bad(section, name, "must be finite", v)
        if ((self.lo is not None and (v < self.lo or (self.lo_open and v == self.lo)))
                or (self.hi is not None and (v > self.hi or (self.hi_open and v == self.hi)))):
            raise _bad(section, name, f"must be a {self.text}", v)
        return v


class Int:
    """An integer; floats (even 2.0) and bools are refused, so ``d = 2.5`` can never silently become 2."""

    def __init__(self, lo=None):
        self.lo = lo

    @property
    def text(self) -> str:
        return "int" if self.lo is None else f"int ≥ {self.lo}"

    def __call__(self, v, section, name):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise _bad(section, name, f"must be an {self.text}", v)
        if self.lo is not None and v < self.lo:
            raise _bad(section, name, f"must be an {self.text}", v)
        return int(v)


class Bool:
    text = "bool"

    def __call__(self, v, section, name):
        if not isinstance(v, bool):
            raise _bad(section, name, "must be true or false", v)
        return v


class Str:
    text = "string"

    def __call__(self, v, section, name):
        if not isinstance(v, str):
            raise _bad(section, name, "must be a string", v)
        return v


class Choice:
    """One of a fixed set of strings; ``options`` may be a callable (names looked up lazily, e.g. activations)."""

    def __init__(self, options):
        self._options = options

    @property
    def options(self) -> tuple[str, ...]:
        return tuple(self._options() if callable(self._options) else self._options)

    @property
    def text(self) -> str:
        return " | ".join(f'"{o}"' for o in self.options)

    def __call__(self, v, section, name):
        if not isinstance(v, str) or v not in self.options:
            hint = difflib.get_close_matches(str(v), self.options, n=1)
            raise _bad(section, name, f"must be one of {list(self.options)}"
                       + (f" (did you mean {hint[0]!r}?)" if hint else ""), v)
        return v


class Seq:
    """A list of ``elem`` values (returned as a tuple), of ``length`` entries when given."""

    def __init__(self, elem, length=None, min_len=1):
        self.elem, self.length, self.min_len = elem, length, min_len

    @property
    def text(self) -> str:
        n = f"{self.length} × " if self.length else ""
        return f"list of {n}{self.elem.text}"

    def __call__(self, v, section, name):
        if isinstance(v, (str, bytes, Mapping)) or not isinstance(v, (list, tuple)):
            raise _bad(section, name, f"must be a {self.text}", v)
        if (self.length is not None and len(v) != self.length) or len(v) < self.min_len:
            want = self.length if self.length is not None else f"at least {self.min_len}"
            raise _bad(section, name, f"must have {want} entries", v)
        try:
            return tuple(self.elem(x, section, name) for x in v)
        except SpecError as err:  # report the whole (outermost) list, not only the bad entry
            raise SpecError(f"{str(err).split(' (in ')[0]} (in {dump(v)!r})") from None


class Opt:
    """``conv`` or absent (None)."""

    def __init__(self, conv):
        self.conv = conv

    @property
    def text(self) -> str:
        return self.conv.text

    def __call__(self, v, section, name):
        return None if v is None else self.conv(v, section, name)


def Grid(v, section, name):
    """``[lo, hi, num]`` of a grid: floats lo < hi, int num ≥ 2."""
    if not isinstance(v, (list, tuple)) or len(v) != 3:
        raise fail(section, name, "must be [lo, hi, num]", v)
    lo, hi = Float()(v[0], section, name), Float()(v[1], section, name)
    num = Int(lo=2)(v[2], section, f"{name} num")
    if not lo < hi:
        raise fail(section, name, "needs lo < hi", v)
    return (lo, hi, num)


Grid.text = "[lo, hi, num] (floats lo < hi, int num ≥ 2)"


def TABLE(v, section, name):
    """A sub-table passed through unparsed: its owner parses it once it knows what it needs (e.g. K)."""
    return v


TABLE.text = "table"


def check_sym_psd(m, section: str, name: str) -> None:
    """A Gram-type matrix must be symmetric positive semi-definite (tolerances as GaussianMixture's)."""
    import numpy as np  # lazy: only mixtures with centroids need it

    a = np.asarray(m, float)
    if not np.allclose(a, a.T, atol=1e-12, rtol=1e-10):
        raise fail(section, name, "must be symmetric", m)
    if np.linalg.eigvalsh(a).min() < -1e-10 * max(1.0, np.abs(a).max()):
        raise fail(section, name, "must be positive semi-definite", m)


def from_hint(hint) -> object:
    """Converter for a dataclass field's type hint (int, float, str, bool, tuple[X, ...], X | None)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1 and len(args) == 2:
            return Opt(from_hint(rest[0]))
    elif origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return Seq(from_hint(args[0]))
    elif hint in (int, float, bool, str):
        return {int: Int, float: Float, bool: Bool, str: Str}[hint]()
    raise TypeError(f"no spec converter for type {hint!r}")


def key(conv, default=REQUIRED, doc: str = "", dump=None):
    """A dataclass field carrying its converter and documentation (keyword-only; no default = required)."""
    return dataclasses.field(default=default, metadata={"conv": conv, "doc": doc, "dump": dump})


def section_keys(cls) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls) if "conv" in f.metadata}


def fields_of(cls, exclude=(), doc: str = "") -> dict[str, dataclasses.Field]:
    """Spec keys derived from another dataclass's fields (type hints → converters), so they cannot drift."""
    hints = typing.get_type_hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        if f.name not in exclude:
            default = f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
            out[f.name] = key(from_hint(hints[f.name]), default, doc or f"{cls.__name__} field")
            out[f.name].name = f.name
    return out


def markdown_table(fields: Mapping[str, dataclasses.Field], section: str) -> list[str]:
    """The Markdown rows documenting one section: key, type, default (or required), meaning."""
    esc = lambda s: str(s).replace("|", "\\|")
    out = [f"## [{section}]", "", "| key | type | default | meaning |", "|---|---|---|---|"]
    for n, f in fields.items():
        default = "**required**" if f.default is REQUIRED else \
            ("—" if f.default is None else f"`{json.dumps(dump(f.default), ensure_ascii=False)}`")
        text = getattr(f.metadata["conv"], "text", "")
        out.append(f"| `{n}` | {esc(text)} | {esc(default)} | {esc(f.metadata.get('doc', ''))} |")
    return out + [""]


def unknown_key(where: str, name: str, valid, what: str = "key") -> SpecError:
    """The error for an unknown key, with the closest valid key (case-insensitive) as a suggestion."""
    valid = list(valid)
    lower = {v.lower(): v for v in valid}
    hint = difflib.get_close_matches(str(name).lower(), list(lower), n=1, cutoff=0.6)
    tip = f" (did you mean {lower[hint[0]]!r}?)" if hint else f" (valid: {', '.join(valid)})"
    return SpecError(f"{where} unknown {what} {name!r}{tip}")


def parse_table(raw, section: str, fields: Mapping[str, dataclasses.Field]) -> dict:
    """Check one table against its fields: unknown keys, missing required keys, converted values, defaults."""
    if not isinstance(raw, Mapping):
        raise SpecError(f"[{section}] must be a table, got {raw!r}")
    for name in raw:
        if name not in fields:
            raise unknown_key(f"[{section}]", name, fields)
    out = {}
    for name, f in fields.items():
        if raw.get(name) is not None:  # None (from a Python dict) means absent, as TOML has no null
            out[name] = f.metadata["conv"](raw[name], section, name)
        elif f.default is REQUIRED:
            raise SpecError(f"[{section}] missing required key {name!r}")
        else:
            out[name] = f.default
    return out


def dump(value):
    """Plain JSON-able form: dataclasses to dicts (None fields omitted), tuples to lists."""
    if dataclasses.is_dataclass(value):
        out = {}
        for f in dataclasses.fields(value):
            v = getattr(value, f.name)
            if v is not None:
                custom = f.metadata.get("dump")
                out[f.name] = custom(v) if custom else dump(v)
        return out
    if isinstance(value, (list, tuple)):
        return [dump(v) for v in value]
    if isinstance(value, Mapping):
        return {k: dump(v) for k, v in value.items()}
    return value
