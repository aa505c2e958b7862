"""The shared pieces of every rfdiff figure: the house style, class colours and names, labels from CF attributes,
readable log axes, labelled colour bars and the PDF + 300-dpi PNG writer.

Nothing here touches matplotlib's global state: the style is applied through :func:`style` (an ``rc_context``,
undone on exit) and the backend is never chosen (scripts set ``MPLBACKEND=Agg`` or call ``matplotlib.use``).
matplotlib is imported inside the functions, so ``import rfdiff`` stays light.
"""

from __future__ import annotations

import io as _io
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np

STYLE = Path(__file__).with_name("rfdiff.mplstyle")
# one colour per class (Okabe-Ito, as in the style file's cycle): class i (1-based) gets PALETTE[(i - 1) % 8]
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")
PNG_DPI = 300
_NO_UNITS = ("", "1", "dimensionless")


@contextmanager
def style():
    """The rfdiff house style as a context: ``with rfdiff.plots.style(): fig = plot_result(ds)``.

    A :func:`matplotlib.style.context` on the shipped ``rfdiff.mplstyle`` (constrained layout, 9-pt text,
    per-class colour cycle, TrueType fonts in PDF); every rcParam is restored on exit and the backend is left
    alone."""
    import matplotlib.style as mstyle

    with mstyle.context(str(STYLE)):
        yield


def class_color(position: int) -> str:
    """The fixed colour of the class at 0-based ``position`` along the ``class`` dimension (class ``position+1``)."""
    return PALETTE[int(position) % len(PALETTE)]


def class_names(k: int, names=None) -> list[str]:
    """Display names of ``k`` classes: ``names`` if given (length ``k``), else ``"class 1" … "class k"`` (1-based,
    the one convention of every rfdiff figure)."""
    if names is None:
        return [f"class {c + 1}" for c in range(k)]
    names = [str(n) for n in names]
    if len(names) != k:
        raise ValueError(f"labels: {len(names)} names for {k} classes")
    return names


def dataset_class_names(ds) -> list[str]:
    """Class names of a result Dataset: its ``class_name`` coordinate, else ``"class {c}"`` for the ``class``
    coordinate's (1-based) values."""
    if "class" not in ds.dims:
        return []
    if "class_name" in ds.coords:
        return [str(v) for v in np.asarray(ds["class_name"].values).ravel()]
    return [f"class {int(v)}" for v in np.asarray(ds["class"].values).ravel()]


def label(da, name: str | None = None) -> str:
    """Axis label of a variable/coordinate from its CF attributes: ``long_name [units]`` (no bracket when
    dimensionless), falling back to its name."""
    attrs = getattr(da, "attrs", {}) or {}
    text = str(attrs.get("long_name") or name or getattr(da, "name", "") or "")
    units = str(attrs.get("units", "") or "")
    return text if units in _NO_UNITS else f"{text} [{units}]"


def is_geometric(x) -> bool:
    """True for a positive grid spanning over a decade whose log-spacing is more even than its linear spacing:
    such an axis is drawn on a log scale."""
    x = np.asarray(x, dtype=float).ravel()
    if x.size < 3 or not np.all(np.isfinite(x)) or np.any(x <= 0) or x.max() / x.min() < 10:
        return False
    dl, dx = np.diff(np.log(x)), np.diff(x)
    return float(np.std(dl) / max(abs(np.mean(dl)), 1e-300)) < float(np.std(dx) / max(abs(np.mean(dx)), 1e-300))


def _short_log_formatter():
    """Tick labels for a log axis spanning under 2 decades: which mantissas get a label depends on the span
    at draw time (1-2-5 over a decade or more, 1-2-3-4-5-6-8 over 0.5-1 decade, every tick below), so there are
    always labels and never more than fit; plain ``%g`` between 1e-3 and 1e4, else ``m×10^k``."""
    from matplotlib.ticker import Formatter

    class ShortLogFormatter(Formatter):
        def __call__(self, v, pos=None):
            if not v > 0:
                return ""
            lo, hi = sorted(self.axis.get_view_interval()) if self.axis is not None else (v, 10 * v)
            span = np.log10(hi / lo) if lo > 0 else 2.0
            keep = (1, 2, 5) if span >= 1.0 else (1, 2, 3, 4, 5, 6, 8) if span >= 0.5 else tuple(range(1, 10))
            e = int(np.floor(np.log10(v) + 1e-9))
            m = round(v / 10.0**e, 6)
            if m not in keep:
                return ""
            if 1e-3 <= v < 1e4:
                return f"{v:g}"
            return f"$10^{{{e}}}$" if m == 1.0 else f"${m:g}\\times10^{{{e}}}$"

    return ShortLogFormatter()


