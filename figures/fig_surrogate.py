"""Gaussian-surrogate check: per-class test errors of U-Nets trained on real Fashion-MNIST vs on each class's
Gaussian surrogate, from the committed results of ``validation/surrogate/`` (it never trains).

* ``surrogate_curves``: per class and OU time, ε_c^te of real- and surrogate-trained runs over Adam steps, with
  τ_gen of the real runs and the last checkpoint at which the two agree (``validation/surrogate/README.md``).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "validation" / "surrogate"
NAMES = {8: "Bag", 7: "Sneaker"}


def make(quick: bool = False):
    """Yields ("surrogate_curves", Figure) drawn from ``validation/surrogate/results`` (same figure as the report)."""
    spec = importlib.util.spec_from_file_location("surrogate_write_report", REPORT / "write_report.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    fig = mod.figure_from_results(REPORT / "results", NAMES)
    if fig is None:
        print(f"[surrogate] no results under {REPORT / 'results'}: run `python validation/surrogate/report.py`; "
              "skipping")
        return
    yield "surrogate_curves", fig
