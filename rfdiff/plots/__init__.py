"""Publication figures of rfdiff results (matplotlib, object-oriented, one house style).

* :func:`plot_result` — the standard figure of any result Dataset (dispatch on ``attrs["rfdiff_kind"]``);
* :func:`save_figure` — ``stem.pdf`` (vector) + ``stem.png`` (300 dpi), written atomically;
* :func:`style` — the shipped ``rfdiff.mplstyle`` as a context (nothing global changes; path: :data:`STYLE`);
* array-level figures: :func:`plot_spectrum`, :func:`plot_comparison`, :func:`plot_times_vs_ratio`,
  :func:`plot_phi`, :func:`plot_order_pairs`; helpers :func:`log_axis`, :func:`class_color`, :func:`class_names`.

Conventions, everywhere: classes are 1-based and shown by name (the Dataset's ``class_name`` coordinate, else
``class 1`` …), each class keeps one colour across panels (:func:`class_color`); colour bars carry a label
with units; log axes label powers of ten only; layouts are constrained (nothing clipped). Every function takes
``ax=`` and makes a figure only when none is given; none switches the backend (scripts choose it).

    >>> from rfdiff.plots import plot_result, save_figure, style
    >>> # with style(): fig = plot_result(ds); save_figure(fig, "out/phase")
"""

from ._base import (PALETTE, PNG_DPI, STYLE, class_color, class_names, colorbar, dataset_class_names, label,
                    log_axis, save_figure, style)
from .arrays import (draw_times_vs_ratio, plot_comparison, plot_order_pairs, plot_phi, plot_spectrum,
                     plot_times_vs_ratio)
from .result import KINDS, plot_result

__all__ = ["PALETTE", "PNG_DPI", "STYLE", "KINDS", "class_color", "class_names", "colorbar", "dataset_class_names",
           "label", "log_axis", "save_figure", "style", "plot_result", "draw_times_vs_ratio", "plot_comparison",
           "plot_phi", "plot_spectrum", "plot_times_vs_ratio", "plot_order_pairs"]