def log_axis(ax, which: str = "x") -> None:
    """Put ``ax``'s ``which`` axis ("x" or "y") on a readable log scale: major ticks at powers of ten (at most
    7, so long ranges skip decades instead of colliding), labelled ``10^k`` (LogFormatterSciNotation), unlabelled
    minor ticks. A range under 2 decades (where that would leave one or two labels) labels a span-dependent
    subset of the 1…9 × 10^k ticks; under half a decade, a few evenly spaced round values.
    Call it after the data are drawn (it reads the axis limits)."""
    from matplotlib.ticker import LogFormatterSciNotation, LogLocator, NullFormatter

    if which not in ("x", "y"):
        raise ValueError(f"which: 'x' or 'y', got {which!r}")
    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    axis = ax.xaxis if which == "x" else ax.yaxis
    lo, hi = sorted(ax.get_xlim() if which == "x" else ax.get_ylim())
    axis.set_major_locator(LogLocator(base=10, numticks=7))
    axis.set_minor_locator(LogLocator(base=10, subs=tuple(np.arange(2.0, 10.0)), numticks=12))
    if lo > 0 and np.log10(hi / lo) < 0.5:  # under half a decade: a few evenly spaced round values
        from matplotlib.ticker import FuncFormatter, MaxNLocator, NullLocator

        axis.set_major_locator(MaxNLocator(nbins=4, steps=[1, 2, 2.5, 5, 10]))
        axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
        axis.set_minor_locator(NullLocator())
    elif lo > 0 and np.log10(hi / lo) < 2.0:
        axis.set_major_formatter(_short_log_formatter())
        axis.set_minor_formatter(_short_log_formatter())
    else:
        axis.set_major_formatter(LogFormatterSciNotation(base=10))
        axis.set_minor_formatter(NullFormatter())


def colorbar(mappable, ax, text: str, **kw):
    """A colour bar beside ``ax`` with a label (``text`` should carry the units, see :func:`label`)."""
    cb = ax.figure.colorbar(mappable, ax=ax, **kw)
    cb.set_label(text)
    return cb


def styled(ax):
    """The context to draw in: the house :func:`style` when this module makes the figure (``ax is None``), else
    nothing (the caller's axes keep the caller's style; wrap the call in ``style()`` to get ours)."""
    return style() if ax is None else nullcontext()


def axes_for(ax, n: int, *, size=None, what: str = "figure"):
    """(figure, list of ``n`` Axes): the caller's ``ax`` (one Axes, or a sequence of ``n``) or a new
    constrained-layout figure with ``n`` panels in a row (call inside :func:`styled`)."""
    if ax is None:
        import matplotlib.pyplot as plt

        w, h = size or (4.2 * n + 0.6, 3.4)
        fig, grid = plt.subplots(1, n, figsize=(w, h), layout="constrained", squeeze=False)
        return fig, list(grid[0])
    given = list(np.ravel(np.asarray(ax, dtype=object)))
    if len(given) != n:
        raise ValueError(f"ax: {what} draws {n} panel(s); pass {n} Axes, got {len(given)} "
                         "(or choose one panel with variable=...)")
    return given[0].figure, given


def save_figure(fig, stem) -> list[Path]:
    """Write ``fig`` as ``stem.pdf`` (vector) and ``stem.png`` (300 dpi), each atomically; returns both paths.

    ``stem`` is a path without suffix (a trailing ``.pdf``/``.png`` is dropped). Files are rendered into memory
    and written with :func:`rfdiff.io.atomic_write_bytes`, so a crash never leaves a half-written figure; the
    PDF carries no creation date, so regenerating an unchanged figure gives identical bytes.

    >>> # paths = save_figure(fig, "out/phase")   # -> [out/phase.pdf, out/phase.png]
    """
    from ..io import atomic_write_bytes

    stem = Path(stem)
    if stem.suffix.lower() in (".pdf", ".png"):
        stem = stem.with_suffix("")
    if not stem.name:
        raise ValueError(f"stem: a file name is needed, got {str(stem)!r}")
    out = []
    for fmt, extra in (("pdf", {"metadata": {"CreationDate": None}}), ("png", {"dpi": PNG_DPI})):
        buf = _io.BytesIO()
        fig.savefig(buf, format=fmt, **extra)
        out.append(atomic_write_bytes(stem.with_name(f"{stem.name}.{fmt}"), buf.getvalue()))
    return out
